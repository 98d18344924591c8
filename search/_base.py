"""The searcher protocol, objectives, and the result every searcher returns.

Life cycle: a :class:`Searcher` is configured once (seed, time limit, engine options), then
``search(problem)`` explores ``problem.space`` and returns a :class:`SearchResult`. Searchers never
score a mapping themselves: every figure comes from the cost model through :func:`evaluate_points`,
:func:`evaluate_chunk` or :func:`evaluate_mixed_chunk`, so every engine ranks designs by exactly the
same numbers.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from costmodel import Accelerator, Dataflow, LayerCost, evaluate_batch, evaluate_mixed
from costmodel.errors import SpecError
from spaces.constraints import Constraints
from spaces.mapping import MappingSpace, Point

from .pareto import pareto_mask

OBJECTIVES = ("latency", "energy", "edp")
# The engines, as the command line names them; "auto" picks one for the space (commands decide).
SEARCHERS = ("auto", "cpsat", "exhaustive", "optuna")
# CP-SAT's default budgets (here, so that help texts need not import OR-Tools).
CPSAT_EVALUATIONS = 40_000           # cost-model points
CPSAT_SOLVER_TIME = 4.0              # CP-SAT deterministic seconds


def parse_objectives(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"latency"``, ``"energy"``, ``"edp"`` or a comma-separated list for a Pareto front."""
    names = tuple(s.strip() for s in text.split(",")) if isinstance(text, str) else tuple(text)
    for n in names:
        if n not in OBJECTIVES:
            raise SpecError(f"unknown objective '{n}' (choose from {', '.join(OBJECTIVES)})",
                            key="objective")
    if not names or len(set(names)) != len(names):
        raise SpecError(f"give one objective or several distinct ones, got {text!r}", key="objective")
    return names


def objective_values(cost: LayerCost, objectives: Sequence[str]) -> np.ndarray:
    """(n, k) objective values: runtime in cycles, energy in nJ, EDP in cycles x nJ."""
    runtime = np.asarray(cost.runtime_cycles, dtype=float)
    energy = np.asarray(cost.energy_nj, dtype=float)
    table = {"latency": runtime, "energy": energy, "edp": runtime * energy}
    return np.stack([np.atleast_1d(table[o]) for o in objectives], axis=1)


@dataclass(frozen=True)
class Problem:
    """What to search: a space, the accelerator, objectives and constraints."""

    space: MappingSpace
    accelerator: Accelerator
    objectives: tuple[str, ...] = ("latency",)
    constraints: Constraints = field(default_factory=Constraints)

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1


@dataclass
class Scored:
    """Designs with their costs: points, cost-model figures, objective values (inf if infeasible)."""

    points: list[Point]
    cost: LayerCost
    values: np.ndarray                     # (n, k)
    feasible: np.ndarray                   # (n,)


@dataclass
class CostModelClock:
    """CPU seconds, calls and designs spent in the cost model by every search of this process (the
    search benchmark reads it to report the cost model's share of search time)."""

    cpu_s: float = 0.0
    calls: int = 0
    designs: int = 0


COST_MODEL = CostModelClock()


def _timed_cost(call) -> LayerCost:
    start = time.process_time()
    cost = call()
    COST_MODEL.cpu_s += time.process_time() - start
    COST_MODEL.calls += 1
    COST_MODEL.designs += len(cost)
    return cost


def evaluate_chunk(problem: Problem, structure: int, holes: dict[str, np.ndarray]) -> tuple[LayerCost,
                                                                                          np.ndarray,
                                                                                          np.ndarray]:
    """Cost, objective values (inf where infeasible) and feasibility of a batch of one structure."""
    cost = _timed_cost(lambda: evaluate_batch(problem.space.layer, problem.space.structures[structure],
                                              accelerator=problem.accelerator, holes=holes))
    return _scored(problem, cost)


def evaluate_mixed_chunk(problem: Problem, structures: np.ndarray, values: np.ndarray, *,
                         jobs: int | None = None) -> tuple[LayerCost, np.ndarray, np.ndarray]:
    """The same for points of many structures (``MappingSpace.mixed_chunks``): one cost-model call
    (``jobs`` worker threads for it; the figures never depend on them)."""
    cost = _timed_cost(lambda: evaluate_mixed(problem.space.layer, problem.space.structures, structures,
                                              values, accelerator=problem.accelerator, jobs=jobs))
    return _scored(problem, cost)


def _scored(problem: Problem, cost: LayerCost) -> tuple[LayerCost, np.ndarray, np.ndarray]:
    feasible = problem.constraints.feasible(cost)
    values = objective_values(cost, problem.objectives)
    values[~feasible] = np.inf
    return cost, values, feasible


