"""Studies that survive faults: a journal through a full disk and torn records, dead journal workers
found without a flag, --workers children that die with their parent, resumed studies that do not
replay their random start, designs already complete answered from storage."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from costmodel import SpecError
from studies import codesign as cd
from studies import journal, storage

from .cli_helpers import run
from .codesign_helpers import (
    HARDWARE,
    codesign_args,
    count_layer_searches,
    hardware_of,
    load,
    states,
    write_network,
)

ROOT = Path(__file__).resolve().parents[2]
# Trials of a few seconds (an Optuna inner search per layer shape): long enough to be killed mid-way.
SLOW = ["--inner", "optuna", "--inner-space", "free", "--inner-trials", "150"]


@pytest.fixture
def network(tmp_path):
    return write_network(tmp_path)


def dse(*argv, log: Path) -> subprocess.Popen:
    """``dse ARGV`` as a process, its stderr (and its workers') in ``log`` for failure messages."""
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "studies.cli", *map(str, argv)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err)


def wait_for(condition, seconds: float = 120, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def running_with_worker(url: str):
    try:
        study = load(url)
    except Exception:                       # not created yet
        return None
    # Its design drawn and recorded (the last hardware figure is "buffer"): a trial killed earlier
    # has no design to compare.
    return [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"
            and cd.WORKER_ATTR in t.system_attrs and "buffer" in t.user_attrs]


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid and b"spawn_main" in cmdline:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@pytest.fixture(autouse=True)
def fresh_storages():
    """Each command opens its storage afresh, as a new process does (journals are checked on open)."""
    storage.close_all()
    yield
    storage.close_all()


def reopen():
    storage.close_all()


# ------------------------------------------------------------------------------------ journals
def study_on_journal(capsys, network, tmp_path, trials=2) -> tuple[str, Path]:
    path = tmp_path / "j.log"
    url = f"journal:///{path}"
    assert run(capsys, *codesign_args(network, url, trials=trials))[0] == 0
    return url, path


def test_a_torn_last_record_is_cut_on_open_and_the_original_kept(capsys, network, tmp_path):
    url, path = study_on_journal(capsys, network, tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op_code":8,"worker_id":"w","trial_id":1,"user_attr":{"lay')  # SIGKILL
    note = journal.repair(path)
    assert note and "cut a torn last record" in note
    assert path.read_bytes() == whole
    copy, = tmp_path.glob("j.log.damaged-*")
    assert copy.read_bytes().startswith(whole) and copy.stat().st_size > len(whole)
    assert journal.repair(path) is None                    # whole now
    # Through the command line: readable, every completed trial kept.
    path.write_bytes(whole + b'{"op_code":6,')
    reopen()
    code, out, err = run(capsys, "study", "show", "tiny", "--storage", url)
    assert code == 0 and "trials: 2 complete" in out and "cut a torn last record" in err


def test_a_record_glued_behind_a_torn_one_is_recovered(capsys, network, tmp_path):
    # What Optuna's own backend leaves after a failed write followed by a good one: the study became
    # unreadable (JSONDecodeError on every open).
    url, path = study_on_journal(capsys, network, tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[-3] = b'{"op_code":8,"worker_id":"w","tri' + lines[-3]      # records follow it
    path.write_bytes(b"\n".join(lines))
    reopen()
    with pytest.raises(ValueError):
        optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(path))))
    code, out, err = run(capsys, "study", "show", "tiny", "--storage", url)
    assert code == 0 and "trials: 2 complete" in out and "recovered 1 record" in err


