"""Searches stop on budgets of work: the same answer beside busy processes and for any --jobs; they
start from an incumbent, say why they stopped and how much of the space they saw."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from costmodel import Accelerator, Layer
from search import ExhaustiveSearcher, Problem
from search.cpsat import CpSatSearcher
from search.mapper import MapSettings, map_layer
from spaces import FreeSpace
from spaces.union import template_union
from tests.studies_tests.cli_helpers import run, write_file

LAYER = Layer.conv("c", K=32, C=16, R=3, S=3, Y=14, X=14)
ACC = Accelerator(num_pes=64, noc_bw=16, noc_hop_latency=1, l1_size=256, l2_size=16384)


def _signature(result):
    return [(str(f.dataflow), f.values) for f in result.best], result.evaluations, result.stop


def test_the_same_answer_beside_two_busy_processes():
    quiet = CpSatSearcher(evaluations=6000).search(Problem(FreeSpace(LAYER, 64), ACC))
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        busy = CpSatSearcher(evaluations=6000).search(Problem(FreeSpace(LAYER, 64), ACC))
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert _signature(quiet) == _signature(busy)
    assert quiet.evaluations == 6000 and quiet.stop == "budget"


NETWORK = """\
Network n {
Layer a { Type: CONV Stride { X: 1, Y: 1 } Dimensions { K: 32, C: 16, R: 3, S: 3, Y: 14, X: 14 } }
Layer b { Type: CONV Stride { X: 2, Y: 2 } Dimensions { K: 32, C: 32, R: 1, S: 1, Y: 14, X: 14 } }
Layer f { Type: GEMM Dimensions { M: 16, N: 64, K: 32 } }
}
"""
HW = ["--num-pes", "64", "--l1-size", "256", "--l2-size", "16384", "--noc-bw", "16", "--noc-hop-latency", "1"]


def test_dse_map_gives_the_same_mappings_for_any_jobs(tmp_path, capsys):
    net = write_file(tmp_path, "n.m", NETWORK)
    mappings, reports = [], []
    for jobs in (1, 2):
        best, report = tmp_path / f"best{jobs}.m", tmp_path / f"r{jobs}.csv"
        code, _, err = run(capsys, "map", net, *HW, "--evaluations", "3000", "--jobs", jobs,
                           "--output", best, "--report", report)
        assert code == 0, err
        mappings.append(best.read_text())
        frame = pd.read_csv(report)
        reports.append(frame.drop(columns=["seconds", "cpu_seconds"]))
    assert mappings[0] == mappings[1]
    pd.testing.assert_frame_equal(reports[0], reports[1])
    assert set(reports[0].stop) <= {"budget", "optimal"} and reports[0].gap.notna().all()


def test_a_search_never_returns_worse_than_its_incumbent():
    templates = ExhaustiveSearcher().search(Problem(template_union(LAYER, 64), ACC))
    starved = map_layer(LAYER, ACC, MapSettings(evaluations=1, solver_time=0.001))
    assert starved.best and starved.best[0].values[0] <= templates.best[0].values[0]
    full = map_layer(LAYER, ACC, MapSettings(evaluations=3000))
    assert full.best[0].values[0] <= templates.best[0].values[0]
    # Three levels never answer worse than two (they are seeded with them).
    three = map_layer(LAYER, ACC, MapSettings(levels=3, evaluations=3000))
    assert three.best[0].values[0] <= full.best[0].values[0]


def test_a_template_still_maps_a_layer_the_free_space_cannot():
    # L1 of 20 elements: the free space keeps whole 3x3 filters in L1 (54 elements at least), so
    # CP-SAT proves nothing fits; the row-stationary template needs 18.
    acc = Accelerator(num_pes=64, noc_bw=16, noc_hop_latency=1, l1_size=20)
    free_only = CpSatSearcher().search(Problem(FreeSpace(LAYER, 64), acc))
    assert free_only.stop == "infeasible" and "l1_size 20" in free_only.message
    both = map_layer(LAYER, acc, MapSettings())
    assert both.best and both.best[0].cost.l1_size_req <= 20 and both.stop == "optimal"


def test_exhaustive_search_says_how_much_of_the_space_it_saw():
    space = FreeSpace.coarse(LAYER, 64)
    total = space.count()
    part = ExhaustiveSearcher(evaluations=total // 3).search(Problem(space, ACC))
    assert part.stop == "budget" and part.total == total and part.seen == pytest.approx(1 / 3, abs=0.01)
    assert part.bound is None
    whole = ExhaustiveSearcher().search(Problem(FreeSpace.coarse(LAYER, 64), ACC))
    assert whole.stop == "exhausted" and whole.status == "optimal" and whole.seen == 1.0
    assert whole.bound == whole.best[0].values[0] <= part.best[0].values[0]


def test_the_report_has_the_stop_reason_and_the_seen_fraction(tmp_path, capsys):
    net = write_file(tmp_path, "n.m", NETWORK)
    report = tmp_path / "r.csv"
    code, _, err = run(capsys, "map", net, *HW, "--space", "templates", "--layer", "a", "--report", report)
    assert code == 0, err
    row = pd.read_csv(report).iloc[0]
    assert row.stop == "exhausted" and row.seen == 1.0 and row.gap == 0