def evaluate_points(problem: Problem, points: Sequence[Point], *, jobs: int | None = None) -> Scored:
    """Evaluate points of any structures in one cost-model call."""
    structures = problem.space.structures
    width = max((len(structures[p.structure].holes) for p in points), default=0)
    values = np.zeros((len(points), width), dtype=np.int64)
    for i, p in enumerate(points):
        m = p.value_map()
        values[i, :len(m)] = [m[h] for h in structures[p.structure].holes]
    index = np.fromiter((p.structure for p in points), dtype=np.int64, count=len(points))
    cost, scores, feasible = evaluate_mixed_chunk(problem, index, values, jobs=jobs)
    return Scored(list(points), cost, scores, feasible)


@dataclass
class Found:
    """One design a search found."""

    point: Point
    dataflow: Dataflow
    cost: LayerCost                        # scalar figures
    values: tuple[float, ...]              # objective values


# Why a search stopped (``SearchResult.stop``).
STOP_REASONS = {
    "optimal": "proven optimal: the best design meets a lower bound",
    "exhausted": "every point of the space was evaluated",
    "budget": "the work budget is spent (evaluations or solver time)",
    "time_cap": "the wall-clock cap (time_limit) was reached",
    "infeasible": "proven: no mapping of the space fits the accelerator",
    "no_feasible": "the budget ended before any feasible mapping was found",
}


@dataclass
class SearchResult:
    searcher: str
    objectives: tuple[str, ...]
    best: list[Found]                      # best first (single objective), or the Pareto set
    status: str                            # optimal | feasible | infeasible | unknown
    evaluations: int
    seconds: float
    bound: float | None = None             # a valid lower bound on the objective, where known
    message: str = ""                      # e.g. which constraint makes the problem infeasible
    pareto: list[Found] = field(default_factory=list)
    stop: str = ""                         # one of STOP_REASONS
    total: int | None = None               # points in the space, where the searcher knows it
    cpu_seconds: float = 0.0
    solver_time: float = 0.0               # CP-SAT deterministic seconds used

    @property
    def gap(self) -> float | None:
        """Relative gap between the best design found and the bound (0 = proven optimal)."""
        if self.bound is None or not self.best:
            return None
        best = self.best[0].values[0]
        return max(0.0, (best - self.bound) / best) if best > 0 else 0.0

    @property
    def seen(self) -> float | None:
        """Fraction of the space's points evaluated, where the space's size is known."""
        return min(1.0, self.evaluations / self.total) if self.total else None


def status_of(stop: str, found_any: bool) -> str:
    """The short status of a stop reason: optimal, feasible, infeasible or unknown."""
    if stop in ("optimal", "exhausted"):
        return "optimal" if found_any else "infeasible"
    if stop == "infeasible":
        return "infeasible"
    return "feasible" if found_any else "unknown"


class Searcher:
    """Base class: ``search(problem, seeds) -> SearchResult``; subclasses implement ``_search``.

    Every searcher stops on a budget of work (evaluations, solver deterministic time), never on the
    clock alone, so the same problem, settings and seed give the same answer on any machine and under
    any load; an optional ``time_limit`` is a cap on top. ``seeds`` are designs found elsewhere (a
    smaller space, the shipped templates): the result is never worse than the best of them.
    """

    name = "searcher"

    def search(self, problem: Problem, seeds: Sequence[Found] = ()) -> SearchResult:
        start, cpu = time.perf_counter(), time.process_time()
        result = self._search(problem)
        if seeds:
            _merge_seeds(result, problem, list(seeds), getattr(self, "top_k", 10))
        result.seconds = time.perf_counter() - start
        result.cpu_seconds = time.process_time() - cpu
        return result

    def _search(self, problem: Problem) -> SearchResult:
        raise NotImplementedError


def _merge_seeds(result: SearchResult, problem: Problem, seeds: list[Found], top_k: int) -> None:
    """The seeds join the result's best designs; the bound stays the space's own (a seed may come
    from another space: the caller, who knows where, combines bounds)."""
    feasible = [f for f in seeds if all(math.isfinite(v) for v in f.values)]
    if not feasible:
        return
    merged = result.best + feasible
    if problem.multi:
        keep = pareto_mask(np.array([f.values for f in merged]))
        result.best = sorted((f for f, k in zip(merged, keep, strict=True) if k), key=lambda f: f.values)
        result.pareto = result.best
    else:
        result.best = sorted(merged, key=lambda f: f.values)[:top_k]
    if result.stop == "no_feasible":
        result.stop = "budget"
    if result.stop != "infeasible":
        result.status = status_of(result.stop, bool(result.best))


