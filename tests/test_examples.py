"""The examples run as documented (README, "Python API"), and print what the library computes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from costmodel import Accelerator, Layer, evaluate, read_dataflow
from costmodel.networks import bundled_dataflow

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_tour_runs_and_reports_the_library_s_figures(tmp_path):
    url = f"sqlite:///{tmp_path / 'tour.db'}"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "api_tour.py"), "--storage", url,
                           "--output-dir", str(tmp_path / "best")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""                       # no log lines of Optuna's, no warnings
    out = proc.stdout
    # Part 1: the same figure the library gives here.
    cost = evaluate(Layer.conv("conv3x3", K=64, C=64, R=3, S=3, Y=58, X=58),
                    read_dataflow(bundled_dataflow("kcp_ws")),
                    Accelerator(num_pes=256, noc_bw=256, noc_hop_latency=1, l1_size=512, l2_size=131072))
    assert f"   {cost.runtime_cycles:,} cycles, {cost.energy_nj:,.1f} nJ" in out
    # Part 2: five layer shapes, each searched to its optimum, and their total.
    assert len(re.findall(r"\(optimal, [\d,]+ mappings;", out)) == 5
    found = re.findall(r" x(\d+): +([\d,]+) cycles", out)
    per_layer = [(int(n), int(c.replace(",", ""))) for n, c in found]
    total = int(re.search(r"together, repeats counted: ([\d,]+) cycles", out).group(1).replace(",", ""))
    assert total == sum(n * c for n, c in per_layer)
    # Part 3: the study ran its six trials and the answer was written out.
    assert re.search(r"\d feasible of 6 trials; lowest latency: trial \d", out)
    assert f"wrote {tmp_path / 'best' / 'hardware.m'}" in out and (tmp_path / "best" / "mapping.m").exists()


def test_the_readme_s_python_api_snippets_run(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Python API"):]
    section = section[:section.index("\n## ", 1)]
    code = "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))
    assert code.count("import") >= 5 and "run_worker" in code
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lowest latency trial" in proc.stdout and (tmp_path / "notebook-best" / "mapping.m").exists()
