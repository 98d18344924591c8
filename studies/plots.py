"""PNG figures of a co-design study (matplotlib, an optional extra: ``pip install 'dataflow-dse[plot]'``).

- ``<study>-pareto.png``: latency against energy of every feasible design, the Pareto front joined;
- ``<study>-history.png``: each trial's objective and the best so far, against the trial number;
- ``<study>-layers.png``: the best design's runtime per layer (repeats counted), largest first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna

from costmodel import SpecError

from .codesign import CodesignSpec
from .outputs import check_output_dir, output_path
from .results import OBJECTIVE_COLUMN, best_rows, pareto_rows, trials_frame
from .winner import layer_rows


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SpecError("plots need matplotlib (pip install 'dataflow-dse[plot]')", key="plot") from None
    matplotlib.use("Agg")                    # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_study(study: optuna.Study, spec: CodesignSpec, directory: Path) -> list[Path]:
    plt = _pyplot()
    check_output_dir(directory)
    if not directory.is_dir():
        raise SpecError(f"directory {directory} does not exist", key="--output-dir")
    frame = trials_frame(study, spec)
    feasible = frame[frame.feasible.astype(bool)]
    if feasible.empty:
        raise SpecError(f"study {study.study_name} has no feasible design to plot yet", key="study")
    name = study.study_name
    paths = []

    # Pareto front: latency vs energy (whatever the study optimised, both are stored).
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(feasible.latency_cycles, feasible.energy_nj, s=12, alpha=0.5, label="feasible designs")
    front = pareto_rows(feasible, ("latency", "energy"))
    ax.plot(front.latency_cycles, front.energy_nj, "o-", color="C3", label="Pareto front")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("network latency (cycles)")
    ax.set_ylabel("network energy (nJ)")
    ax.set_title(f"{name}: {len(feasible)} feasible of {len(frame)} trials")
    ax.legend()
    paths.append(_save(fig, directory / f"{name}-pareto.png"))

    # History of the first objective.
    column = OBJECTIVE_COLUMN[spec.objectives[0]]
    done = frame[frame.state == "COMPLETE"].sort_values("trial")
    values = done[column].astype(float).where(done.feasible.astype(bool))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(done.trial, values, s=10, alpha=0.6, label="feasible trial")
    ax.step(done.trial, np.fmin.accumulate(values.fillna(np.inf).to_numpy()), where="post", color="C3",
            label="best so far")
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel(column.replace("_", " "))
    ax.set_title(f"{name}: optimisation history")
    ax.legend()
    paths.append(_save(fig, directory / f"{name}-history.png"))

    # Per-layer runtime of the best design.
    best = best_rows(frame, spec.objectives).iloc[0]
    rows = [r for r in layer_rows(study, spec, study.trials[int(best.trial)]) if r["runtime_cycles"]]
    rows.sort(key=lambda r: r["runtime_cycles"] * r["count"], reverse=True)
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.22 * len(rows))))
    ax.barh([f"{r['layer']} x{r['count']}" for r in rows], [r["runtime_cycles"] * r["count"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("runtime (cycles, repeats counted)")
    ax.set_title(f"{name}: trial {int(best.trial)}, {int(best.num_pes)} PEs")
    paths.append(_save(fig, directory / f"{name}-layers.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with output_path(path, "--output-dir") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


__all__ = ["plot_study"]
