"""Commands import only what they use, and ``--jobs`` never changes a result.

Start-up time is a benchmark figure (``benchmarks/costmodel.py``: ``cli_eval_one_layer_s``); what is
tested here is its cause, deterministically: which heavy libraries a command imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from costmodel import Layer, read_network
from costmodel.compiled import PARALLEL_MIN
from costmodel.networks import DATA
from search import ExhaustiveSearcher, Problem
from spaces import FreeSpace

from .cli_helpers import run, write_file

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("numba", "optuna", "ortools", "pandas", "matplotlib", "torch", "scipy", "optuna_dashboard")


def _imported_after(argv: list[str], cwd: Path) -> set[str]:
    code = ("import sys\nfrom studies.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    return set(proc.stderr.strip().splitlines()[-1].split()) if proc.stderr.strip() else set()


def test_help_imports_no_heavy_library(tmp_path):
    assert _imported_after(["--help"], tmp_path) == set()
    for command in ("map", "codesign", "sweep", "study", "worker", "query", "dashboard", "networks",
                    "import"):
        assert _imported_after([command, "--help"], tmp_path) == set(), command


def test_evaluating_a_layer_imports_no_heavy_library(tmp_path):
    net = read_network(DATA / "resnet50_kcp_ws.m")
    from costmodel import format_network

    m = net.layers[3]
    path = write_file(tmp_path, "one.m", format_network(net.name, [(m.layer, m.dataflow)]))
    assert _imported_after(["eval", str(path), "--num-pes", "256"], tmp_path) == set()


SWEEP_NET = """\
Network n {
Layer a { Type: CONV Stride { X: 1, Y: 1 } Dimensions { K: 16, C: 8, R: 3, S: 3, Y: 10, X: 10 }
Dataflow { SpatialMap(1,1) K; TemporalMap(8,8) C; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S;
           TemporalMap(Sz(R),1) Y; TemporalMap(Sz(S),1) X; } }
}
"""


def test_sweep_output_is_the_same_for_any_jobs(tmp_path, capsys):
    net = write_file(tmp_path, "n.m", SWEEP_NET)
    outputs = []
    for jobs in (1, 2):
        code, out, err = run(capsys, "sweep", net, "--num-pes", "16:4096:*2", "--noc-bw", "1:64:*2",
                             "--l1-size", "64,512", "--l2-size", "4096,65536", "--format", "csv", "--all",
                             "--jobs", jobs)
        assert code == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") > 100


def test_map_output_is_the_same_for_any_jobs(tmp_path, capsys):
    net = write_file(tmp_path, "n.m", SWEEP_NET)
    mappings, reports = [], []
    for jobs in (1, 2):
        best, report = tmp_path / f"best{jobs}.m", tmp_path / f"report{jobs}.csv"
        code, _, err = run(capsys, "map", net, "--num-pes", "16", "--noc-bw", "8", "--l1-size", "512",
                           "--searcher", "exhaustive", "--space", "kcp_ws_holes", "--jobs", jobs,
                           "--output", best, "--report", report)
        assert code == 0, err
        mappings.append(best.read_text())
        frame = pd.read_csv(report)
        # Seconds differ from run to run; no other column may.
        reports.append(frame[[c for c in frame.columns if "second" not in c]])
    assert mappings[0] == mappings[1]
    pd.testing.assert_frame_equal(reports[0], reports[1])


@pytest.mark.parametrize("jobs", [2, 3])
def test_exhaustive_search_is_the_same_for_any_jobs(jobs):
    layer = Layer.conv("c", K=4, C=2, R=3, S=3, Y=4, X=4)
    space = FreeSpace(layer, 4, levels=2, spatial=["K", "C"])
    assert space.count() > 2 * PARALLEL_MIN            # batches large enough to be split
    from costmodel import Accelerator

    acc = Accelerator(num_pes=4, noc_bw=2, noc_hop_latency=1, l1_size=64)
    one = ExhaustiveSearcher(jobs=1, chunk=3 * PARALLEL_MIN).search(Problem(space, acc))
    many = ExhaustiveSearcher(jobs=jobs, chunk=3 * PARALLEL_MIN).search(
        Problem(FreeSpace(layer, 4, levels=2, spatial=["K", "C"]), acc))
    assert [f.values for f in one.best] == [f.values for f in many.best]
    assert [f.dataflow for f in one.best] == [f.dataflow for f in many.best]
    assert np.isfinite(one.best[0].values[0])
