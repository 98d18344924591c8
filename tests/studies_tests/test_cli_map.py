"""``dse map``: the written mappings reproduce the report through ``dse eval``; repeated shapes are
searched once; infeasible requests name the binding constraint and exit 2; seeds reproduce."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

from studies.commands.map import REPORT_COLUMNS

from .cli_helpers import run, write_file

NETWORK = """\
Network tiny {
Layer conv_a { Type: CONV Stride { X: 1, Y: 1 } Dimensions { K: 16, C: 8, R: 3, S: 3, Y: 10, X: 10 } }
Layer conv_b { Type: CONV Stride { X: 1, Y: 1 } Dimensions { K: 16, C: 8, R: 3, S: 3, Y: 10, X: 10 } }
Layer pw { Type: CONV Stride { X: 2, Y: 2 } Dimensions { K: 32, C: 16, R: 1, S: 1, Y: 8, X: 8 } }
Layer dw { Type: DSCONV Stride { X: 1, Y: 1 } Dimensions { K: 1, C: 16, R: 3, S: 3, Y: 8, X: 8 } }
Layer fc { Type: GEMM Dimensions { M: 8, N: 24, K: 32 } }
}
"""
HW = ["--num-pes", "16", "--l1-size", "256", "--l2-size", "8192", "--noc-bw", "16", "--noc-hop-latency", "1"]



@pytest.fixture
def network(tmp_path):
    return write_file(tmp_path, "tiny.m", NETWORK)


@pytest.mark.parametrize("searcher", ["cpsat", "exhaustive", "optuna"])
def test_written_mappings_reproduce_the_report_through_dse_eval(capsys, tmp_path, network, searcher):
    best, report = tmp_path / "best.m", tmp_path / "report.csv"
    extra = {"cpsat": ["--time-limit", "2"], "exhaustive": ["--space", "kcp_ws_holes"],
             "optuna": ["--trials", "64", "--levels", "1"]}[searcher]
    code, out, err = run(capsys, "map", network, *HW, "--searcher", searcher, *extra, "--output", best,
                         "--report", report)
    if searcher == "exhaustive":              # the KC-P template has no GEMM dimensions
        assert code == 2 and "layer fc: c: ?c is used on dimension C" in err
        assert "1 layer(s) without a mapping not counted" in out
    else:
        assert code == 0, err
        assert "searched 4 distinct layer shape(s)" in err         # conv_a and conv_b share a shape
    rep = pd.read_csv(report)
    assert list(rep.columns) == list(REPORT_COLUMNS)
    mapped = rep[rep.runtime_cycles.notna()]
    assert len(mapped) >= 3 and set(mapped.searcher) == {searcher}
    # Capacities hold (bandwidth is part of the runtime model unless --enforce-bw asks for more).
    assert not mapped.violations.fillna("").str.contains("l1_size|l2_size").any()
    assert (mapped.l1_size_req <= 256).all()
    code, out, err = run(capsys, "eval", best, *HW, "--format", "csv")
    assert code == 0, err
    ev = pd.read_csv(io.StringIO(out)).set_index("layer")
    for row in mapped.itertuples():
        assert ev.loc[row.layer, "runtime_cycles"] == row.runtime_cycles
        assert ev.loc[row.layer, "energy_nj"] == pytest.approx(row.energy_nj, rel=1e-12)
        assert ev.loc[row.layer, "l2_size_req"] == row.l2_size_req


def test_identical_shapes_are_searched_once_and_reported_for_each_layer(capsys, network, tmp_path):
    report = tmp_path / "r.csv"
    code, _, err = run(capsys, "map", network, *HW, "--layer", "conv_a", "--layer", "conv_b",
                       "--time-limit", "2", "--report", report)
    assert code == 0 and "searched 1 distinct layer shape(s)" in err and "conv_a, conv_b" in err
    rep = pd.read_csv(report)
    assert list(rep.layer) == ["conv_a", "conv_b"]
    a, b = rep.iloc[0], rep.iloc[1]
    assert (a.runtime_cycles, a.dataflow, a.evaluations) == (b.runtime_cycles, b.dataflow, b.evaluations)


def test_cpsat_reports_status_bound_and_gap(capsys, network, tmp_path):
    report = tmp_path / "r.csv"
    code, out, _ = run(capsys, "map", network, *HW, "--layer", "pw", "--levels", "1", "--time-limit", "20",
                       "--report", report)
    rep = pd.read_csv(report).iloc[0]
    assert code == 0 and rep.status == "optimal" and rep.gap == 0 and rep.bound == rep.runtime_cycles
    assert "network total" in out and "optimal" in out


def test_l1_too_small_names_l1_and_exits_2_when_proven_else_3(capsys, network):
    # CP-SAT and exhaustive search prove that nothing fits (exit 2); sampling only finds nothing
    # within its budget (exit 3). All name the binding constraint.
    for searcher, exit_code in (("cpsat", 2), ("exhaustive", 2), ("optuna", 3)):
        code, _, err = run(capsys, "map", network, "--layer", "pw", "--num-pes", "16", "--l1-size", "2",
                           "--searcher", searcher, "--trials", "32", "--levels", "1")
        assert code == exit_code, (searcher, err)
        assert "binding constraint" in err or "infeasible because of l1_size 2" in err, err
        assert "l1_size" in err and "Traceback" not in err


def test_pe_count_below_every_cluster_size_names_num_pes_and_exits_2(capsys, network):
    # The row-stationary template clusters Sz(R) = 3 PEs: impossible on 2 PEs.
    code, _, err = run(capsys, "map", network, "--layer", "conv_a", "--num-pes", "2", "--space", "rs")
    assert code == 2
    assert "binding constraint: num_pes" in err and "cluster sizes multiply to 3" in err


def test_same_seed_same_mapping(capsys, network, tmp_path):
    outputs = []
    for seed in (5, 5):
        best = tmp_path / f"best{len(outputs)}.m"
        code, _, _ = run(capsys, "map", network, *HW, "--layer", "conv_a", "--searcher", "optuna",
                         "--trials", "96", "--seed", seed, "--output", best)
        assert code == 0
        outputs.append(best.read_text())
    assert outputs[0] == outputs[1]


def test_builtin_network_by_name(capsys, tmp_path):
    best = tmp_path / "best.m"
    code, out, err = run(capsys, "map", "bert_base", "--layer", "attn_qk", "--num-pes", "64",
                         "--time-limit", "5", "--output", best)
    assert code == 0, err
    assert "attn_qk" in out and "//@repeat" in best.read_text()


def test_gemm_layers_take_their_own_space_beside_a_convolutions_template(capsys, network, tmp_path):
    report = tmp_path / "report.csv"
    code, _, err = run(capsys, "map", network, "--space", "kcp_ws_holes", *HW)
    assert code == 2 and "layer fc" in err and "--gemm-dataflow gemm_mnk_holes" in err
    code, _, err = run(capsys, "map", network, "--space", "kcp_ws_holes", "--gemm-dataflow", "gemm_mnk_holes",
                       "--report", report, *HW)
    assert code == 0, err
    rows = pd.read_csv(report).set_index("layer")
    assert rows.loc["fc", "runtime_cycles"] > 0 and rows.loc["conv_a", "runtime_cycles"] > 0
    mapped = set(re.findall(r"Map\([^)]*\) (\w+)", rows.loc["fc", "dataflow"]))
    assert mapped == {"M", "N", "K"}                     # the GEMM template's dimensions, not kcp_ws's
    code, _, err = run(capsys, "map", network, "--space", "kcp_ws_holes", "--gemm-dataflow", "kcp_ws", *HW)
    assert code == 2 and "--gemm-dataflow" in err and "maps C" in err


def test_bad_arguments_are_one_line_errors(capsys, network):
    for argv, expected in ((["--layer", "nope"], "no layer named nope"),
                           (["--objective", "speed"], "unknown objective 'speed'"),
                           (["--space", "nosuch"], "no shipped template 'nosuch'"),
                           (["--cpsat-params", "bogus: 1"], "not valid CP-SAT parameters")):
        code, _, err = run(capsys, "map", network, *argv)
        assert code == 2 and expected in err and "Traceback" not in err, (argv, err)
