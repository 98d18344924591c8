"""Bad input on the command line: one clear line naming the flag, file or key, exit 2, never a
traceback or an internal error, found before any work is done, and no half-written output."""

from __future__ import annotations

import optuna
import pytest

from studies import codesign as cd
from studies import outputs

from .cli_helpers import run, write_file
from .codesign_helpers import HARDWARE, codesign_args, states, write_network

HOP_LATENCY = HARDWARE.index("--noc-hop-latency") + 1


@pytest.fixture
def network(tmp_path):
    return write_network(tmp_path)


def one_line_error(code, out, err, *needles):
    assert code == 2, (code, err)
    lines = [line for line in err.splitlines() if not line.startswith("dse codesign: warning")]
    assert lines and all(n in lines[-1] for n in needles), err
    assert "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize(("flags", "needles"), [
    (["--seed", "-1"], ["--seed", "non-negative"]),
    (["--seed", str(1 << 40)], ["--seed", "above the limit"]),
    (["--trials", "0"], ["--trials"]),
    (["--workers", "100000"], ["--workers", "above the limit"]),
    (["--timeout", "nan"], ["--timeout"]),
    (["--inner-time-limit", "-1"], ["--inner-time-limit"]),
    (["--levels", "9"], ["--levels", "above the limit"]),
    (["--heartbeat", "1e9"], ["--heartbeat"]),
    (["--trial-timeout", "inf"], ["--trial-timeout"]),
    (["--num-pes", "1:1000000000000000000:*2"], ["--num-pes", "above the limit"]),
    (["--l2-size", str(1 << 62)], ["--l2-size", "above the limit"]),
    (["--noc-hops", "0"], ["--noc-hops"]),
])
def test_hostile_codesign_flags(capsys, network, tmp_path, flags, needles):
    one_line_error(*run(capsys, *codesign_args(network, f"sqlite:///{tmp_path / 's.db'}", *flags)), *needles)
    assert not (tmp_path / "s.db").exists()


def test_a_zero_step_range_is_an_error_not_a_division_by_zero(capsys, network, tmp_path):
    argv = codesign_args(network, f"sqlite:///{tmp_path / 's.db'}")
    argv[argv.index("--noc-hop-latency") + 1] = "1:10:0"
    one_line_error(*run(capsys, *argv), "--noc-hop-latency", "step")


@pytest.mark.parametrize("storage", ["sqlite:///", "sqlite://", "sqlite:///:memory:", "journal:///",
                                     "journal:", "nosuch://x"])
def test_storage_urls_that_name_no_file_are_refused(capsys, network, storage):
    one_line_error(*run(capsys, *codesign_args(network, storage)), "--storage")


def test_journal_paths_that_are_folders_or_not_journals_are_refused_and_left_alone(capsys, network, tmp_path):
    one_line_error(*run(capsys, *codesign_args(network, f"journal:///{tmp_path}")), "is a directory")
    text = network.read_bytes()
    one_line_error(*run(capsys, *codesign_args(network, f"journal:///{network}")), "not an Optuna journal")
    assert network.read_bytes() == text                   # not "repaired" into an empty journal
    line = write_file(tmp_path, "one-line.txt", "hello")   # no newline: must not be cut as a torn record
    one_line_error(*run(capsys, "study", "list", "--storage", f"journal:///{line}"), "not an Optuna journal")
    assert line.read_text() == "hello"


