"""Progress lines of a running study: n of N, time so far and left, the trial's design and score, the
best so far; numbers written out."""

from __future__ import annotations

import re

from studies import codesign as cd
from studies.progress import TrialProgress, duration, infeasible, size

from .cli_helpers import run
from .codesign_helpers import codesign_args, load, write_network


def test_durations_sizes_and_reasons_read_plainly():
    assert [duration(s) for s in (0.2, 42, 185, 7800)] == ["< 1 s", "42 s", "3 min 5 s", "2 h 10 min"]
    assert [size(n) for n in (512, 262144, 4194304, 1000)] == ["512", "256K", "4M", "1,000"]
    reason = ("no mapping fits: conv_a, conv_b: no feasible mapping of layer conv_a among the 192 designs "
              "evaluated; binding constraint: l1_size (l1_size 16 exceeded by 192 designs)")
    assert infeasible(reason) == "no mapping fits conv_a, conv_b (l1_size binds)"


def test_each_trial_line_says_where_the_study_stands(capsys, tmp_path):
    network = write_network(tmp_path)
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = run(capsys, *codesign_args(network, url, trials=4))
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("  [")]
    assert len(lines) == 4
    assert [re.match(r"  \[(\d+)/4 ", line).group(1) for line in lines] == ["1", "2", "3", "4"]
    assert "left]" in lines[0] and "left]" not in lines[-1]
    assert all(" mm^2, " in line and ("best so far" in line or "no feasible" in line) for line in lines)
    assert not any(re.search(r"\d[eE][+-]\d", line) for line in lines)

    # The estimate, on a clock that moves 10 s per reading: one trial done in 10 s, 3 more to come.
    study = load(url)
    ticks = iter(range(0, 1000, 10))
    shown = TrialProgress(study, cd.stored_spec(study), trials=8, clock=lambda: next(ticks))
    shown.complete_before = 3
    best = min((t for t in study.trials if t.user_attrs.get("latency_cycles")), key=lambda t: t.values[0])
    line = shown.trial_line(study.trials[0], complete=4)
    assert line.startswith("  [4/8  10 s, about 40 s left] trial 0: ")
    assert line.endswith(f"best so far {best.values[0]:,.0f} cycles (trial {best.number})")


def test_a_pareto_study_reports_its_front(capsys, tmp_path):
    network = write_network(tmp_path)
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = run(capsys, *codesign_args(network, url, "--objective", "latency,energy", trials=3))
    assert code == 0, err
    assert "Pareto front" in err.splitlines()[-1] and "best latency so far" in err
