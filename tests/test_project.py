"""The project as a user meets it: package names, README commands and example, CI entry point."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_packages_are_this_repository():
    # "spaces" also exists on PyPI: make sure each name resolves here.
    for name in ("costmodel", "spaces", "search", "studies"):
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().is_relative_to(ROOT), (name, module.__file__)


def test_readme_starts_with_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(make \w+)", text, re.M)
    assert commands[:2] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_python_example_runs():
    code = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})


def test_cost_model_does_not_import_upward():
    """Dependencies point one way: studies -> search -> spaces -> costmodel."""
    forbidden = {"costmodel": ("spaces", "search", "studies", "optuna", "ortools"),
                 "spaces": ("search", "studies"), "search": ("studies",)}
    for package, names in forbidden.items():
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            for name in names:
                assert not re.search(rf"^\s*(from|import)\s+{name}\b", text, re.M), (path, name)


def test_cost_model_benchmark_prints_both_engines_side_by_side():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.costmodel", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()
            if line and not line.startswith(("#", "figure"))}
    for key in ("single_eval_us", "batched_evals_per_s", "mixed_evals_per_s", "sweep_designs_per_s",
                "batched_evals_per_s_all_cores"):
        reference, compiled, ratio = (float(v.rstrip("x").replace(",", "")) for v in rows[key][:3])
        assert reference > 0 and compiled > 0 and ratio > 0, (key, rows[key])
    assert int(rows["sweep_designs"][1].replace(",", "")) >= 1_000_000
    assert float(rows["jit_load_s"][0]) > 0 and float(rows["cli_eval_one_layer_s"][0]) > 0


def test_search_benchmark_prints_its_keys():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.search", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    keys = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert keys["free2_layers"] == "2" and keys["coarse_cpsat_within_1pct"] == "2/2"
    for key in ("free2_cpsat_median_cpu_s", "free2_cost_model_share_median",
                "free2_cpsat_median_bound_gap_pct", "pareto_cpsat_recovered", "pareto_nsga2_recovered"):
        assert 0 <= float(keys[key]) < 1e6


def test_codesign_benchmark_prints_its_keys():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.codesign", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    keys = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert float(keys["sweep_designs_per_s"]) > 0 and int(keys["grid_designs"]) == 16
    # The exhaustive grid and the study's inner search agree; the study cannot beat the grid optimum.
    assert keys["grid_check_matches_inner_search"] == "True"
    assert float(keys["study_gap_after_50_median_pct"]) >= 0


def _limit_value(cell: str) -> int:
    cell = cell.replace(",", "")
    if m := re.search(r"(\d+) (MiB|GiB)", cell):
        return int(m[1]) << (20 if m[2] == "MiB" else 30)
    if m := re.search(r"\b(2|10)\^(\d+)( - 1)?", cell):
        return int(m[1]) ** int(m[2]) - (1 if m[3] else 0)
    return int(re.search(r"\d+", cell)[0])


def test_readme_limits_are_the_code_limits():
    from costmodel import limits

    section = (ROOT / "README.md").read_text().split("## Limits", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (.+?) \| (.+?) \| `(MAX_\w+)` \|$", section, re.M)
    documented = {name: _limit_value(value) for _, value, name in rows}
    constants = {n: getattr(limits, n) for n in limits.__all__ if n.startswith("MAX_")}
    assert documented == constants
