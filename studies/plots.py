"""PNG figures of a co-design study (matplotlib, an optional extra: ``pip install 'dataflow-dse[plot]'``).

- ``<study>-pareto.png``: latency against energy of every feasible design, the Pareto front joined;
- ``<study>-history.png``: each objective per trial with the best so far (and, for two objectives, the
  hypervolume of the front so far); infeasible trials marked along the top;
- ``<study>-budget.png``: area against power of every trial, feasible or not, with the budget's lines;
- ``<study>-layers.png``: the chosen design's runtime per layer (repeats counted), largest first;
- ``<study>-networks.png`` (a mix, or a study with latency targets): the chosen design's latency per
  network (one inference, ms) against the network's target.

Every figure marks the chosen design (the best, or the front's lowest-latency point, unless a trial is
named) and names its whole hardware.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from costmodel import SpecError
from search.pareto import hypervolume_2d, pareto_mask

from .codesign import CodesignSpec
from .outputs import check_output_dir, output_path
from .progress import size
from .results import OBJECTIVE_COLUMN, chosen_row, pareto_rows, trials_frame
from .winner import layer_rows

LABEL = {"latency": "network latency (cycles)", "energy": "network energy (nJ)",
         "edp": "energy-delay product (cycles x nJ)", "area": "area (mm^2)"}
MIX_LABEL = {"latency": "weighted latency of the mix (cycles)", "energy": "weighted energy of the mix (nJ)",
             "edp": "weighted EDP of the mix (cycles x nJ)", "area": "area (mm^2)"}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SpecError("plots need matplotlib (pip install 'dataflow-dse[plot]')", key="plot") from None
    matplotlib.use("Agg")                    # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def hardware_text(row: pd.Series) -> str:
    """The whole hardware of a design, for titles."""
    return (f"{int(row.num_pes)} PEs x {int(row.simd_lanes)} lanes, L1 {size(int(row.l1_size))}/PE, "
            f"L2 {size(int(row.l2_size))}, NoC {int(row.noc_bw)}, off-chip {int(row.offchip_bw)} el/cycle")


def chosen_text(row: pd.Series) -> str:
    return f"trial {int(row.trial)}: {hardware_text(row)}; {row.area_mm2:.2f} mm^2, {row.power_mw:,.0f} mW"


def plot_study(study: optuna.Study, spec: CodesignSpec, directory: Path, *,
               trial: int | None = None) -> list[Path]:
    """Write the study's figures into ``directory`` (created); ``trial`` picks the design to mark and
    break down by layer (default: :func:`studies.results.chosen_row`)."""
    plt = _pyplot()
    directory = check_output_dir(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"cannot create {directory}: {exc.strerror or exc}", key="--output-dir") from None
    frame = trials_frame(study, spec)
    feasible = frame[frame.feasible.astype(bool)]
    if feasible.empty:
        raise SpecError(f"study {study.study_name} has no feasible design to plot yet", key="study")
    if trial is None:
        chosen, why = chosen_row(frame, spec.objectives)
    else:
        match = feasible[feasible.trial == trial]
        if match.empty:
            raise SpecError(f"trial {trial} of study {study.study_name} is not a feasible design (feasible "
                            f"trials: {', '.join(map(str, feasible.trial.head(12)))}...)", key="--trial")
        chosen, why = match.iloc[0], "as asked"
    name = study.study_name
    labels = MIX_LABEL if spec.is_mix else LABEL
    paths = [
        _pareto(plt, frame, feasible, chosen, why, directory / f"{name}-pareto.png", name, labels),
        _history(plt, frame, spec, chosen, directory / f"{name}-history.png", name, labels),
        _budget(plt, frame, spec, chosen, directory / f"{name}-budget.png", name),
        _layers(plt, study, spec, chosen, why, directory / f"{name}-layers.png", name),
    ]
    if spec.is_mix or spec.targets:
        paths.append(_networks(plt, spec, chosen, why, directory / f"{name}-networks.png", name))
    return paths


def short_number(value: float) -> str:
    """A tick label: 40k, 12.5M, 3G, 0.04 (never 4 x 10^-2)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def _log_axes(ax, *names: str) -> None:
    """Log scale with plain tick labels; between decades every tick labelled when the axis spans less
    than a decade, the 2 and 5 when it spans less than two (more would crowd it)."""
    from matplotlib.ticker import FuncFormatter

    for name in names:
        axis = ax.xaxis if name == "x" else ax.yaxis
        (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        lo, hi = (ax.get_xlim() if name == "x" else ax.get_ylim())
        span = hi / lo

        def minor(v, _pos, span=span):
            lead = round(v / 10 ** np.floor(np.log10(v)), 6)
            return short_number(v) if span < 10 or (span < 100 and lead in (2, 5)) else ""

        axis.set_major_formatter(FuncFormatter(lambda v, _pos: short_number(v)))
        axis.set_minor_formatter(FuncFormatter(minor))


def _legend(ax) -> None:
    """Beside the plot, where it hides no point."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _mark(ax, x, y, text: str) -> None:
    ax.scatter([x], [y], marker="*", s=220, color="gold", edgecolor="black", zorder=5, label=text)


def _pareto(plt, frame, feasible, chosen, why, path, name, labels=LABEL) -> Path:
    fig, ax = plt.subplots(figsize=(10, 5.2))
    ax.scatter(feasible.latency_cycles, feasible.energy_nj, s=14, alpha=0.5, label="feasible designs")
    front = pareto_rows(feasible, ("latency", "energy"))
    ax.plot(front.latency_cycles, front.energy_nj, "o-", color="C3", ms=5,
            label=f"Pareto front ({len(front)} designs)")
    _mark(ax, chosen.latency_cycles, chosen.energy_nj, f"chosen: trial {int(chosen.trial)} ({why})")
    _log_axes(ax, "x", "y")
    ax.set_xlabel(labels["latency"])
    ax.set_ylabel(labels["energy"])
    _titles(ax, f"{name}: {len(feasible)} feasible designs of {len(frame)} trials", chosen)
    _legend(ax)
    return _save(fig, path)


def _history(plt, frame, spec, chosen, path, name, labels=LABEL) -> Path:
    done = frame[frame.state == "COMPLETE"].sort_values("trial")
    ok = done.feasible.astype(bool)
    panels = list(spec.objectives) + (["hypervolume"] if len(spec.objectives) > 1 else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.9 * len(panels) + 0.6), sharex=True,
                             squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        if panel == "hypervolume":
            ax.plot(done.trial, _hypervolume_history(done, spec.objectives), color="C2",
                    drawstyle="steps-post", label="front so far")
            ax.set_ylabel("hypervolume of the front\n(log axes, share of the box)")
            ax.set_ylim(0, 1)
            _legend(ax)
            continue
        column = OBJECTIVE_COLUMN[panel]
        values = done[column].astype(float).where(ok)
        ax.scatter(done.trial[ok], values[ok], s=12, alpha=0.6, label="feasible trial")
        ax.step(done.trial, np.fmin.accumulate(values.fillna(np.inf).to_numpy()), where="post", color="C3",
                label="best so far")
        bad = done[~ok]
        if len(bad):
            # Infeasible trials have no value: marked along the top of the panel.
            ax.scatter(bad.trial, np.full(len(bad), 0.97), transform=ax.get_xaxis_transform(), marker="x",
                       color="grey", s=18, label=f"infeasible, no value: {_reasons(bad)}")
        _mark(ax, chosen.trial, chosen[column], f"chosen: trial {int(chosen.trial)}")
        _log_axes(ax, "y")
        ax.set_ylabel(labels[panel])
        _legend(ax)
    axes[-1, 0].set_xlabel("trial")
    _titles(axes[0, 0], f"{name}: optimisation history ({len(done)} complete trials)", chosen)
    return _save(fig, path)


def _hypervolume_history(done: pd.DataFrame, objectives) -> np.ndarray:
    """After each trial, the hypervolume of the feasible front so far on log axes, as a share of the
    box from the best values to a little past the worst (so it reads the same in any units)."""
    ok = done.feasible.astype(bool).to_numpy()
    if not ok.any():
        return np.zeros(len(done))
    values = np.log(done[[OBJECTIVE_COLUMN[o] for o in objectives]].to_numpy(dtype=float)[:, :2])
    best, worst = values[ok].min(axis=0), values[ok].max(axis=0)
    reference = worst + 0.05 * np.maximum(worst - best, 1e-9)
    box = float(np.prod(reference - best))
    out = []
    for i in range(len(done)):
        seen = values[: i + 1][ok[: i + 1]]
        out.append(hypervolume_2d(seen[pareto_mask(seen)], reference) / box if len(seen) else 0.0)
    return np.array(out)


def _budget(plt, frame, spec, chosen, path, name) -> Path:
    rows = frame[frame.area_mm2.notna()]
    fig, ax = plt.subplots(figsize=(10, 5.2))
    ok = rows.feasible.astype(bool)
    ax.scatter(rows.area_mm2[ok], rows.power_mw[ok], s=14, alpha=0.6, label=f"feasible ({int(ok.sum())})")
    if (~ok).any():
        ax.scatter(rows.area_mm2[~ok], rows.power_mw[~ok], s=22, marker="x", color="grey",
                   label=f"infeasible: {_reasons(rows[~ok])}")
    for key, draw, text, style in (("max_area_mm2", ax.axvline, "area budget {:g} mm^2", "--"),
                                   ("max_power_mw", ax.axhline, "power budget {:g} mW", ":")):
        if spec.budget.get(key) is not None:
            draw(spec.budget[key], color="C3", linestyle=style, label=text.format(spec.budget[key]))
    _mark(ax, chosen.area_mm2, chosen.power_mw, f"chosen: trial {int(chosen.trial)}")
    # Room beyond the budget lines, so they do not sit on the frame.
    for key, column, setter in (("max_area_mm2", rows.area_mm2, ax.set_xlim),
                                ("max_power_mw", rows.power_mw, ax.set_ylim)):
        top = max(float(column.max()), spec.budget.get(key) or 0)
        setter(float(column.min()) / 1.3, top * 1.3)
    _log_axes(ax, "x", "y")
    ax.set_xlabel("area (mm^2)")
    ax.set_ylabel("power (mW)")
    _titles(ax, f"{name}: area and power of every trial", chosen)
    _legend(ax)
    return _save(fig, path)


def _reasons(rows: pd.DataFrame) -> str:
    """Why trials are infeasible, counted: 'no mapping fits 6, budget 1, failed 2'."""
    kinds = rows.infeasible.fillna("").astype(str).str.split(":").str[0].replace("", "other")
    kinds = kinds.where(rows.state != "FAIL", "failed")
    return ", ".join(f"{kind} {n}" for kind, n in kinds.value_counts().items())


def _layers(plt, study, spec, chosen, why, path, name) -> Path:
    rows = [r for r in layer_rows(study, spec, study.trials[int(chosen.trial)]) if r["runtime_cycles"]]
    rows.sort(key=lambda r: r["runtime_cycles"] * r["count"], reverse=True)
    fig, ax = plt.subplots(figsize=(8.5, max(3.2, 0.22 * len(rows) + 1.4)))
    ax.barh([f"{r['layer']} x{r['count']}" for r in rows], [r["runtime_cycles"] * r["count"] for r in rows])
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7 if len(rows) > 30 else 9)
    ax.set_xlabel("runtime (cycles, repeats counted)")
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: short_number(v)))
    total = sum(r["runtime_cycles"] * r["count"] for r in rows)
    _titles(ax, f"{name}: runtime per layer of the chosen design, {total:,} cycles in all", chosen,
            f"chosen: {why} (dse study plot --trial N shows another)")
    return _save(fig, path)


def _networks(plt, spec, chosen, why, path, name) -> Path:
    """Per network: the chosen design's latency (ms, one inference) as a bar, its target as a red line,
    the share of the target used written beside."""
    limits = spec.target_limits_ms()
    nets = spec.network_names()
    weights = spec.weights()
    latency = [float(chosen[f"latency_ms_{net}"]) for net in nets]
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.75 * len(nets)))
    y = np.arange(len(nets))
    colors = ["C3" if net in limits and latency[i] > limits[net] else "C0" for i, net in enumerate(nets)]
    ax.barh(y, latency, color=colors, height=0.55, label="latency of the chosen design")
    shown_target = False
    for i, net in enumerate(nets):
        if net in limits:
            ax.plot([limits[net]] * 2, [i - 0.4, i + 0.4], color="C3", linewidth=2.5,
                    label=None if shown_target else "target (max latency)")
            shown_target = True
            note = f"{latency[i]:.3g} ms = {100 * latency[i] / limits[net]:.0f}% of {limits[net]:.4g} ms"
        else:
            note = f"{latency[i]:.3g} ms, no target"
        ax.annotate(note, (max(latency[i], limits.get(net, 0)), i), xytext=(6, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(y, [f"{net}" + (f" (weight {weights[net]:g})" if spec.is_mix else "") for net in nets])
    ax.invert_yaxis()
    top = max(latency + list(limits.values()))
    low = min(latency + list(limits.values()))
    ax.set_xlim(low / 3, top * 40)          # room for the notes
    _log_axes(ax, "x")
    ax.set_xlabel(f"latency of one inference (ms at {spec.clock_mhz:g} MHz, log scale)")
    _titles(ax, f"{name}: latency per network of the chosen design against its target", chosen,
            f"chosen: {why}")
    _legend(ax)
    return _save(fig, path)


def _titles(ax, title: str, chosen: pd.Series, *more: str) -> None:
    ax.set_title("\n".join((title, chosen_text(chosen), *more)), fontsize=9)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with output_path(path, "--output-dir") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


__all__ = ["chosen_text", "hardware_text", "plot_study", "short_number"]

