"""CP-SAT search over a free mapping space, with certified bounds.

One CP-SAT model per choice of spatial dimensions. Variables: the tile chain of every dimension and
the cluster sizes (indices into the space's tables). Constraints, exact: the cost model's L1 and L2
requirements within the accelerator's capacities (closed forms in ``cpsat_formulas``, checked against
the cost model in the tests); cluster sizes within the PE count (by the space's tables). Objective: a
*surrogate that bounds the cost model from below* (latency: true MACs over the PEs the configuration
can keep busy).

The search: (1) minimise the surrogate of every model: the smallest value is a valid lower bound of
the optimum (and infeasible models are explained with the constraints in their infeasibility core);
(2) enumerate configurations ring by ring of increasing surrogate value, expand each into its
canonical loop orders, score them with the cost model in batches, and keep the best; (3) stop when
the next ring starts at or above the best score found (the best is then optimal), or at the time
limit, reporting the bound and the gap. Every reported design is scored by the cost model; bandwidth
limits, when enforced, are checked there (the model relaxes them, which keeps its bound valid).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from costmodel.errors import SpecError
from spaces.mapping import ConfigBatch, FreeSpace

from . import cpsat_formulas as F
from ._base import Found, Problem, Searcher, SearchResult, evaluate_points, found
from .pareto import pareto_mask


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
    """The CP-SAT model of one choice of spatial dimensions."""

    spatial: tuple[str, ...]
    model: cp_model.CpModel
    chain: dict[str, cp_model.IntVar]
    cluster: object
    objective: _Expr
    assumptions: dict[str, cp_model.IntVar]    # constraint name -> enforcement literal
    lower: int | None = None                   # smallest objective value (after solving)
    status: str = "unknown"
    core: list[str] = field(default_factory=list)
    next: int = 0                              # surrogate values below this are fully enumerated
    best: float = math.inf                     # best first objective among its designs scored so far

    def with_ring(self, lo: int, hi: int) -> cp_model.CpModel:
        """A copy of the model restricted to surrogate values in [lo, hi], capacities enforced."""
        ring = self.model.clone()
        ring.add(self.objective.expr >= lo)
        ring.add(self.objective.expr <= hi)
        for lit in self.assumptions.values():
            ring.add(lit == 1)
        return ring


def _objective(alg, space, tab, sym, problem):
    """The surrogate every model minimises and enumerates by: the latency lower bound. It bounds the
    latency objective; for energy, EDP and Pareto fronts it orders the enumeration (an epsilon-
    constraint sweep over latency), and the search reports no bound."""
    return F.latency_lower_bound(alg, space, tab, sym, problem.accelerator.simd_lanes)


def _build(problem: Problem, tab: F.Tables, spatial: tuple[str, ...]) -> _Model:
    space: FreeSpace = problem.space
    model = cp_model.CpModel()
    alg = _CpAlgebra(model)
    chain = {d: model.new_int_var(0, len(space.chains[d]) - 1, f"chain_{d}") for d in space.dim_names}
    cluster = (model.new_int_var(0, len(space.cluster_chains) - 1, "clusters")
               if len(space.cluster_chains) > 1 else 0)
    sym = F.Symbols(chain, cluster, spatial)
    acc = problem.accelerator
    assumptions = {}
    for name, cap, formula in (("l1_size", acc.l1_size, F.l1_requirement),
                               ("l2_size", acc.l2_size, F.l2_requirement)):
        if cap is None:
            continue
        req = alg.wrap(formula(alg, space, tab, sym))
        lit = model.new_bool_var(f"fits_{name}")
        model.add(req.expr <= cap).only_enforce_if(lit)
        assumptions[name] = lit
    obj = alg.wrap(_objective(alg, space, tab, sym, problem))
    return _Model(spatial, model, chain, cluster, obj, assumptions)


class CpSatSearcher(Searcher):
    """CP-SAT with a cost-model-scored enumeration (see the module docstring)."""

    name = "cpsat"

    def __init__(self, *, time_limit: float = 10.0, params: str | None = None, top_k: int = 10,
                 batch: int = 256, seed: int = 0) -> None:
        self.time_limit = time_limit
        self.params = params or ""
        self.top_k = top_k
        self.batch = batch
        self.seed = seed

    def _solver(self, seconds: float) -> cp_model.CpSolver:
        solver = cp_model.CpSolver()
        if self.params and not solver.parameters.merge_text_format(self.params):
            raise SpecError(f"not valid CP-SAT parameters (text proto, e.g. "
                            f"'max_time_in_seconds:10,num_workers:2'): {self.params!r}", key="cpsat_params")
        if not self.params or "max_time_in_seconds" not in self.params:
            solver.parameters.max_time_in_seconds = max(seconds, 0.01)
        if "num_workers" not in self.params and "num_search_workers" not in self.params:
            solver.parameters.num_workers = 1
        solver.parameters.random_seed = self.seed
        return solver

    def _search(self, problem: Problem) -> SearchResult:
        space = problem.space
        if not isinstance(space, FreeSpace) or space.tiles != "divisors":
            raise SpecError("the CP-SAT searcher works on free spaces with dividing tiles; use the "
                            "exhaustive or Optuna searcher for templates or edge tiles", key="searcher")
        start = time.perf_counter()
        deadline = start + 0.95 * self.time_limit       # leave time to assemble the result
        tab = F.tables(space)
        models = [_build(problem, tab, spatial) for spatial in space.spatial_choices]
        state = _State(problem, self.top_k)

        # (1) The smallest surrogate of every model: a valid lower bound of the optimum.
        # No runtime is below the PE-peak bound (the cost model's invariant): a global floor that
        # also holds when a model's own bound was cut short by the time limit; reaching it ends the search.
        bounded = problem.objectives == ("latency",)
        acc = problem.accelerator
        peak = -(-space.layer.true_macs // (acc.num_pes * acc.simd_lanes))
        state.floor = peak if bounded else -math.inf
        share = max(self.time_limit * 0.3 / len(models), 0.05)
        for m in models:
            self._lower_bound(m, min(share, max(deadline - time.perf_counter(), 0.01)), state, space)
            if state.best_value() <= state.floor:
                return state.result(self.name, True, peak, start)
        open_models = [m for m in models if m.status in ("optimal", "feasible")]
        if not open_models:
            return self._infeasible(problem, models, state, start)
        # (2) Rings of increasing surrogate value. Each model remembers up to where it is fully
        # enumerated (``next``); the smallest ``next`` is a valid bound of every unscored design. In a
        # ring, the models go best-scoring first, each with half the time left (the last with all of
        # it): a crowded ring is searched where good designs were found, yet every model gets a turn,
        # and time a model does not need passes on.
        for m in open_models:
            m.next = max(m.lower, peak if bounded else 0)
        width = max(1, int(min(m.next for m in open_models) * (0.0005 if bounded else 0.05)))
        proven = False
        while time.perf_counter() < deadline:
            live = [m for m in open_models if m.next <= m.objective.hi]
            best = state.best_value() if bounded else math.inf
            if not live or best <= min(m.next for m in live) or best <= state.floor:
                proven = True                   # every unscored design is at least as bad
                break
            ring_hi = min(m.next for m in live) + width - 1
            if best < math.inf:
                ring_hi = min(ring_hi, int(best) - 1)
            members = sorted((m for m in live if m.next <= ring_hi), key=lambda m: m.best)
            complete = True
            for k, m in enumerate(members):
                now = time.perf_counter()
                slice_end = deadline if k == len(members) - 1 else now + (deadline - now) / 2
                if self._enumerate(m, m.next, ring_hi, slice_end, state, space):
                    m.next = ring_hi + 1
                else:
                    complete = False
                if state.best_value() <= state.floor:
                    break
            width = width * 2 if complete else max(1, width // 2)
        live = [m for m in open_models if m.next <= m.objective.hi]
        ring_lo = min((m.next for m in live), default=math.inf)
        proven = proven or state.best_value() <= state.floor
        lower = (peak if ring_lo == math.inf else max(int(ring_lo), peak)) if bounded else None
        return state.result(self.name, proven, lower, start)

    def _lower_bound(self, m: _Model, seconds: float, state: _State, space: FreeSpace) -> None:
        probe = m.model.clone()
        probe.minimize(m.objective.expr)
        probe.add_assumptions(list(m.assumptions.values()))
        solver = self._solver(seconds)
        status = solver.solve(probe)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            m.status = "optimal" if status == cp_model.OPTIMAL else "feasible"
            m.lower = int(solver.best_objective_bound) if status == cp_model.FEASIBLE else int(
                solver.objective_value)
            m.best = min(m.best, state.add(space.points(self._config(m, solver.value))))
        elif status == cp_model.INFEASIBLE:
            m.status = "infeasible"
            names = {lit.index: name for name, lit in m.assumptions.items()}
            m.core = [names[i] for i in solver.sufficient_assumptions_for_infeasibility() if i in names]
        else:                                   # out of time: the trivial bound stays valid
            m.status = "feasible"
            m.lower = m.objective.lo

    def _config(self, m: _Model, value) -> ConfigBatch:
        return ConfigBatch(np.array([self._spatial_lookup[m.spatial]]),
                           {d: np.array([value(v)]) for d, v in m.chain.items()},
                           np.array([value(m.cluster) if not isinstance(m.cluster, int) else 0]))

    def _enumerate(self, m: _Model, lo: int, hi: int, deadline: float, state: _State,
                   space: FreeSpace) -> bool:
        """Score every configuration of model ``m`` with surrogate in [lo, hi]; False if cut short."""
        solver = self._solver(deadline - time.perf_counter())
        solver.parameters.enumerate_all_solutions = True
        collector = _Collector(m, space, state, self.batch, deadline, self._spatial_lookup[m.spatial])
        status = solver.solve(m.with_ring(lo, hi), collector)
        collector.flush()
        return status in (cp_model.OPTIMAL, cp_model.INFEASIBLE) and not collector.stopped

    def _infeasible(self, problem: Problem, models, state: _State, start: float) -> SearchResult:
        binding = sorted({name for m in models for name in m.core})
        acc = problem.accelerator
        caps = {"l1_size": acc.l1_size, "l2_size": acc.l2_size}
        detail = ", ".join(f"{n} {caps[n]}" for n in binding) or "the space's constraints"
        message = (f"no mapping of layer {problem.space.layer.name} in this space fits: infeasible because "
                   f"of {detail} (smallest requirement exceeds the capacity for every spatial choice)")
        result = state.result(self.name, True, None, start)
        result.status = "infeasible"
        result.message = message
        return result

    def search(self, problem: Problem) -> SearchResult:
        space = problem.space
        if isinstance(space, FreeSpace):
            self._spatial_lookup = {s: i for i, s in enumerate(space.spatial_choices)}
        return super().search(problem)


class _Collector(cp_model.CpSolverSolutionCallback):
    def __init__(self, m: _Model, space: FreeSpace, state: _State, batch: int, deadline: float,
                 spatial_index: int) -> None:
        super().__init__()
        self.m, self.space, self.state = m, space, state
        self.batch, self.deadline = batch, deadline
        self.spatial_index = spatial_index
        self.rows: list[tuple] = []
        self.stopped = False

    def on_solution_callback(self) -> None:
        cl = self.value(self.m.cluster) if not isinstance(self.m.cluster, int) else 0
        self.rows.append((tuple(self.value(v) for v in self.m.chain.values()), cl))
        if time.perf_counter() >= self.deadline:
            self.stopped = True
            self.stop_search()
        elif len(self.rows) >= self.batch:
            self.flush()
            if self.state.best_value() <= self.state.floor:     # nothing can do better: done
                self.stop_search()

    def flush(self) -> None:
        if not self.rows:
            return
        dims = list(self.m.chain)
        chains = np.array([r[0] for r in self.rows])
        batch = ConfigBatch(np.full(len(self.rows), self.spatial_index),
                            {d: chains[:, j] for j, d in enumerate(dims)},
                            np.array([r[1] for r in self.rows]))
        self.rows = []
        self.m.best = min(self.m.best, self.state.add(self.space.points(batch)))


class _State:
    """The designs scored so far: the best ``top_k`` (one objective) or the Pareto set (several)."""

    def __init__(self, problem: Problem, top_k: int) -> None:
        self.problem = problem
        self.top_k = top_k
        self.best: list[Found] = []
        self.evaluations = 0
        self.seen: set = set()
        self.floor = -math.inf              # a value no design can beat (latency: the PE-peak bound)

    def best_value(self) -> float:
        return self.best[0].values[0] if self.best else math.inf

    def add(self, points) -> float:
        """Score new points; returns the best first objective among them (inf if none is feasible)."""
        points = [p for p in points if p not in self.seen]
        self.seen.update(points)
        if not points:
            return math.inf
        scored = evaluate_points(self.problem, points)
        self.evaluations += len(points)
        feasible = np.nonzero(np.isfinite(scored.values).all(axis=1))[0]
        first = float(scored.values[feasible, 0].min()) if len(feasible) else math.inf
        if self.problem.multi:
            cand = feasible[pareto_mask(scored.values[feasible])]
        else:
            cand = feasible[np.argsort(scored.values[feasible, 0], kind="stable")[:self.top_k]]
        merged = self.best + [found(self.problem, scored, int(i)) for i in cand]
        if self.problem.multi and merged:
            keep = pareto_mask(np.array([f.values for f in merged]))
            merged = [f for f, k in zip(merged, keep, strict=True) if k]
        merged.sort(key=lambda f: f.values)
        self.best = merged if self.problem.multi else merged[:self.top_k]
        return first

    def result(self, name: str, proven: bool, lower: int | None, start: float) -> SearchResult:
        status = ("optimal" if proven else "feasible") if self.best else "unknown"
        bound = None
        if self.best and lower is not None:
            bound = float(min(lower, self.best[0].values[0]))
        res = SearchResult(name, self.problem.objectives, self.best, status, self.evaluations,
                           time.perf_counter() - start, bound=bound)
        if proven and self.best and not self.problem.multi:
            res.bound = self.best[0].values[0]
        if self.problem.multi:
            res.pareto = self.best
        return res


__all__ = ["CpSatSearcher", "pareto_mask"]