def test_damage_in_the_middle_is_refused_naming_the_line(capsys, network, tmp_path):
    url, path = study_on_journal(capsys, network, tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[3] = b"garbage"
    path.write_bytes(b"\n".join(lines))
    reopen()
    code, _, err = run(capsys, "study", "show", "tiny", "--storage", url)
    assert code == 2 and "line 4 is not a journal record" in err and "Traceback" not in err


def test_a_failed_append_is_rolled_back_and_a_short_disk_refused(tmp_path, monkeypatch):
    path = tmp_path / "j.log"
    backend = journal.SafeJournalBackend(str(path))
    backend.append_logs([{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}])
    good = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal.os, "fsync", full_disk)
    with pytest.raises(SpecError, match=r"write failed .No space left on device.; the journal was rolled"):
        backend.append_logs([{"op_code": 2, "worker_id": "w", "study_id": 0, "user_attr": {"x": "y" * 999}}])
    assert path.read_bytes() == good
    monkeypatch.undo()
    monkeypatch.setattr(journal.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100, 99, 1))
    with pytest.raises(SpecError, match="not enough free space"):
        backend.append_logs([{"op_code": 2, "worker_id": "w", "study_id": 0, "user_attr": {"x": 1}}])
    assert path.read_bytes() == good


@pytest.mark.parametrize("step", ["acquire", "release"])
def test_a_stop_inside_the_journal_lock_waits_until_the_lock_is_released(tmp_path, monkeypatch, step):
    """SIGTERM (a worker's stop) delivered inside Optuna's lock acquire or release: the append is
    written whole, the lock is released, and the stop is raised after that, so the worker's usual
    KeyboardInterrupt path re-queues its trial (before the fix, Optuna's clean-up raised an internal
    error there and left the trial unqueued)."""
    from optuna.storages.journal import JournalFileSymlinkLock

    from studies import processes

    path = tmp_path / "j.log"
    backend = journal.SafeJournalBackend(str(path))
    original = getattr(JournalFileSymlinkLock, step)

    def stopped_inside(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)       # the handler runs here, inside the lock's code
        return original(self, *args, **kwargs)

    previous = signal.signal(signal.SIGTERM, processes._interrupt)
    try:
        monkeypatch.setattr(JournalFileSymlinkLock, step, stopped_inside)
        with pytest.raises(KeyboardInterrupt):
            backend.append_logs([{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}])
    finally:
        signal.signal(signal.SIGTERM, previous)
    monkeypatch.undo()
    assert not os.path.lexists(f"{path}.lock"), "the lock was left taken"
    assert [json.loads(line)["op_code"] for line in path.read_bytes().splitlines()] == [0]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only; in CI a failure to mount fails the test instead of skipping it)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    problem = None
    if os.geteuid() != 0 or not shutil.which("mount"):
        problem = "needs root to mount a tmpfs"
    else:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            problem = f"mount -t tmpfs failed: {done.stderr.strip()}"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"the full-disk test must run in CI: {problem}")
        pytest.skip(problem)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("spare", [journal.SPARE_BYTES, 0], ids=["refused-when-short", "real-enospc"])
def test_a_journal_study_keeps_every_completed_trial_through_a_full_disk(
        capsys, network, small_disk, monkeypatch, spare):
    monkeypatch.setattr(journal, "SPARE_BYTES", spare)    # 0: let the disk fill up for real
    url = f"journal:///{small_disk / 'j.log'}"
    assert run(capsys, *codesign_args(network, url, trials=3))[0] == 0
    before = {t.number: (t.values, t.params) for t in load(url).trials}
    free = shutil.disk_usage(small_disk).free
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * max(free - (spare + 20_000), 0))   # a few trials' worth of room left
    reopen()
    code, _, err = run(capsys, *codesign_args(network, url, trials=40))
    assert code == 2 and "Traceback" not in err and "internal error" not in err
    assert "journal" in err.splitlines()[-1] and "every completed trial is kept" in err.splitlines()[-1]
    assert (small_disk / "j.log").read_bytes().endswith(b"\n")
    filler.unlink()
    reopen()
    plain = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(small_disk / "j.log"))))
    after = {t.number: (t.values, t.params) for t in plain.trials if t.state.name == "COMPLETE"}
    assert {n: v for n, v in after.items() if n in before} == before
    assert len(after) < 40
    code, _, err = run(capsys, *codesign_args(network, url, trials=len(after) + 2))
    assert code == 0, err
    s = states(load(url))
    assert s["COMPLETE"] == len(after) + 2 and not s.get("RUNNING")   # the interrupted trial re-queued