class Archive:
    """The designs scored so far: the best ``top_k`` (one objective) or the Pareto set (several),
    and how many points were scored. Searchers feed it through :meth:`add`."""

    def __init__(self, problem: Problem, top_k: int = 10, jobs: int | None = None) -> None:
        self.problem = problem
        self.top_k = top_k
        self.jobs = jobs
        self.best: list[Found] = []
        self.evaluations = 0
        self.tally = InfeasibilityTally(problem)

    def best_value(self) -> float:
        return self.best[0].values[0] if self.best else math.inf

    def add(self, points: Sequence[Point]) -> Scored:
        """Score ``points`` (one cost-model call) and keep the best; returns their scores."""
        scored = evaluate_points(self.problem, points, jobs=self.jobs)
        self.evaluations += len(points)
        if not self.best:
            self.tally.add(scored.cost)
        feasible = np.nonzero(np.isfinite(scored.values).all(axis=1))[0]
        if self.problem.multi:
            cand = feasible[pareto_mask(scored.values[feasible])]
        else:
            cand = feasible[np.argsort(scored.values[feasible, 0], kind="stable")[:self.top_k]]
            if len(self.best) >= self.top_k:        # only those that enter the top k become Founds
                cand = cand[scored.values[cand, 0] < self.best[-1].values[0]]
        if len(cand):
            merged = self.best + [found(self.problem, scored, int(i)) for i in cand]
            if self.problem.multi:
                keep = pareto_mask(np.array([f.values for f in merged]))
                merged = [f for f, k in zip(merged, keep, strict=True) if k]
            merged.sort(key=lambda f: f.values)
            self.best = merged if self.problem.multi else merged[:self.top_k]
        return scored

    def result(self, name: str, stop: str, *, bound: float | None = None, total: int | None = None,
               solver_time: float = 0.0, message: str = "") -> SearchResult:
        if not self.best and stop in ("budget", "time_cap"):
            stop = "no_feasible"
        res = SearchResult(name, self.problem.objectives, list(self.best), status_of(stop, bool(self.best)),
                           self.evaluations, 0.0, bound=bound, total=total, stop=stop,
                           solver_time=solver_time, message=message)
        if self.problem.multi:
            res.pareto = res.best
        if not self.best and not res.message:
            res.message = self.tally.message()
        return res


# Cost-model errors that are really a capacity the accelerator lacks, named like a constraint.
_ERROR_CONSTRAINTS = (("cluster sizes multiply to", "num_pes"),)
_REQUIREMENT = {"l1_size": "l1_size_req", "l2_size": "l2_size_req", "noc_bw": "peak_noc_bw_req",
                "offchip_bw": "offchip_bw_req"}


class InfeasibilityTally:
    """Why the designs a search evaluated fail: per constraint, how many designs break it and the
    smallest requirement seen; per cost-model error, how often it occurs. It turns "nothing fits"
    into a message naming the binding constraint."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.names = problem.constraints.names()
        self.violated = np.zeros(len(self.names), dtype=np.int64)
        self.smallest = np.full(len(self.names), np.inf)
        self.errors: Counter[str] = Counter()
        self.designs = 0

    def add(self, cost: LayerCost) -> None:
        cons = self.problem.constraints.violations(cost, self.problem.accelerator)
        error = np.atleast_1d(np.asarray(cost.error))
        ok = error == ""
        self.designs += len(error)
        self.violated += ((cons > 0) & ok[:, None]).sum(axis=0)
        for j, name in enumerate(self.names):
            req = np.atleast_1d(np.asarray(getattr(cost, _REQUIREMENT[name]), dtype=float))[ok]
            if len(req):
                self.smallest[j] = min(self.smallest[j], float(req.min()))
        if not ok.all():
            messages, counts = np.unique(error[~ok], return_counts=True)
            self.errors.update({str(m): int(c) for m, c in zip(messages, counts, strict=True)})

    def binding(self) -> list[str]:
        """The constraints no evaluated design meets (cost-model errors named where they are one)."""
        out = [n for n, s in zip(self.names, self.smallest, strict=True)
               if s > (getattr(self.problem.accelerator, n) or math.inf)]
        for message in self.errors:
            out += [name for prefix, name in _ERROR_CONSTRAINTS if message.startswith(prefix)]
        return sorted(set(out))

    def message(self) -> str:
        acc = self.problem.accelerator
        parts = []
        for j, name in enumerate(self.names):
            if self.violated[j]:
                part = f"{name} {getattr(acc, name)} exceeded by {self.violated[j]:,} designs"
                if math.isfinite(self.smallest[j]):
                    part += f" (smallest {_REQUIREMENT[name]} {self.smallest[j]:,.0f})"
                parts.append(part)
        for text, n in self.errors.most_common(3):
            named = [c for prefix, c in _ERROR_CONSTRAINTS if text.startswith(prefix)]
            parts.append(f"{named[0] + ': ' if named else ''}{text} ({n:,} designs)")
        binding = self.binding()
        head = (f"no feasible mapping of layer {self.problem.space.layer.name} among the {self.designs:,} "
                f"designs evaluated")
        if binding:
            head += f"; binding constraint{'s' if len(binding) > 1 else ''}: {', '.join(binding)}"
        return head + (" (" + "; ".join(parts) + ")" if parts else "")


def found(problem: Problem, scored: Scored, index: int) -> Found:
    point = scored.points[index]
    cost = scored.cost.row(index) if scored.cost.is_batch else scored.cost
    return Found(point, problem.space.dataflow(point), cost, tuple(float(v) for v in scored.values[index]))
