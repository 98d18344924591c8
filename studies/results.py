"""What a stored co-design study holds, as a table, and the questions asked of it.

:func:`trials_frame` gives one row per trial with these columns (the export format):

- ``trial``, ``state`` (COMPLETE, PRUNED, FAIL, RUNNING, WAITING), ``retry_of`` (the trial it re-runs),
  ``duplicate_of`` (the trial whose stored answer it repeats: the same design, nothing searched);
- hardware: ``num_pes, simd_lanes, l1_size, l2_size, noc_bw, offchip_bw, noc_hop_latency``;
- cost: ``area_mm2, power_mw, buffer`` (PEs x L1 + L2, elements);
- objectives: ``latency_cycles, energy_nj, edp`` (empty unless every layer was mapped; in a mix, the
  weighted sums over the networks);
- ``feasible`` (within the study's budget, every layer mapped, every latency target met), ``mapped``
  (the same, targets aside: what a query with other targets or weights chooses from), ``infeasible``
  (why not), ``c_<name>`` the constraint values Optuna saw (<= 0 met: ``c_max_area_mm2`` ...
  ``c_mapping``, ``c_latency_<network>`` for a target);
- in a mix or a study with targets, per network: ``latency_cycles_<net>``, ``latency_ms_<net>``,
  ``energy_nj_<net>``, ``edp_<net>`` (one inference);
- ``cache_hits, cache_misses, seconds`` of the trial's inner searches;
- per layer: ``runtime_<layer>`` and ``energy_<layer>`` (one layer instance; multiply by its count).

:func:`networks_frame` gives one row per (trial, network) of a mix: the trial's hardware, area and power,
the network's weight, figures, target (ms) and whether it is met.

Questions (:func:`best_rows`, :func:`pareto_rows`, :func:`query`) are answered from these tables alone:
no trial is re-run. A query may change the budget (tighter), the weights of a mix and the latency
targets (:class:`Question`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import optuna
import pandas as pd

from search.pareto import pareto_mask
from spaces.hardware import HW_PARAMS, Budget

from . import mix
from .codesign import LAYERS_ATTR, NETWORKS_ATTR, CodesignSpec

OBJECTIVE_COLUMN = {"latency": "latency_cycles", "energy": "energy_nj", "edp": "edp", "area": "area_mm2"}
BASE_COLUMNS = ("trial", "state", "retry_of", "duplicate_of", *HW_PARAMS, "area_mm2", "power_mw", "buffer",
                "latency_cycles", "energy_nj", "edp", "feasible", "mapped", "infeasible")
NETWORK_FIGURES = ("latency_cycles", "latency_ms", "energy_nj", "edp")
TARGET_PREFIX = "latency_"          # a target's constraint: latency_<network>
BUDGET_FIGURE = {"max_area_mm2": "area_mm2", "max_power_mw": "power_mw", "max_pes": "num_pes",
                 "max_buffer": "buffer"}


def trials_frame(study: optuna.Study, spec: CodesignSpec) -> pd.DataFrame:
    rows = []
    layer_names = [layer.name for layer in spec.layers()]
    networks = spec.network_names()
    per_network = spec.is_mix or bool(spec.targets)
    targets = {TARGET_PREFIX + net for net in spec.targets}
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        row = {"trial": t.number, "state": t.state.name,
               "retry_of": t.system_attrs.get("failed_trial"), "duplicate_of": a.get("duplicate_of")}
        for name in (*HW_PARAMS, "area_mm2", "power_mw", "buffer", "latency_cycles", "energy_nj", "edp"):
            row[name] = a.get(name)
        cons = t.constraints
        row["feasible"] = (t.state == optuna.trial.TrialState.COMPLETE and bool(cons)
                           and all(v <= 0 for v in cons.values()) and a.get("latency_cycles") is not None)
        row["mapped"] = (t.state == optuna.trial.TrialState.COMPLETE and bool(cons)
                         and all(v <= 0 for k, v in cons.items() if k not in targets)
                         and a.get("latency_cycles") is not None)
        row["infeasible"] = a.get("infeasible") or a.get("failed") or ("surplus" if a.get("surplus") else "")
        for name, value in cons.items():
            row[f"c_{name}"] = value
        for name in ("cache_hits", "cache_misses", "seconds"):
            row[name] = a.get(name)
        if per_network:
            figures = a.get(NETWORKS_ATTR) or {}
            for net in networks:
                for key in NETWORK_FIGURES:
                    row[f"{key}_{net}"] = figures.get(net, {}).get(key)
        layers = t.system_attrs.get(LAYERS_ATTR, {})
        for name in layer_names:
            entry = layers.get(name, {})
            row[f"runtime_{name}"] = entry.get("runtime")
            row[f"energy_{name}"] = entry.get("energy")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=list(BASE_COLUMNS))
    return frame


def pruned_summary(frame: pd.DataFrame) -> str:
    """'N surplus, M answered from storage': trials that did no work."""
    surplus = int((frame.state == "PRUNED").sum())
    repeats = int(((frame.state == "COMPLETE") & frame.duplicate_of.notna()).sum())
    return f"{surplus} surplus, {repeats} repeated design(s) answered from storage"


def objective_values(frame: pd.DataFrame, objectives) -> np.ndarray:
    return frame[[OBJECTIVE_COLUMN[o] for o in objectives]].to_numpy(dtype=float)


def designs(frame: pd.DataFrame) -> pd.DataFrame:
    """Feasible trials, one per design (the first trial that evaluated it): a design answered again
    from storage, or evaluated twice by workers racing for it, is listed once."""
    ok = frame[frame.feasible.astype(bool)].sort_values("trial")
    return ok.drop_duplicates(subset=list(HW_PARAMS), keep="first")


def best_rows(frame: pd.DataFrame, objectives, *, n: int = 1) -> pd.DataFrame:
    """The ``n`` best feasible designs on one objective (ties: the earlier trial)."""
    return designs(frame).sort_values([OBJECTIVE_COLUMN[objectives[0]], "trial"]).head(n)


def pareto_rows(frame: pd.DataFrame, objectives) -> pd.DataFrame:
    """The feasible designs on the Pareto front, by the first objective."""
    ok = designs(frame)
    if ok.empty:
        return ok
    mask = pareto_mask(objective_values(ok, objectives))
    return ok[mask].sort_values([OBJECTIVE_COLUMN[o] for o in objectives] + ["trial"])


def chosen_row(frame: pd.DataFrame, objectives) -> tuple[pd.Series, str]:
    """The design a study answers with, and why: the best feasible design for one objective; for
    two, the Pareto front's point best on the first (the front is listed in that order). Raises
    ``IndexError`` when no design is feasible."""
    if len(objectives) > 1:
        front = pareto_rows(frame, objectives)
        return front.iloc[0], f"lowest {objectives[0]} of the {len(front)}-design Pareto front"
    return best_rows(frame, objectives).iloc[0], f"lowest {objectives[0]}"


def within(frame: pd.DataFrame, budget: Budget, *, column: str = "feasible") -> pd.DataFrame:
    """Trials (feasible ones; ``column="mapped"``: targets aside) whose stored figures meet ``budget``."""
    ok = frame[frame[column].astype(bool)] if column in frame else frame[frame.feasible.astype(bool)]
    for name, limit in budget.as_dict().items():
        if limit is not None:
            ok = ok[ok[BUDGET_FIGURE[name]].astype(float) <= limit]
    return ok


@dataclass(frozen=True, kw_only=True)
class Question:
    """What :func:`query` is asked: a budget (within the study's), and for a mix or a study with targets,
    other weights (network -> weight; unnamed networks keep theirs) and other latency targets (network
    -> limit in ms, or ``None`` to drop the study's; unnamed networks keep theirs)."""

    budget: Budget = field(default_factory=Budget)
    weights: dict = field(default_factory=dict)
    targets_ms: dict = field(default_factory=dict)

    def weights_of(self, spec: CodesignSpec) -> dict[str, float]:
        return {**spec.weights(), **self.weights}

    def limits_of(self, spec: CodesignSpec) -> dict[str, float]:
        merged = {**spec.target_limits_ms(), **self.targets_ms}
        return {net: ms for net, ms in merged.items() if ms is not None}


def reweighed(frame: pd.DataFrame, spec: CodesignSpec, weights: dict[str, float]) -> pd.DataFrame:
    """The frame with the mix's objectives summed again under other weights (from the per-network
    columns)."""
    out = frame.copy()
    for key, column in (("latency_cycles", "latency_cycles"), ("energy_nj", "energy_nj"), ("edp", "edp")):
        out[column] = sum(w * out[f"{key}_{net}"].astype(float) for net, w in weights.items())
    return out


def meets(frame: pd.DataFrame, net: str, limit_ms: float) -> pd.Series:
    """Which rows meet a latency limit of ``limit_ms`` on ``net`` (the test a trial's constraint makes)."""
    return mix.violation(frame[f"latency_ms_{net}"].astype(float), limit_ms) <= 0


def candidates(frame: pd.DataFrame, spec: CodesignSpec, question: Question) -> pd.DataFrame:
    """The stored designs that answer ``question``: within its budget, every layer mapped, its targets
    met, with the objectives under its weights."""
    if not (spec.is_mix or spec.targets):
        return within(frame, question.budget)
    ok = within(frame, question.budget, column="mapped")
    for net, limit in question.limits_of(spec).items():
        ok = ok[meets(ok, net, limit)]
    if spec.is_mix and question.weights:
        ok = reweighed(ok, spec, question.weights_of(spec))
    return ok.assign(feasible=True)          # feasible for this question (the study's targets aside)


def query(frame: pd.DataFrame, budget: Budget, objectives, *, spec: CodesignSpec | None = None,
          question: Question | None = None) -> pd.DataFrame:
    """Best stored design(s) under ``budget`` (or ``question``, which needs ``spec``): one row (one
    objective) or the Pareto front."""
    ok = candidates(frame, spec, question) if question is not None else within(frame, budget)
    if len(objectives) > 1:
        return pareto_rows(ok, objectives)
    return best_rows(ok, objectives)


def binding_targets(frame: pd.DataFrame, spec: CodesignSpec, question: Question) -> list[str]:
    """Why no stored design answers ``question`` although some are within its budget: each target, with
    how many of those designs meet it and the fastest one's latency; the targets no design meets alone
    first (they bind), then by how few meet them."""
    ok = within(frame, question.budget, column="mapped")
    out = []
    for net, limit in question.limits_of(spec).items():
        met = int(meets(ok, net, limit).sum())
        fastest = float(ok[f"latency_ms_{net}"].astype(float).min())
        out.append((met, f"{net} <= {limit:.4g} ms: met by {met} of {len(ok)} (fastest {fastest:.4g} ms)"))
    out.sort(key=lambda item: item[0])
    return [text for _, text in out]


def networks_frame(frame: pd.DataFrame, spec: CodesignSpec) -> pd.DataFrame:
    """One row per (trial, network) of a trials frame: the trial's state, hardware, area, power and
    feasibility, the network's weight, figures, target and whether the trial meets it."""
    limits = spec.target_limits_ms()
    head = ["trial", "state", *HW_PARAMS, "area_mm2", "power_mw", "feasible", "mapped"]
    parts = []
    for net, weight in spec.weights().items():
        part = frame[[c for c in head if c in frame]].copy()
        part.insert(1, "network", net)
        part.insert(2, "weight", weight)
        for key in NETWORK_FIGURES:
            column = f"{key}_{net}"
            part[key] = frame.get(column)
        part["target_ms"] = limits.get(net)
        part["meets_target"] = (_meets_column(part, limits[net]) if net in limits
                                else part.latency_ms.notna())
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[*head, "network", "weight", *NETWORK_FIGURES, "target_ms"])
    return pd.concat(parts, ignore_index=True).sort_values("trial", kind="stable", ignore_index=True)


def _meets_column(part: pd.DataFrame, limit_ms: float) -> pd.Series:
    latency = part.latency_ms.astype(float)
    return latency.notna() & (mix.violation(latency, limit_ms) <= 0)


def format_networks(row: pd.Series, spec: CodesignSpec, weights: dict | None = None,
                    limits: dict | None = None) -> str:
    """Per network of one design: weight, latency (cycles, ms), energy, EDP and the target."""
    from .tables import format_table

    weights = weights or spec.weights()
    limits = spec.target_limits_ms() if limits is None else limits
    rows = []
    for net in spec.network_names():
        ms = row.get(f"latency_ms_{net}")
        limit = limits.get(net)
        rows.append({"network": net, "weight": weights.get(net, 1.0),
                     "cycles": row.get(f"latency_cycles_{net}"), "ms": ms,
                     "energy": row.get(f"energy_nj_{net}"),
                     "target": f"<= {limit:.4g} ms" if limit else "-",
                     "slack": (f"{100 * (1 - ms / limit):.0f} %" if limit and ms is not None else "-")})
    columns = (("network", "network", None), ("weight", "weight", "g"),
               ("latency (cycles)", "cycles", ",.0f"), ("latency (ms)", "ms", ".4g"),
               ("energy (nJ)", "energy", ",.1f"), ("target", "target", None), ("slack", "slack", None))
    return format_table(rows, columns)


def describe_row(row: pd.Series, *, mix: bool = False) -> str:
    """One design in a line: hardware, area, power, latency and energy (``mix``: the weighted sums)."""
    hw = (f"{int(row.num_pes)} PEs x {int(row.simd_lanes)} lanes, L1 {int(row.l1_size)}/PE, "
          f"L2 {int(row.l2_size)}, NoC {int(row.noc_bw)} el/cycle, off-chip {int(row.offchip_bw)} el/cycle")
    figures = (f"{row.area_mm2:.3f} mm^2, {row.power_mw:,.1f} mW")
    out = f"trial {int(row.trial)}: {hw}; {figures}"
    if row.latency_cycles is not None and not (isinstance(row.latency_cycles, float)
                                               and math.isnan(row.latency_cycles)):
        out += (f"; {'weighted ' if mix else ''}latency {int(row.latency_cycles):,} cycles, "
                f"{'weighted ' if mix else ''}energy {row.energy_nj:,.1f} nJ")
    return out


__all__ = [
    "BASE_COLUMNS",
    "Question",
    "best_rows",
    "binding_targets",
    "candidates",
    "chosen_row",
    "describe_row",
    "designs",
    "format_networks",
    "networks_frame",
    "pareto_rows",
    "pruned_summary",
    "query",
    "reweighed",
    "trials_frame",
    "within",
]
