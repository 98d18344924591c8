"""``dse eval``: formats, columns, hardware flags and files, error reporting and exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import pytest

from costmodel.networks import DATA
from studies.cli import main
from studies.commands.eval import COLUMNS
from tests.costmodel_tests.fidelity import public_layer_text

REQUIRED = ("file, network, layer, layer_type, runtime_cycles, num_macs, true_macs, "
            "throughput_macs_per_cycle, energy_mac_units, energy_nj, l1_size_req, l2_size_req, "
            "input_l2_reads, input_l2_writes, weight_l2_reads, weight_l2_writes, output_l2_reads, "
            "output_l2_writes, input_l1_reads, input_l1_writes, weight_l1_reads, weight_l1_writes, "
            "output_l1_reads, output_l1_writes, peak_noc_bw_req, avg_noc_bw_req, offchip_bw_req, "
            "avg_utilized_pes, area_um2, power_mw, valid, violations, error").split(", ")
ORACLE_LAYER = "inputs/layers/Resnet50_kcp_ws/001_CONV2_1_1.m"     # a public oracle row's input


@pytest.fixture(scope="module")
def oracle_layer(tmp_path_factory):
    path = tmp_path_factory.mktemp("oracle") / "001_CONV2_1_1.m"
    path.write_text(public_layer_text(ORACLE_LAYER))
    return path
HW64 = ["--num-pes", "64", "--l1-size", "512", "--l2-size", "65536", "--noc-bw", "16",
        "--noc-hop-latency", "1", "--noc-hops", "1", "--offchip-bw", "16"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_columns_are_the_required_ones_in_order():
    assert list(COLUMNS[:len(REQUIRED)]) == REQUIRED


def test_csv_matches_maestro_oracle_row(oracle_layer, capsys):
    code, out, err = run(capsys, "eval", str(oracle_layer), *HW64, "--format", "csv")
    assert code == 0 and err == ""
    df = pd.read_csv(io.StringIO(out))
    assert list(df.columns) == list(COLUMNS) and len(df) == 1
    row = df.iloc[0]
    assert (row.runtime_cycles, row.num_macs, row.l2_size_req) == (1806344, 12845056, 258)
    assert row.layer == "CONV2_1_1" and row.network == "Resnet50" and bool(row.valid)


def test_json_and_output_file(oracle_layer, tmp_path, capsys):
    out_path = tmp_path / "r.json"
    code, out, _ = run(capsys, "eval", str(oracle_layer), *HW64, "--format", "json",
                       "--output", str(out_path))
    assert code == 0 and out == ""
    records = json.loads(out_path.read_text())
    # MAESTRO's 12,841,024 plus the first 64-element input tile of each of the 63 later K folds
    # (deviation uncoupled-reread).
    assert records[0]["input_l2_reads"] == 12845056 and set(records[0]) == set(COLUMNS)


def test_table_is_readable_and_counts_repeats(capsys):
    code, out, _ = run(capsys, "eval", str(DATA / "resnet50_kcp_ws.m"), "--num-pes", "256",
                       "--noc-bw", "256", "--l1-size", "512", "--l2-size", "131072")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("accelerator: 256 PEs")
    header = next(line for line in lines if line.startswith("layer "))
    for word in ("runtime (cycles)", "MACs", "energy (nJ)", "status"):
        assert word in header
    assert sum(line.startswith("conv") for line in lines) == 29
    assert "total over 54 evaluated layer(s), repeats counted" in lines[-1]


def test_hw_file_and_flag_override(oracle_layer, tmp_path, capsys):
    hw = tmp_path / "hw.m"
    hw.write_text("num_pes: 64\nl1_size_cstr: 512\nl2_size_cstr: 65536\nnoc_bw_cstr: 16\n"
                  "offchip_bw_cstr: 16\n")
    code, out, _ = run(capsys, "eval", str(oracle_layer), "--hw-file", str(hw), "--format", "csv")
    assert code == 0 and pd.read_csv(io.StringIO(out)).runtime_cycles[0] == 1806344
    code, out, _ = run(capsys, "eval", str(oracle_layer), "--hw-file", str(hw), "--num-pes", "256",
                       "--format", "csv")
    assert pd.read_csv(io.StringIO(out)).used_pes[0] == 256


def test_bad_layers_get_error_rows_and_exit_2(oracle_layer, tmp_path, capsys):
    bad = tmp_path / "bad.m"
    bad.write_text(oracle_layer.read_text().replace("Cluster(64, P)", "Cluster(128, P)"))
    code, out, err = run(capsys, "eval", str(oracle_layer), str(bad), "missing.m", *HW64, "--format", "csv")
    assert code == 2
    df = pd.read_csv(io.StringIO(out))
    assert len(df) == 2 and df.error.isna()[0]
    assert df.error[1] == "cluster sizes multiply to 128 but the accelerator has 64 PEs"
    assert pd.isna(df.runtime_cycles[1])
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in err
    assert lines[0].startswith(f"dse eval: {bad}: layer CONV2_1_1: cluster sizes")
    assert lines[1] == "dse eval: missing.m: cannot read file: No such file or directory"


def test_parse_error_reports_file_line_and_expectation(tmp_path, capsys):
    bad = tmp_path / "syntax.m"
    bad.write_text("Network n {\n Layer a {\n Type: CONV\n Dimensions { K: 4 C: 4 }\n Dataflow {\n"
                   "  SpatialMap(1,1);\n }\n }\n}\n")
    code, _, err = run(capsys, "eval", str(bad), "--format", "csv")
    assert code == 2
    assert f"{bad}:7:2: unexpected '}}' (expected a dimension name)" in err


@pytest.mark.parametrize("argv, message", [
    (["eval", "x.m", "--num-pes", "0"], "expected a positive integer, got 0"),
    (["eval", "x.m", "--format", "xml"], "invalid choice: 'xml'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_console_script_runs(oracle_layer):
    proc = subprocess.run([sys.executable, "-m", "studies.cli", "eval", str(oracle_layer), *HW64, "--format",
                           "json"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["runtime_cycles"] == 1806344


# ------------------------------------------------------------------- networks as people hand them
def small_cnn(tmp_path) -> str:
    """Two convolutions and a classifier Gemm, named as PyTorch's exporter names them."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def w(name, *shape):
        return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="/features/features.0/Conv",
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Conv", ["b", "w2"], ["c"], name="/features/features.2/Conv", strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["c"], ["d"]),
             helper.make_node("Flatten", ["d"], ["e"]),
             helper.make_node("Gemm", ["e", "wf"], ["y"], name="/classifier/classifier.1/Gemm", transB=1)]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                              [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
                              initializer=[w("w1", 16, 3, 3, 3), w("w2", 32, 16, 3, 3), w("wf", 10, 32)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "cnn.onnx"
    onnx.save(model, path)
    return str(path)


def test_a_cnn_with_a_classifier_evaluates_end_to_end_with_a_gemm_dataflow(tmp_path, capsys):
    model = small_cnn(tmp_path)
    code, out, err = run(capsys, "eval", model, "--dataflow", "kcp_ws", "--gemm-dataflow", "gemm_mnk",
                         "--num-pes", "64", "--format", "csv")
    assert code == 0, err
    df = pd.read_csv(io.StringIO(out))
    assert df.layer.tolist() == ["features.0", "features.2", "classifier.1"]
    assert df.error.isna().all()
    assert df.num_macs.tolist() == [16 * 3 * 9 * 32 * 32, 32 * 16 * 9 * 15 * 15, 320]
    # Without it the classifier cannot take a convolution's dataflow: the message says what to add.
    code, _, err = run(capsys, "eval", model, "--dataflow", "kcp_ws", "--num-pes", "64")
    assert code == 2 and err.count("\n") == 1
    assert "layer classifier.1:" in err and "add --gemm-dataflow gemm_mnk" in err
    code, _, err = run(capsys, "eval", model, "--dataflow", "kcp_ws", "--gemm-dataflow", "kcp_ws")
    assert code == 2 and "--gemm-dataflow: kcp_ws maps C, R, S, X, Y, which GEMM layers do not have" in err


def test_a_network_without_dataflows_gets_one_line_not_one_per_layer(capsys):
    code, out, err = run(capsys, "eval", "ResNet-50", "--num-pes", "64")
    assert code == 2 and err.count("\n") == 1
    assert "dse eval: ResNet-50: 30 layers (conv1, conv2_1_a, conv2_1_b, conv2_1_c and 26 more): no " \
           "dataflow" in err and "--dataflow kcp_ws" in err
    assert out.count("error: no Dataflow block") == 30                     # every row still says so
    code, out, _ = run(capsys, "eval", "ResNet-50", "--dataflow", "kcp_ws", "--num-pes", "64")
    assert code == 0 and "total over 54 evaluated layer(s)" in out


def _evaluated_invalid(tmp_path, capsys, layer: str, dims: str, dataflow: str, pes: str):
    """``dse eval`` of one layer that evaluates (exit 0, nothing on stderr): its table row and the output."""
    path = tmp_path / f"{layer}.m"
    path.write_text(f"Network t {{\nLayer {layer} {{ Type: CONV Dimensions {{ {dims} }}\n"
                    f"Dataflow {{ {dataflow} }} }}\n}}\n")
    code, out, err = run(capsys, "eval", str(path), "--num-pes", pes)
    assert code == 0 and err == ""
    return next(line for line in out.splitlines() if line.startswith(f"{layer} ")), out


def test_a_mapping_short_of_the_layers_macs_is_invalid_and_explained(tmp_path, capsys):
    """TemporalMap(4,4) X over a 3-wide filter never forms the windows between its tiles: the table
    marks the layer invalid and says what that means and how to see it (exit 0: it was evaluated)."""
    row, out = _evaluated_invalid(tmp_path, capsys, "gaps", "K: 1, C: 1, R: 3, S: 3, Y: 3, X: 8",
                                  "SpatialMap(1,1) K; TemporalMap(4,4) X; TemporalMap(3,3) Y; "
                                  "TemporalMap(3,3) R; TemporalMap(3,3) S; TemporalMap(1,1) C;", "1")
    assert "invalid: num_macs < true_macs" in row and " 36 " in row
    assert "gaps: the mapping executes fewer MACs than the layer has" in out and "dse validate" in out


def test_a_mapping_whose_lockstep_maps_skip_pairs_is_invalid_and_explained(tmp_path, capsys):
    """SpatialMap(1,1) X with SpatialMap(1,1) C over one channel on 4 PEs: sub-cluster i gets column
    i and channel i, so only column 0 is computed; MAESTRO's 9 MACs stay, the layer is invalid and a
    line says why (rule lockstep-skips)."""
    row, out = _evaluated_invalid(tmp_path, capsys, "paired", "K: 1, C: 1, R: 1, S: 1, Y: 3, X: 3",
                                  "SpatialMap(1,1) X; SpatialMap(1,1) C;", "4")
    assert "invalid: lockstep SpatialMaps skip window pairs" in row
    assert "paired: two SpatialMaps of a level move in lockstep over independent dimensions" in out
    assert "fewer MACs than the layer has" not in out
