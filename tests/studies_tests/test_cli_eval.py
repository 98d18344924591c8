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
    assert records[0]["input_l2_reads"] == 12841024 and set(records[0]) == set(COLUMNS)


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