# --------------------------------------------------------------------------------- dead workers
def test_a_dead_journal_worker_is_detected_without_a_flag(capsys, network, tmp_path):
    url = f"journal:///{tmp_path / 'j.log'}"
    hardware = {flag[2:].replace("-", "_"): value for flag, value in zip(HARDWARE[::2], HARDWARE[1::2],
                                                                             strict=True)}
    spec = cd.CodesignSpec.create(str(network), hardware=hardware, inner="optuna", inner_space="free",
                                  inner_trials=150, trials=2)
    cd.create_or_load(spec, "tiny", url)
    log = tmp_path / "stderr.txt"
    worker = dse("worker", "--study", "tiny", "--storage", url, log=log)
    try:
        victim = wait_for(lambda: running_with_worker(url), what="a running trial")[0]
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert load(url).trials[victim.number].state.name == "RUNNING"      # left behind, no heartbeat
    # Bounded: without the detection this would wait for the dead worker's trial forever.
    code, _, err = run(capsys, "study", "resume", "tiny", "--storage", url, "--timeout", "120",
                       "--output-dir", tmp_path / "best")
    assert code == 0, err
    assert "--retry-running" not in err
    study = load(url)
    s = states(study)
    assert s["COMPLETE"] == 2 and s["FAIL"] == 1 and not s.get("RUNNING")
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number)
    assert retry.state.name == "COMPLETE" and hardware_of(retry) == hardware_of(study.trials[victim.number])


@pytest.mark.parametrize("where", ["storage", "ask"])
def test_a_stop_before_the_objective_starts_leaves_no_trial_running(network, tmp_path, monkeypatch, where):
    """SIGTERM (the parent died) after Optuna created the worker's trial but before the objective
    learnt its id: the stop waits until the id is known, so the trial is failed, not left running
    with no worker recorded (CI once found a killed worker's trial RUNNING this way)."""
    from studies import processes

    url = f"journal:///{tmp_path / 'j.log'}"
    hardware = {flag[2:].replace("-", "_"): value for flag, value in zip(HARDWARE[::2], HARDWARE[1::2],
                                                                             strict=True)}
    spec = cd.CodesignSpec.create(str(network), hardware=hardware, trials=2)
    cd.create_or_load(spec, "tiny", url)
    stage = {"storage": (optuna.storages.JournalStorage, "create_new_trial"),
             "ask": (optuna.study.Study, "ask")}[where]
    original = getattr(*stage)

    def stopped_inside(self, *args, **kwargs):
        result = original(self, *args, **kwargs)       # the trial exists by now
        os.kill(os.getpid(), signal.SIGTERM)
        return result

    previous = signal.signal(signal.SIGTERM, processes._interrupt)
    try:
        monkeypatch.setattr(*stage, stopped_inside)
        with pytest.raises(KeyboardInterrupt):
            cd.run_worker("tiny", url)
    finally:
        signal.signal(signal.SIGTERM, previous)
    monkeypatch.undo()
    s = states(load(url))
    assert s == {"FAIL": 1}, s          # stopped before it drew a design: nothing to queue again


def test_workers_die_with_their_parent_and_never_see_the_storage_in_argv(capsys, network, tmp_path):
    url = f"journal:///{tmp_path / 'j.log'}"
    # 40 slow trials: the workers could not finish them in the seconds they are given to stop.
    log = tmp_path / "stderr.txt"
    parent = dse(*codesign_args(network, url, "--workers", "2", *SLOW, trials=40), log=log)
    kids: list[int] = []
    try:
        kids = wait_for(lambda: len(children(parent.pid)) == 2 and children(parent.pid), what="2 workers")
        for pid in kids:
            assert str(tmp_path) not in Path(f"/proc/{pid}/cmdline").read_text()
        wait_for(lambda: running_with_worker(url), what="a running trial")
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        wait_for(lambda: not any(alive(pid) for pid in kids), seconds=15, what="the workers to exit")
    finally:
        for pid in kids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
    study = load(url)
    s = states(study)
    assert s.get("COMPLETE", 0) < 40 and not s.get("RUNNING") and s.get("FAIL", 0) >= 1, (s, log.read_text())
    # Each worker failed its trial as it stopped, and queued it again if it had drawn its design.
    retried = {t.system_attrs.get("failed_trial") for t in study.trials if t.state.name == "WAITING"}
    failed = {t.number for t in study.trials if t.state.name == "FAIL" and t.params}
    assert retried == failed, log.read_text()
    done = s.get("COMPLETE", 0)
    code, _, err = run(capsys, "study", "resume", "tiny", "--storage", url, "--trials", done + 1,
                       "--output-dir", tmp_path / "b")
    assert code == 0, err
    s = states(load(url))
    assert s["COMPLETE"] == done + 1 and not s.get("RUNNING")


