"""``dse dashboard``: Optuna Dashboard served on 127.0.0.1, answering for a co-design study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from .cli_helpers import run
from .codesign_helpers import codesign_args, write_network

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


def test_the_dashboard_serves_a_study_and_stops(capsys, tmp_path):
    network = write_network(tmp_path)
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run(capsys, *codesign_args(network, url, "--objective", "latency,energy", trials=3))[0] == 0
    proc = subprocess.Popen([sys.executable, "-m", "studies.cli", "dashboard", "tiny", "--storage", url,
                             "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline()
        assert line.startswith("Optuna Dashboard on http://127.0.0.1:"), line + proc.stderr.read()
        page = line.split()[3]
        base = page[:page.index("/dashboard")]
        status, body = _get(f"{base}/api/studies")
        studies = json.loads(body)["study_summaries"]
        assert status == 200 and [s["study_name"] for s in studies] == ["tiny"]
        assert len(body) < 4000                  # a summary: no network text, no mapping cache
        status, body = _get(f"{base}/api/studies/{studies[0]['study_id']}")
        detail = json.loads(body)
        assert detail["objective_names"] == ["latency (cycles)", "energy (nJ)"]
        params = {p["name"]: p["distribution"] for p in detail["union_search_space"]}
        assert params["num_pes"]["low"] == 4 and params["num_pes"]["high"] == 32 and params["num_pes"]["log"]
        assert all(not name.endswith("_index") for name in params)
        status, body = _get(page)
        assert status == 200 and b"<html" in body.lower()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "dashboard stopped" in err, err


def test_the_dashboard_names_a_missing_study_or_storage(capsys, tmp_path):
    code, _, err = run(capsys, "dashboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    network = write_network(tmp_path)
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run(capsys, *codesign_args(network, url, trials=1))[0] == 0
    code, _, err = run(capsys, "dashboard", "nope", "--storage", url)
    assert code == 2 and "no study named 'nope'" in err