def test_an_output_dir_that_is_a_file_is_refused_before_any_trial_runs(capsys, network, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setattr(cd, "search_layer", None)          # nothing may be searched
    storage = f"sqlite:///{tmp_path / 's.db'}"
    argv = codesign_args(network, storage)
    argv[argv.index("--output-dir") + 1] = str(network)
    one_line_error(*run(capsys, *argv), "--output-dir", "not a directory")
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("command", ["eval", "map", "sweep"])
def test_outputs_that_cannot_be_written_are_refused_before_work(capsys, network, tmp_path, command):
    extra = {"eval": ["--dataflow", "kcp_ws", "--num-pes", "64"],
             "map": ["--num-pes", "16", "--layer", "fc"],
             "sweep": ["--dataflow", "gemm_mnk", "--layer", "fc", "--num-pes", "64", "--noc-bw", "64",
                       "--l1-size", "64", "--l2-size", "4096"]}[command]
    for target, needle in ((tmp_path, "is a directory"), (network / "x.csv", "not a directory"),
                           (tmp_path / "missing" / "x.csv", "does not exist")):
        one_line_error(*run(capsys, command, network, *extra, "--output", target), "--output", needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.m"]


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(Exception, match=r"--output: cannot write .*No space left.*nothing was written"), \
            outputs.open_output(target) as out:
        out.write("new, half of it\n")
        raise OSError(28, "No space left on device")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    with outputs.open_output(target) as out:
        out.write("new\n")
    assert target.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    with outputs.open_output("/dev/null") as out:         # devices are written directly
        out.write("discarded\n")


def test_an_interrupted_export_leaves_the_previous_file(capsys, network, tmp_path, monkeypatch):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert run(capsys, *codesign_args(network, storage, trials=2))[0] == 0
    export = tmp_path / "t.csv"
    export.write_text("previous\n")

    def full_disk(self, path, **kwargs):
        with open(path, "w") as f:
            f.write("trial,sta")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pandas.DataFrame.to_csv", full_disk)
    one_line_error(*run(capsys, "study", "export", "tiny", "--storage", storage, "--output", export),
                   "No space left")
    assert export.read_text() == "previous\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_devices_and_folders_as_input_files(capsys, network, tmp_path):
    for path, needle in (("/dev/zero", "is a device"), (str(tmp_path), "is a directory")):
        one_line_error(*run(capsys, "eval", network, "--dataflow", "kcp_ws", "--hw-file", path), needle)
        one_line_error(*run(capsys, "eval", network, "--dataflow", path), needle)
    one_line_error(*run(capsys, "eval", "/dev/zero", "--dataflow", "kcp_ws"), "neither a built-in network")
    one_line_error(*run(capsys, "eval", network, "--dataflow", "kcp_ws", "--tech", "/dev/zero"),
                   "tech file is a device")


def test_huge_pe_counts_are_refused_at_once_instead_of_enumerating_divisors(capsys, network):
    # Was an endless loop: spaces.mapping.divisors walks to sqrt(n).
    code, _, err = run(capsys, "map", network, "--num-pes", "1000000000000000000")
    assert code == 2 and "--num-pes" in err and "above the limit of 1,048,576" in err


def test_a_watchdog_stopped_trial_is_failed_with_its_reason_and_the_study_finishes(
        capsys, network, tmp_path, monkeypatch):
    real = cd.search_layer
    calls = {"n": 0}

    def hang_on_the_third_search(spec, layer, acc):
        calls["n"] += 1
        if calls["n"] == 3:
            while True:                     # a Python loop that never ends, as divisors() on 10^18 did
                pass
        return real(spec, layer, acc)

    monkeypatch.setattr(cd, "search_layer", hang_on_the_third_search)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = run(capsys, *codesign_args(network, storage, "--trial-timeout", "2", trials=3))
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert states(study) == {"COMPLETE": 3, "FAIL": 1}
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    assert failed.user_attrs["failed"].startswith("watchdog: the trial ran longer than 2 s")
    assert "1 failed" in out


def test_enumerations_that_cannot_finish_are_refused_before_they_start(capsys, tmp_path):
    dims = "Dimensions { M: 16384, N: 16384, K: 16384 }"
    big = write_file(tmp_path, "big.m", f"Network big {{\nLayer g {{ Type: GEMM {dims} }}\n}}\n")
    code, _, err = run(capsys, "map", big, "--num-pes", "1024", "--searcher", "exhaustive")
    assert code == 2 and "would run for hours" in err and "--evaluations" in err
    code, _, err = run(capsys, "map", big, "--num-pes", "1024", "--searcher", "exhaustive", "--tiles", "any")
    assert code == 2 and "tile chains" in err and "--tiles divisors" in err
    code, _, err = run(capsys, "sweep", big, "--dataflow", "gemm_mnk", "--num-pes", "1:1000000:1", "--noc-bw",
                       "1:20:1", "--l1-size", "1:100000:1", "--l2-size", "1:1000:1")
    assert code == 2 and "above the limit of 100,000,000,000" in err


def test_names_and_numbers_too_long_are_one_line_errors(capsys, network, tmp_path):
    long = "x" * 300                                       # longer than a file name may be
    cases = [["eval", network, "--dataflow", long],
             ["eval", network, "--dataflow", "kcp_ws", "--output", f"{long}.csv"],
             ["eval", network, "--dataflow", "kcp_ws", "--hw-file", long], ["eval", f"{long}.m"],
             ["study", "list", "--storage", f"sqlite:///{long}.db"],
             ["study", "list", "--storage", f"journal:///{long}"],
             ["import", "model.onnx", "--dataflow", long],
             ["import", "model.onnx", "--dim", "N=" + "9" * 5000],
             ["eval", network, "--num-pes", "9" * 5000]]
    for argv in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2 and "internal error" not in err and len(err.strip().splitlines()) >= 1, (argv, err)
