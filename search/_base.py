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

OBJECTIVES = ("latency", "energy", "edp")
# The engines, as the command line names them; "auto" picks one for the space (commands decide).
SEARCHERS = ("auto", "cpsat", "exhaustive", "optuna")


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


def evaluate_points(problem: Problem, points: Sequence[Point]) -> Scored:
    """Evaluate points of any structures in one cost-model call."""
    structures = problem.space.structures
    width = max((len(structures[p.structure].holes) for p in points), default=0)
    values = np.zeros((len(points), width), dtype=np.int64)
    for i, p in enumerate(points):
        m = p.value_map()
        values[i, :len(m)] = [m[h] for h in structures[p.structure].holes]
    index = np.fromiter((p.structure for p in points), dtype=np.int64, count=len(points))
    cost, scores, feasible = evaluate_mixed_chunk(problem, index, values)
    return Scored(list(points), cost, scores, feasible)


@dataclass
class Found:
    """One design a search found."""

    point: Point
    dataflow: Dataflow
    cost: LayerCost                        # scalar figures
    values: tuple[float, ...]              # objective values


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

    @property
    def gap(self) -> float | None:
        """Relative gap between the best design found and the bound (0 = proven optimal)."""
        if self.bound is None or not self.best:
            return None
        best = self.best[0].values[0]
        return max(0.0, (best - self.bound) / best) if best > 0 else 0.0


class Searcher:
    """Base class: ``search(problem) -> SearchResult``; subclasses implement ``_search``."""

    name = "searcher"

    def search(self, problem: Problem) -> SearchResult:
        start = time.perf_counter()
        result = self._search(problem)
        result.seconds = time.perf_counter() - start
        return result

    def _search(self, problem: Problem) -> SearchResult:
        raise NotImplementedError


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
