"""CP-SAT search over a free mapping space: certified bounds, a strong incumbent, deterministic budgets.

One CP-SAT model for the whole space: the tile chain of every dimension, the cluster sizes and the
spatial dimension of every level are variables (indices into the space's tables). Constraints, exact:
the cost model's L1 and L2 requirements within the accelerator's capacities (closed forms in
``cpsat_formulas``, checked against the cost model in the tests). The *surrogate* every solution gets
bounds the cost model's latency from below: true MACs over the PEs the configuration can keep busy.

The search, in order, each step on a budget of work:

1. floors (``search.bounds``: compute, NoC traffic) and the surrogate's minimum over the model (CP-SAT,
   deterministic time): a lower bound of every design; an infeasible model is explained by the
   capacities in its infeasibility core;
2. the configurations of the best surrogate values (CP-SAT enumerates them) and seeded random points
   start a neighbourhood descent (``search.descent``) over the space, scored by the cost model: most
   of the evaluation budget finds a strong design here;
3. rings of increasing surrogate value are enumerated with the rest (every configuration in every
   canonical loop order, scored in batches): a ring that completes raises the bound; when the next
   ring starts at or above the best design, the best is proven optimal.

Budgets: ``evaluations`` (cost-model points) and ``solver_time`` (CP-SAT's deterministic seconds, with
a fixed single worker and seed), so the same problem and settings give the same designs on any
machine, busy or idle. ``time_limit`` is an optional wall-clock cap on top (then results may vary).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from costmodel.errors import SpecError
from spaces.mapping import ConfigBatch, FreeSpace, hole_name

from . import bounds
from . import cpsat_formulas as F
from ._base import CPSAT_EVALUATIONS, CPSAT_SOLVER_TIME, Archive, Problem, Searcher, SearchResult
from .descent import Descent


@dataclass
class _Expr:
    """A CP-SAT expression (variable, affine expression or constant) with its bounds."""

    expr: object
    lo: int
    hi: int


class _CpAlgebra:
    """Builds CP-SAT variables and constraints for the formulas of ``cpsat_formulas``."""

    def __init__(self, model: cp_model.CpModel) -> None:
        self.m = model
        self.n = 0

    def _new(self, lo: int, hi: int, name: str) -> cp_model.IntVar:
        self.n += 1
        return self.m.new_int_var(lo, hi, f"{name}{self.n}")

    @staticmethod
    def wrap(x) -> _Expr:
        return x if isinstance(x, _Expr) else _Expr(int(x), int(x), int(x))

    def lookup(self, index, table):
        values = [int(v) for v in table]
        if isinstance(index, int):
            return values[index]
        if len(set(values)) == 1:
            return values[0]
        var = self.m.new_int_var_from_domain(cp_model.Domain.from_values(sorted(set(values))),
                                             f"t{self._tick()}")
        self.m.add_element(index, values, var)
        return _Expr(var, min(values), max(values))

    def _tick(self) -> int:
        self.n += 1
        return self.n

    def mul(self, a, b):
        a, b = self.wrap(a), self.wrap(b)
        corners = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
        if a.lo == a.hi:
            return _Expr(a.lo * b.expr, min(corners), max(corners)) if b.lo != b.hi else a.lo * b.lo
        if b.lo == b.hi:
            return _Expr(b.lo * a.expr, min(corners), max(corners))
        var = self._new(min(corners), max(corners), "p")
        self.m.add_multiplication_equality(var, [a.expr, b.expr])
        return _Expr(var, min(corners), max(corners))

    def add(self, *terms):
        ts = [self.wrap(t) for t in terms]
        if all(t.lo == t.hi for t in ts):
            return sum(t.lo for t in ts)
        return _Expr(sum(t.expr for t in ts), sum(t.lo for t in ts), sum(t.hi for t in ts))

    def minimum(self, a, b):
        a, b = self.wrap(a), self.wrap(b)
        if a.hi <= b.lo:
            return a if a.lo != a.hi else a.lo
        if b.hi <= a.lo:
            return b if b.lo != b.hi else b.lo
        var = self._new(min(a.lo, b.lo), min(a.hi, b.hi), "min")
        self.m.add_min_equality(var, [a.expr, b.expr])
        return _Expr(var, min(a.lo, b.lo), min(a.hi, b.hi))

    def at_least(self, a, b):
        a, b = self.wrap(a), self.wrap(b)
        if a.lo >= b.hi:
            return True
        if a.hi < b.lo:
            return False
        c = self.m.new_bool_var(f"ge{self._tick()}")
        self.m.add(a.expr >= b.expr).only_enforce_if(c)
        self.m.add(a.expr < b.expr).only_enforce_if(~c)
        return c

    def choose(self, condition, if_true, if_false):
        if condition is True:
            return if_true
        if condition is False:
            return if_false
        x, y = self.wrap(if_true), self.wrap(if_false)
        var = self._new(min(x.lo, y.lo), max(x.hi, y.hi), "sel")
        self.m.add(var == x.expr).only_enforce_if(condition)
        self.m.add(var == y.expr).only_enforce_if(~condition)
        return _Expr(var, min(x.lo, y.lo), max(x.hi, y.hi))

    def ceil_div_lb(self, numerator: int, denominator):
        d = self.wrap(denominator)
        lo, hi = -(-numerator // max(d.hi, 1)), -(-numerator // max(d.lo, 1))
        if d.lo == d.hi:
            return lo
        q = self._new(lo, hi, "q")
        prod = self.mul(_Expr(q, lo, hi), d)
        # q = ceil(numerator / d) exactly (so that enumeration never repeats a configuration).
        self.m.add(prod.expr >= numerator)
        self.m.add(prod.expr - d.expr <= numerator - 1)
        return _Expr(q, lo, hi)


@dataclass
class _Model:
    """The CP-SAT model of the space (spatial dimensions as variables)."""

    model: cp_model.CpModel
    chain: dict[str, cp_model.IntVar]
    cluster: object
    spatial: list[object]                       # per level: index into space.spatial (or a constant)
    objective: _Expr
    assumptions: dict[str, cp_model.IntVar]    # constraint name -> enforcement literal
    core: list[str] = field(default_factory=list)

    def ring(self, lo: int, hi: int) -> cp_model.CpModel:
        """A copy of the model restricted to surrogate values in [lo, hi], capacities enforced."""
        ring = self.model.clone()
        ring.add(self.objective.expr >= lo)
        ring.add(self.objective.expr <= hi)
        for lit in self.assumptions.values():
            ring.add(lit == 1)
        return ring


def _element(alg: _CpAlgebra, index, options: list):
    """``options[index]`` for a variable index (options: expressions or integers)."""
    if isinstance(index, int):
        return options[index]
    wrapped = [alg.wrap(o) for o in options]
    if all(w.lo == w.hi for w in wrapped) and len({w.lo for w in wrapped}) == 1:
        return wrapped[0].lo
    lo, hi = min(w.lo for w in wrapped), max(w.hi for w in wrapped)
    var = alg._new(lo, hi, "el")
    alg.m.add_element(index, [w.expr for w in wrapped], var)
    return _Expr(var, lo, hi)


def _build(problem: Problem, tab: F.Tables) -> _Model:
    space: FreeSpace = problem.space
    model = cp_model.CpModel()
    alg = _CpAlgebra(model)
    chain = {d: model.new_int_var(0, len(space.chains[d]) - 1, f"chain_{d}") for d in space.dim_names}
    cluster = (model.new_int_var(0, len(space.cluster_chains) - 1, "clusters")
               if len(space.cluster_chains) > 1 else 0)
    n_sp = len(space.spatial)
    spatial = [model.new_int_var(0, n_sp - 1, f"spatial{lv}") if n_sp > 1 else 0
               for lv in range(space.levels)]

    def sym(level: int, dim: str) -> F.Symbols:
        return F.Symbols(chain, cluster, tuple(dim for _ in range(space.levels)))

    # Busy sub-clusters per level: for the spatial dimension the level's variable picks.
    busy = 1
    for lv in range(space.levels):
        options = [F.active(alg, space, tab, sym(lv, d), lv)[2] for d in space.spatial]
        level_busy = _element(alg, spatial[lv], options)
        busy = level_busy if isinstance(busy, int) and busy == 1 else alg.mul(busy, level_busy)
    lanes = problem.accelerator.simd_lanes
    objective = alg.wrap(alg.ceil_div_lb(space.layer.true_macs, alg.mul(busy, lanes)))
    acc = problem.accelerator
    assumptions = {}
    if acc.l1_size is not None:
        l1 = F.l1_requirement(alg, space, tab, sym(0, space.spatial[0]))   # spatial choice is irrelevant
        assumptions["l1_size"] = _capacity(model, alg.wrap(l1), acc.l1_size, "l1_size")
    if acc.l2_size is not None:
        options = [F.l2_requirement(alg, space, tab, sym(0, d)) for d in space.spatial]
        assumptions["l2_size"] = _capacity(model, alg.wrap(_element(alg, spatial[0], options)), acc.l2_size,
                                           "l2_size")
    return _Model(model, chain, cluster, spatial, objective, assumptions)


def _capacity(model: cp_model.CpModel, requirement: _Expr, cap: int, name: str):
    lit = model.new_bool_var(f"fits_{name}")
    model.add(requirement.expr <= cap).only_enforce_if(lit)
    return lit


# Default budgets (``dse map`` shows them in its help).
DEFAULT_EVALUATIONS = CPSAT_EVALUATIONS
DEFAULT_SOLVER_TIME = CPSAT_SOLVER_TIME
SEED_CONFIGS = 16                    # best-surrogate configurations offered as descent seeds
RANDOM_PER_CHOICE = 24               # seeded random points per choice of spatial dimensions
MAX_SEEDS = 32                       # descents started from seeds (then restarts from the best)


class CpSatSearcher(Searcher):
    """CP-SAT bounds and certificates, a neighbourhood descent for the incumbent (module docstring)."""

    name = "cpsat"

    def __init__(self, *, evaluations: int = DEFAULT_EVALUATIONS, solver_time: float = DEFAULT_SOLVER_TIME,
                 time_limit: float | None = None, params: str | None = None, top_k: int = 10,
                 batch: int = 256, seed: int = 0, jobs: int | None = None,
                 descent_share: float = 0.6) -> None:
        if evaluations < 1:
            raise SpecError(f"must be a positive integer, got {evaluations}", key="evaluations")
        if not solver_time > 0:
            raise SpecError(f"must be positive, got {solver_time}", key="solver_time")
        self.evaluations = evaluations
        self.solver_time = solver_time
        self.time_limit = time_limit
        self.params = params or ""
        self.top_k = top_k
        self.batch = batch
        self.seed = seed
        self.jobs = jobs
        self.descent_share = descent_share

    def _solver(self, det_seconds: float) -> cp_model.CpSolver:
        solver = cp_model.CpSolver()
        if self.params and not solver.parameters.merge_text_format(self.params):
            raise SpecError(f"not valid CP-SAT parameters (text proto, e.g. 'max_deterministic_time:10,"
                            f"num_workers:1'): {self.params!r}", key="cpsat_params")
        if "max_deterministic_time" not in self.params:
            solver.parameters.max_deterministic_time = max(det_seconds, 1e-3)
        if self.time_limit is not None and "max_time_in_seconds" not in self.params:
            solver.parameters.max_time_in_seconds = max(self._clock.left(), 0.01)
        if "num_workers" not in self.params and "num_search_workers" not in self.params:
            solver.parameters.num_workers = 1     # one worker: a deterministic search
        solver.parameters.random_seed = self.seed
        return solver

    def _search(self, problem: Problem) -> SearchResult:
        space = problem.space
        if not isinstance(space, FreeSpace) or space.tiles != "divisors":
            raise SpecError("the CP-SAT searcher works on free spaces with dividing tiles; use the "
                            "exhaustive or Optuna searcher for templates or edge tiles", key="searcher")
        self._clock = _Clock(self.time_limit)
        self._solver_used = 0.0
        self._target = None
        self._spatial_index = {s: i for i, s in enumerate(space.spatial_choices)}
        archive = Archive(problem, self.top_k, self.jobs)
        tab = F.tables(space)
        m = _build(problem, tab)
        single = len(problem.objectives) == 1
        floor = bounds.floor(space.layer, problem.accelerator, problem.objectives[0]) if single else None
        latency = problem.objectives == ("latency",)

        # (1) The smallest surrogate value: a bound on every design's latency.
        lower = self._lower_bound(m, archive, space)
        if lower is None:                                   # proven infeasible
            return self._infeasible(problem, m, archive)
        bound = max(lower, floor) if latency else floor
        self._target = bound
        if self._done(archive, bound):
            return self._result(archive, "optimal", bound, space)

        # (2) Descent from the best-surrogate configurations and the best of a few random points.
        descent = Descent(problem, archive, seed=self.seed, target=bound if bound is not None else -math.inf)
        seeds = self._seed_configs(m, lower, space, descent)
        budget_end = min(self.evaluations, int(self.descent_share * self.evaluations))
        descent.run(seeds, budget_end)
        if self._done(archive, bound):
            return self._result(archive, "optimal", bound, space)
        if self._clock.over():
            return self._result(archive, "time_cap", bound, space)

        # (3) Rings of increasing surrogate value: certify, or raise the bound.
        nxt, hi_all = lower, m.objective.hi
        width = max(1, int(nxt * (0.0005 if latency else 0.05)))
        while True:
            best = archive.best_value() if latency else math.inf
            if nxt > hi_all:                 # every configuration scored: the best is optimal
                proven = archive.best_value() if (single and archive.best) else bound
                return self._result(archive, "optimal" if archive.best else "infeasible", proven, space)
            if latency and best <= nxt:
                return self._result(archive, "optimal", best, space)
            if archive.evaluations >= self.evaluations or self._solver_used >= self.solver_time:
                return self._result(archive, "budget", max(bound, nxt) if latency else bound, space)
            if self._clock.over():
                return self._result(archive, "time_cap", max(bound, nxt) if latency else bound, space)
            ring_hi = nxt + width - 1
            if latency and best < math.inf:
                ring_hi = min(ring_hi, int(best) - 1)
            if self._enumerate(m, nxt, ring_hi, archive, space):
                nxt = ring_hi + 1
                width *= 2
            else:
                width = max(1, width // 2)

    def _done(self, archive: Archive, bound: float | None) -> bool:
        return bound is not None and archive.best_value() <= bound

    def _result(self, archive: Archive, stop: str, bound: float | None, space: FreeSpace) -> SearchResult:
        return archive.result(self.name, stop, bound=bound, solver_time=self._solver_used)

    def _solve(self, model: cp_model.CpModel, det_seconds: float, callback=None):
        solver = self._solver(min(det_seconds, max(self.solver_time - self._solver_used, 1e-3)))
        if callback is not None:
            solver.parameters.enumerate_all_solutions = True
        status = solver.solve(model, callback) if callback is not None else solver.solve(model)
        self._solver_used += solver.deterministic_time
        return solver, status

    def _lower_bound(self, m: _Model, archive: Archive, space: FreeSpace) -> int | None:
        probe = m.model.clone()
        probe.minimize(m.objective.expr)
        probe.add_assumptions(list(m.assumptions.values()))
        solver, status = self._solve(probe, 0.25 * self.solver_time)
        if status == cp_model.OPTIMAL:
            lower = int(solver.objective_value)
        elif status == cp_model.FEASIBLE:
            lower = int(solver.best_objective_bound)
        elif status == cp_model.INFEASIBLE:
            names = {lit.index: name for name, lit in m.assumptions.items()}
            m.core = [names[i] for i in solver.sufficient_assumptions_for_infeasibility() if i in names]
            return None
        else:                                   # out of budget: the trivial bound stays valid
            return m.objective.lo
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            archive.add(space.points(self._config(m, solver.value)))
        return lower

    def _seed_configs(self, m: _Model, lower: int, space: FreeSpace, descent: Descent) -> list[dict]:
        """Descent seeds, best first: the configurations of the lowest surrogate values (CP-SAT
        enumerates up to SEED_CONFIGS) and, for every choice of spatial dimensions, the best of
        RANDOM_PER_CHOICE seeded random points with that choice (good designs of different
        choices differ in many parameters at once, more than a descent step crosses)."""
        collector = _Gather(m, SEED_CONFIGS)
        width = max(1, lower // 1000)
        for _ in range(4):
            if len(collector.configs) >= SEED_CONFIGS:
                break
            ring = m.ring(lower, min(lower + width - 1, m.objective.hi))
            self._solve(ring, 0.1 * self.solver_time, collector)
            width *= 8
        seeds = [self._params(space, c) for c in collector.configs[:SEED_CONFIGS]]
        candidates = list(seeds)
        choices = itertools.product(range(len(space.spatial)), repeat=space.levels)
        for choice in choices:
            fixed = {f"spatial{lv}": c for lv, c in enumerate(choice)}
            candidates += descent.random_params(RANDOM_PER_CHOICE, fixed)
        values = descent.score(candidates, self.evaluations)
        order = np.argsort(values, kind="stable")
        picked, choices_seen = [], set()
        for i in order:
            params, value = candidates[int(i)], values[int(i)]
            choice = tuple(params[f"spatial{lv}"] for lv in range(space.levels))
            if not math.isfinite(value) or (choice in choices_seen and len(picked) >= MAX_SEEDS // 2):
                continue
            choices_seen.add(choice)
            picked.append(params)
            if len(picked) >= MAX_SEEDS:
                break
        return picked

    def _params(self, space: FreeSpace, config: tuple) -> dict[str, int]:
        """Decode parameters of a configuration (tiles and cluster sizes as chosen, default order)."""
        chains, cluster, spatial = config
        params = {}
        for lv in range(space.levels):
            params[f"spatial{lv}"] = spatial[lv]
            for d in space.dim_names:
                tile = int(space.chains[d][chains[d]][lv])
                params[f"{hole_name(lv, d)}_tile"] = int(np.searchsorted(space.options[d], tile))
                params[f"{hole_name(lv, d)}_rank"] = 0
            if lv > 0:
                size = int(space.cluster_chains[cluster][lv - 1])
                params[f"c{lv}"] = space.cluster_sizes.index(size)
        return params

    def _config(self, m: _Model, value) -> ConfigBatch:
        space_spatial = tuple(self._spatial_dim(m, value, lv) for lv in range(len(m.spatial)))
        return ConfigBatch(np.array([self._spatial_index[space_spatial]]),
                           {d: np.array([value(v)]) for d, v in m.chain.items()},
                           np.array([value(m.cluster) if not isinstance(m.cluster, int) else 0]))

    def _spatial_dim(self, m: _Model, value, level: int) -> str:
        index = m.spatial[level]
        return self._space_spatial[index if isinstance(index, int) else value(index)]

    def _enumerate(self, m: _Model, lo: int, hi: int, archive: Archive, space: FreeSpace) -> bool:
        """Score every configuration with surrogate in [lo, hi]; False if a budget cut it short."""
        collector = _Collector(self, m, space, archive)
        _, status = self._solve(m.ring(lo, hi), self.solver_time, collector)
        collector.flush()
        return status in (cp_model.OPTIMAL, cp_model.INFEASIBLE) and not collector.stopped

    def _infeasible(self, problem: Problem, m: _Model, archive: Archive) -> SearchResult:
        acc = problem.accelerator
        caps = {"l1_size": acc.l1_size, "l2_size": acc.l2_size}
        detail = ", ".join(f"{n} {caps[n]}" for n in sorted(m.core)) or "the space's constraints"
        message = (f"no mapping of layer {problem.space.layer.name} in this space fits: infeasible because "
                   f"of {detail} (the smallest requirement exceeds the capacity for every spatial choice)")
        return archive.result(self.name, "infeasible", solver_time=self._solver_used, message=message)

    def search(self, problem: Problem, seeds=()) -> SearchResult:
        space = problem.space
        if isinstance(space, FreeSpace):
            self._space_spatial = space.spatial
        return super().search(problem, seeds)


class _Clock:
    """An optional wall-clock cap (never what decides a result unless the user sets one)."""

    def __init__(self, seconds: float | None) -> None:
        self.deadline = None if seconds is None else time.perf_counter() + seconds

    def over(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def left(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.perf_counter()


class _Gather(cp_model.CpSolverSolutionCallback):
    """Collects up to ``limit`` configurations (chain indices, cluster index, spatial indices)."""

    def __init__(self, m: _Model, limit: int) -> None:
        super().__init__()
        self.m, self.limit = m, limit
        self.configs: list[tuple] = []

    def on_solution_callback(self) -> None:
        m = self.m
        chains = {d: self.value(v) for d, v in m.chain.items()}
        cluster = self.value(m.cluster) if not isinstance(m.cluster, int) else 0
        spatial = tuple(s if isinstance(s, int) else self.value(s) for s in m.spatial)
        self.configs.append((chains, cluster, spatial))
        if len(self.configs) >= self.limit:
            self.stop_search()


class _Collector(cp_model.CpSolverSolutionCallback):
    """Scores the configurations of a ring in batches, within the evaluation budget."""

    def __init__(self, searcher: CpSatSearcher, m: _Model, space: FreeSpace, archive: Archive) -> None:
        super().__init__()
        self.searcher, self.m, self.space, self.archive = searcher, m, space, archive
        self.rows: list[tuple] = []
        self.stopped = False

    def on_solution_callback(self) -> None:
        m = self.m
        cl = self.value(m.cluster) if not isinstance(m.cluster, int) else 0
        spatial = tuple(self.searcher._space_spatial[s if isinstance(s, int) else self.value(s)]
                        for s in m.spatial)
        self.rows.append((tuple(self.value(v) for v in m.chain.values()), cl,
                          self.searcher._spatial_index[spatial]))
        if len(self.rows) >= self.searcher.batch:
            self.flush()
            searcher = self.searcher
            if (self.archive.evaluations >= searcher.evaluations or searcher._clock.over()
                    or searcher._done(self.archive, searcher._target)):
                self.stopped = True
                self.stop_search()

    def flush(self) -> None:
        if not self.rows:
            return
        dims = list(self.m.chain)
        chains = np.array([r[0] for r in self.rows])
        batch = ConfigBatch(np.array([r[2] for r in self.rows]),
                            {d: chains[:, j] for j, d in enumerate(dims)},
                            np.array([r[1] for r in self.rows]))
        self.rows = []
        points = self.space.points(batch)
        room = self.searcher.evaluations - self.archive.evaluations
        if room <= 0:
            self.stopped = True
            return
        if len(points) > room:
            points, self.stopped = points[:room], True
        self.archive.add(points)


__all__ = ["DEFAULT_EVALUATIONS", "DEFAULT_SOLVER_TIME", "CpSatSearcher"]