# ------------------------------------------------------------------------ resume and duplicates
def test_a_resumed_study_draws_new_designs_instead_of_replaying_its_random_start(capsys, network, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run(capsys, *codesign_args(network, url, trials=4))[0] == 0
    assert run(capsys, *codesign_args(network, url, trials=8))[0] == 0
    study = load(url)
    # TPE's first 10 trials are random: with the same seed a resumed run drew trials 0-3 again.
    assert states(study) == {"COMPLETE": 8}
    designs = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(designs)) == 8
    assert cd.sampler_seed(0, 0, 0) == 0 and cd.sampler_seed(5, 2, 0) == 7
    assert len({cd.sampler_seed(0, 0, n) for n in range(1, 50)}) == 49


def test_a_design_already_complete_is_answered_from_storage(capsys, network, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run(capsys, *codesign_args(network, url, trials=3))[0] == 0
    study = load(url)
    study.enqueue_trial(study.trials[1].params)
    searched = count_layer_searches(monkeypatch)
    code, out, _ = run(capsys, *codesign_args(network, url, trials=5))
    assert code == 0 and "1 repeated design(s) answered from storage" in out
    study = load(url)
    original, repeat, fresh = study.trials[1], study.trials[3], study.trials[4]
    assert repeat.state.name == "COMPLETE" and repeat.user_attrs["duplicate_of"] == 1
    assert repeat.values == original.values and repeat.constraints == original.constraints
    kept = {k: v for k, v in original.user_attrs.items() if k not in cd._NOT_COPIED}
    assert {k: v for k, v in repeat.user_attrs.items() if k not in cd._NOT_COPIED} == kept
    assert repeat.user_attrs["cache_hits"] == repeat.user_attrs["cache_misses"] == 0
    assert states(study) == {"COMPLETE": 5}
    # Only the fresh design was searched.
    assert searched["n"] == fresh.user_attrs["cache_misses"] and fresh.params != original.params
    frame = pd.read_csv(tmp_path / "t.csv") if run(capsys, "study", "export", "tiny", "--storage", url,
                                                   "--output", tmp_path / "t.csv")[0] == 0 else None
    assert frame is not None and frame.duplicate_of.fillna(-1).tolist() == [-1, -1, -1, 1, -1]


def test_a_study_asking_for_more_trials_than_its_space_has_designs_ends(capsys, network, tmp_path,
                                                                        monkeypatch):
    argv = codesign_args(network, f"sqlite:///{tmp_path / 's.db'}", trials=6)
    for flag, value in (("--num-pes", "4,8"), ("--l1-size", "128"), ("--l2-size", "16384"),
                        ("--noc-bw", "16"), ("--offchip-bw", "32")):
        argv[argv.index(flag) + 1] = value
    searched = count_layer_searches(monkeypatch)
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    study = load(f"sqlite:///{tmp_path / 's.db'}")
    assert states(study) == {"COMPLETE": 6}
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 2
    assert sum("duplicate_of" in t.user_attrs for t in study.trials) == 4
    assert searched["n"] == 2 * 3                      # 2 designs x 3 layer shapes, each once


def test_the_journal_records_which_process_runs_a_trial(capsys, network, tmp_path):
    url, path = study_on_journal(capsys, network, tmp_path, trials=1)
    worker = load(url).trials[0].system_attrs[cd.WORKER_ATTR]
    assert worker["pid"] == os.getpid() and worker["host"]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert any(r.get("system_attr", {}).get(cd.WORKER_ATTR) for r in records)
