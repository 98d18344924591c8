"""What a stored co-design study holds, as a table, and the questions asked of it.

:func:`trials_frame` gives one row per trial with these columns (the export format):

- ``trial``, ``state`` (COMPLETE, PRUNED, FAIL, RUNNING, WAITING), ``retry_of`` (the trial it re-runs),
  ``duplicate_of`` (the trial whose stored answer it repeats: the same design, nothing searched);
- hardware: ``num_pes, simd_lanes, l1_size, l2_size, noc_bw, offchip_bw, noc_hop_latency``;
- cost: ``area_mm2, power_mw, buffer`` (PEs x L1 + L2, elements);
- objectives: ``latency_cycles, energy_nj, edp`` (empty unless every layer was mapped);
- ``feasible`` (within the study's budget and every layer mapped), ``infeasible`` (why not),
  ``c_<name>`` the constraint values Optuna saw (<= 0 met: ``c_max_area_mm2`` ... ``c_mapping``);
- ``cache_hits, cache_misses, seconds`` of the trial's inner searches;
- per layer: ``runtime_<layer>`` and ``energy_<layer>`` (one layer instance; multiply by its count).

Questions (:func:`best_rows`, :func:`pareto_rows`, :func:`query`) are answered from this table alone:
no trial is re-run.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd

from search.pareto import pareto_mask
from spaces.hardware import HW_PARAMS, Budget

from .codesign import LAYERS_ATTR, CodesignSpec

OBJECTIVE_COLUMN = {"latency": "latency_cycles", "energy": "energy_nj", "edp": "edp"}
BASE_COLUMNS = ("trial", "state", "retry_of", "duplicate_of", *HW_PARAMS, "area_mm2", "power_mw", "buffer",
                "latency_cycles", "energy_nj", "edp", "feasible", "infeasible")
BUDGET_FIGURE = {"max_area_mm2": "area_mm2", "max_power_mw": "power_mw", "max_pes": "num_pes",
                 "max_buffer": "buffer"}


def trials_frame(study: optuna.Study, spec: CodesignSpec) -> pd.DataFrame:
    rows = []
    layer_names = [layer.name for layer in spec.layers()]
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        row = {"trial": t.number, "state": t.state.name,
               "retry_of": t.system_attrs.get("failed_trial"), "duplicate_of": a.get("duplicate_of")}
        for name in (*HW_PARAMS, "area_mm2", "power_mw", "buffer", "latency_cycles", "energy_nj", "edp"):
            row[name] = a.get(name)
        cons = t.constraints
        row["feasible"] = (t.state == optuna.trial.TrialState.COMPLETE and bool(cons)
                           and all(v <= 0 for v in cons.values()) and a.get("latency_cycles") is not None)
        row["infeasible"] = a.get("infeasible") or a.get("failed") or ("surplus" if a.get("surplus") else "")
        for name, value in cons.items():
            row[f"c_{name}"] = value
        for name in ("cache_hits", "cache_misses", "seconds"):
            row[name] = a.get(name)
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


def within(frame: pd.DataFrame, budget: Budget) -> pd.DataFrame:
    """Feasible trials whose stored figures meet ``budget``."""
    ok = frame[frame.feasible.astype(bool)]
    for name, limit in budget.as_dict().items():
        if limit is not None:
            ok = ok[ok[BUDGET_FIGURE[name]].astype(float) <= limit]
    return ok


def query(frame: pd.DataFrame, budget: Budget, objectives) -> pd.DataFrame:
    """Best stored design(s) under ``budget``: one row (one objective) or the Pareto front."""
    ok = within(frame, budget)
    if len(objectives) > 1:
        return pareto_rows(ok, objectives)
    return best_rows(ok, objectives)


def describe_row(row: pd.Series) -> str:
    hw = (f"{int(row.num_pes)} PEs x {int(row.simd_lanes)} lanes, L1 {int(row.l1_size)}/PE, "
          f"L2 {int(row.l2_size)}, NoC {int(row.noc_bw)} el/cycle, off-chip {int(row.offchip_bw)} el/cycle")
    figures = (f"{row.area_mm2:.3f} mm^2, {row.power_mw:,.1f} mW")
    out = f"trial {int(row.trial)}: {hw}; {figures}"
    if row.latency_cycles is not None and not (isinstance(row.latency_cycles, float)
                                               and math.isnan(row.latency_cycles)):
        out += f"; latency {int(row.latency_cycles):,} cycles, energy {row.energy_nj:,.1f} nJ"
    return out


__all__ = [
    "BASE_COLUMNS",
    "best_rows",
    "chosen_row",
    "describe_row",
    "designs",
    "pareto_rows",
    "pruned_summary",
    "query",
    "trials_frame",
    "within",
]
