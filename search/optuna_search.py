"""Optuna samplers over a space's fixed parameter encoding, asked and told in batches.

Every trial suggests the same integer parameters (``space.parameters()``: name -> number of choices),
so the samplers see one fixed search space; ``space.decode`` turns any assignment into a valid point.
Trials are asked ``batch`` at a time and the cost model evaluates the whole batch at once
(:func:`evaluate_points`). Constraints go through Optuna's core API (``Trial.set_constraint``): the
capacity (and optionally bandwidth) excess of each design relative to its limit, plus one for designs
the cost model cannot evaluate, so constraint-aware samplers (TPE, NSGA-II, GP) rank infeasible
designs by how far they are from feasible.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:              # Optuna is imported where it is used (start-up)
    import optuna

from costmodel.errors import SpecError

from . import bounds
from ._base import (
    Found,
    InfeasibilityTally,
    Problem,
    Scored,
    Searcher,
    SearchResult,
    evaluate_points,
    found,
    status_of,
)
from .pareto import pareto_mask

SAMPLERS = ("tpe", "nsga2", "cmaes", "gp", "random")

# Optional packages some samplers import lazily (on the first trial, not at construction).
_NEEDS = {"cmaes": ("cmaes",), "gp": ("torch", "scipy")}

ERROR_CONSTRAINT = "evaluation_error"

# Warnings Optuna repeats on every trial about what this module does on purpose: infeasible designs
# are told as inf (GPSampler clips them to the worst finite value), and constraints are always set
# (CMA-ES ignores them; they still record feasibility in the study).
_EXPECTED_WARNINGS = ("Clip non-finite values", "Constraints have been set, but CmaEsSampler")

# The figure behind each constraint of ``Constraints.names()``, to explain an infeasible search.

def make_sampler(name: str, seed: int, multi: bool, *,
                 population: int | None = None) -> optuna.samplers.BaseSampler:
    """A seeded sampler. ``population`` sets CMA-ES's population size (best: the batch size, since
    CMA-ES learns from only ``popsize`` trials per generation); NSGA-II keeps its default of 50."""
    import optuna
    if name not in SAMPLERS:
        raise SpecError(f"unknown sampler '{name}' (choose from {', '.join(SAMPLERS)})", key="sampler")
    missing = [m for m in _NEEDS.get(name, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise SpecError(f"the {name} sampler needs the Python package(s) {', '.join(missing)} "
                        f"(pip install {' '.join(missing)})", key="sampler")
    if name == "cmaes" and multi:
        raise SpecError("CMA-ES optimises a single objective; use nsga2, tpe, gp or random for a "
                        "Pareto front", key="sampler")
    s = optuna.samplers
    if name == "tpe":
        return s.TPESampler(seed=seed)
    if name == "nsga2":
        return s.NSGAIISampler(seed=seed)
    if name == "cmaes":
        return s.CmaEsSampler(seed=seed, popsize=population)
    if name == "gp":
        return s.GPSampler(seed=seed)
    return s.RandomSampler(seed=seed)


class OptunaSearcher(Searcher):
    """Samples ``trials`` designs with an Optuna sampler and keeps the ``top_k`` best feasible ones
    (single objective) or the feasible Pareto set (several objectives). ``trials`` is the budget
    (seeded samplers: the same designs on any machine); ``time_limit`` an optional wall-clock cap.

    ``study`` continues an existing (e.g. persistent) study with *its own* sampler; ``sampler`` and
    ``seed`` then do not apply (load it with ``sampler=make_sampler(...)`` to choose one). Its
    earlier complete trials are decoded and re-evaluated, so the result covers the whole study;
    ``evaluations`` counts the trials of this search only.
    """

    name = "optuna"

    def __init__(self, *, sampler: str = "tpe", trials: int = 1000, batch: int = 64, seed: int = 0,
                 time_limit: float | None = None, top_k: int = 10, study: optuna.Study | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        if sampler not in SAMPLERS:
            raise SpecError(f"unknown sampler '{sampler}' (choose from {', '.join(SAMPLERS)})",
                            key="sampler")
        if trials < 1 or batch < 1:
            raise SpecError(f"trials and batch must be positive, got {trials} and {batch}", key="trials")
        self.sampler = sampler
        self.trials = trials
        self.batch = batch
        self.seed = seed
        self.time_limit = time_limit
        self.top_k = top_k
        self.study = study
        self.progress = progress

    def _make_study(self, problem: Problem) -> optuna.Study:
        import optuna
        if self.study is None:
            sampler = make_sampler(self.sampler, self.seed, problem.multi, population=self.batch)
            return optuna.create_study(sampler=sampler, directions=["minimize"] * len(problem.objectives))
        want = [optuna.study.StudyDirection.MINIMIZE] * len(problem.objectives)
        if list(self.study.directions) != want:
            raise SpecError(f"the study has {len(self.study.directions)} direction(s), the problem "
                            f"minimises {', '.join(problem.objectives)}", key="study")
        return self.study

    def _search(self, problem: Problem) -> SearchResult:
        space = problem.space
        names = space.parameters()
        study = self._make_study(problem)
        start = time.perf_counter()
        scored = self._earlier(study, problem)
        constraint_names = (*problem.constraints.names(), ERROR_CONSTRAINT)
        tally = InfeasibilityTally(problem)
        done = 0
        while done < self.trials:
            with warnings.catch_warnings():
                for message in _EXPECTED_WARNINGS:
                    warnings.filterwarnings("ignore", message=message)
                asked, points = [], []
                for _ in range(min(self.batch, self.trials - done)):
                    # Suggest before the next ask: TPE's constant liar uses the params of running trials.
                    trial = study.ask()
                    asked.append(trial)
                    points.append(space.decode({n: trial.suggest_int(n, 0, k - 1) for n, k in names.items()}))
                s = evaluate_points(problem, points)
                errors = np.asarray(s.cost.error) != ""
                cons = np.column_stack([problem.constraints.violations(s.cost, problem.accelerator),
                                        errors.astype(float)])
                tally.add(s.cost)
                for i, trial in enumerate(asked):
                    for c, v in zip(constraint_names, cons[i], strict=True):
                        trial.set_constraint(c, float(v))
                    self._annotate(trial, problem, s, i)
                    # Optuna accepts inf (it refuses only NaN): constraint-aware samplers ignore the
                    # values of infeasible trials, CMA-ES ranks them last, GP clips them.
                    study.tell(trial, [float(v) for v in s.values[i]])
            scored.append(s)
            done += len(asked)
            if self.progress:
                self.progress(done, self.trials)
            if self.time_limit is not None and time.perf_counter() - start > self.time_limit:
                break
        stop = "budget" if done >= self.trials else "time_cap"
        best = _select(problem, scored, self.top_k)
        if not best:
            stop = "no_feasible"
        floor = (bounds.floor(space.layer, problem.accelerator, problem.objectives[0])
                 if not problem.multi else None)
        result = SearchResult(self.name, problem.objectives, best, status_of(stop, bool(best)), done, 0.0,
                              stop=stop, bound=floor)
        if best and floor is not None and best[0].values[0] <= floor:
            result.stop, result.status = "optimal", "optimal"
        if problem.multi:
            result.pareto = best
        if not best:
            result.message = tally.message()
        return result

    @staticmethod
    def _earlier(study: optuna.Study, problem: Problem) -> list[Scored]:
        """The complete trials a continued study already holds (those of this space's encoding),
        decoded and evaluated again: every design is ranked by the cost model's current numbers."""
        import optuna
        names = problem.space.parameters()
        params = [t.params for t in study.get_trials(deepcopy=False,
                                                     states=(optuna.trial.TrialState.COMPLETE,))
                  if t.params.keys() == names.keys() and all(0 <= t.params[n] < k for n, k in names.items())]
        return [evaluate_points(problem, [problem.space.decode(p) for p in params])] if params else []

    @staticmethod
    def _annotate(trial: optuna.Trial, problem: Problem, s: Scored, i: int) -> None:
        """What a later reader of the study needs without the space object: structure indices are
        assigned on first use, so the dataflow text is the durable record; the params re-decode."""
        point, cost = s.points[i], s.cost
        trial.set_user_attr("structure", point.structure)
        trial.set_user_attr("holes", point.value_map())
        trial.set_user_attr("dataflow", str(problem.space.dataflow(point)))
        for f in ("runtime_cycles", "energy_nj", "l1_size_req", "l2_size_req"):
            trial.set_user_attr(f, getattr(cost, f)[i].item())
        if cost.error[i]:
            trial.set_user_attr("error", str(cost.error[i]))


def _select(problem: Problem, scored: list[Scored], top_k: int) -> list[Found]:
    """The ``top_k`` best feasible distinct designs, or the feasible Pareto set, best first."""
    rows, seen = [], set()
    for s in scored:
        for i in np.nonzero(s.feasible)[0]:
            if s.points[i] not in seen:          # samplers may propose a design twice
                seen.add(s.points[i])
                rows.append((s, int(i)))
    if not rows:
        return []
    values = np.array([s.values[i] for s, i in rows])
    order = np.lexsort(values.T[::-1])            # stable: ties keep the order of sampling
    order = order[pareto_mask(values)[order]] if problem.multi else order[:top_k]
    return [found(problem, *rows[j]) for j in order]


__all__ = ["SAMPLERS", "OptunaSearcher", "make_sampler"]
