"""Co-design studies on a real PostgreSQL server: several workers on one study, a worker killed
with SIGKILL mid-trial, passwords kept out of the URL (PGPASSWORD, .pgpass) and passwords with any
character.

The server's URL comes from ``DSE_TEST_POSTGRES_URL`` (``.ci/run`` installs PostgreSQL, starts it on
loopback and sets it), and ``DSE_TEST_POSTGRES_AT_URL`` names a second role whose password holds
``@ : /`` characters. In CI (``CI`` set) a missing server is a failure, not a skip.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from studies import codesign as cd
from studies import storage
from studies.storage import password_of

from .cli_helpers import run
from .codesign_helpers import codesign_args, hardware_of, load, states, write_network

ROOT = Path(__file__).resolve().parents[2]


def _url(variable: str) -> str:
    url = os.environ.get(variable)
    if not url:
        message = f"{variable} is not set (a postgresql:// URL of a scratch database)"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must provide PostgreSQL (.ci/run starts it)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="module")
def postgres_url() -> str:
    return _url("DSE_TEST_POSTGRES_URL")


@pytest.fixture
def study_name() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def test_several_workers_finish_exactly_the_requested_trials(capsys, tmp_path, postgres_url, study_name):
    network = write_network(tmp_path)
    code, _, err = run(capsys, *codesign_args(network, postgres_url, "--workers", "3", trials=15,
                                              study=study_name))
    assert code == 0, err
    s = states(load(postgres_url, study_name))
    assert s.get("COMPLETE") == 15 and not s.get("FAIL") and not s.get("RUNNING")
    # Another worker joining a finished study does nothing.
    code, _, err = run(capsys, "worker", "--study", study_name, "--storage", postgres_url)
    assert code == 0 and states(load(postgres_url, study_name)).get("COMPLETE") == 15


def test_a_worker_killed_mid_trial_is_retried_and_nothing_is_lost_or_duplicated(
        capsys, tmp_path, postgres_url, study_name):
    # ResNet-50 with CP-SAT mapping on a coarse space: trials of a few seconds, 21 layer shapes each.
    trials = 3
    spec = cd.CodesignSpec.create(
        "resnet50", hardware={"num_pes": "64,256", "simd_lanes": "1", "l1_size": "512", "l2_size": "131072",
                              "noc_bw": "64,256", "offchip_bw": "64", "noc_hop_latency": "1"},
        inner="cpsat", inner_space="coarse", inner_time_limit=0.5, trials=trials)
    study = cd.create_or_load(spec, study_name, postgres_url)
    worker = subprocess.Popen(
        [sys.executable, "-m", "studies.cli", "worker", "--study", study_name, "--storage", postgres_url,
         "--heartbeat", "1", "--grace-period", "3"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        victim = None
        while victim is None and time.monotonic() < deadline:
            time.sleep(0.05)
            cached = len(cd.mapcache.for_study(study))
            running = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
            if running and cached >= 2:
                victim = running[0]
        assert victim is not None, "the worker never got going"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    killed = study._storage.get_trial(victim._trial_id)
    assert killed.state.name == "RUNNING"                 # SIGKILL left it behind, heartbeat stopped

    code, _, err = run(capsys, "study", "resume", study_name, "--storage", postgres_url,
                       "--heartbeat", "1", "--grace-period", "3", "--output-dir", tmp_path / "best")
    assert code == 0, err
    study = load(postgres_url, study_name)
    s = states(study)
    assert s.get("COMPLETE") == trials and s.get("FAIL") == 1 and not s.get("RUNNING")
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    assert failed.number == killed.number
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert hardware_of(retries[0]) == hardware_of(failed)
    # The killed trial's finished layers are reused by the first trial that searched its design (the
    # retry, or a trial that drew the same design before the retry ran, which the retry then repeats).
    searched = [t for t in study.trials if t.number > failed.number and t.state.name == "COMPLETE"
                and hardware_of(t) == hardware_of(failed) and "duplicate_of" not in t.user_attrs]
    assert searched and searched[0].user_attrs["cache_hits"] >= 1
    assert (tmp_path / "best" / "mapping.m").exists()


def test_the_password_can_stay_out_of_the_url(capsys, tmp_path, postgres_url, study_name, monkeypatch):
    full = make_url(postgres_url)
    password = full.password
    bare = f"{full.drivername}://{full.username}@{full.host}:{full.port}/{full.database}"
    assert password and password_of(bare) is None
    network = write_network(tmp_path)
    monkeypatch.setenv("PGPASSWORD", password)                # libpq's own variable
    code, _, err = run(capsys, *codesign_args(network, bare, trials=2, study=study_name))
    assert code == 0, err
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{full.host}:{full.port}:{full.database}:{full.username}:{password}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))             # ~/.pgpass elsewhere
    storage.close_all()                                     # new connections
    code, out, err = run(capsys, "study", "show", study_name, "--storage", bare)
    assert code == 0 and "trials: 2 complete" in out, err
    # Neither given: the server refuses, so it was the variable and the file that let us in.
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    storage.close_all()
    code, _, err = run(capsys, "study", "list", "--storage", bare)
    assert code == 2 and "password" in err and "Traceback" not in err
    storage.close_all()


def test_a_password_with_at_signs_colons_and_slashes_connects(capsys, tmp_path, study_name):
    url = _url("DSE_TEST_POSTGRES_AT_URL")
    password = password_of(url)
    assert "@" in password and ":" in password and "/" in password
    network = write_network(tmp_path)
    code, out, err = run(capsys, *codesign_args(network, url, trials=1, study=study_name))
    assert code == 0, err
    assert password not in out + err and password.split("@")[-1] not in out + err
    assert states(load(url, study_name)).get("COMPLETE") == 1
