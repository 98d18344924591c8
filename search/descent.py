"""Neighbourhood descent over a mapping space's parameter encoding, with deterministic restarts.

A point of a space is a parameter assignment (``MappingSpace.parameters`` / ``decode``: spatial
dimension, tile and loop-order rank per dimension and level, cluster sizes). From each seed the
descent scores every assignment that differs in one parameter (one cost-model call for all of them),
moves to the best if it improves, and stops at a local optimum. While budget is left it restarts from
the best optimum found, kicked: a few parameters redrawn by a seeded generator (iterated local search).

Everything is a function of the seeds, the seed of the generator and the budget of evaluations (a
point scored once counts once, whatever parameters lead to it), so the same call gives the same
designs on any machine. Several objectives are descended on a scalarisation (a weighted sum of the
objectives, each divided by its floor); the archive keeps the Pareto set of everything scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spaces.mapping import Point

from ._base import Archive, Problem
from .bounds import floor

Params = dict[str, int]


@dataclass
class DescentStats:
    descents: int = 0           # local optima reached
    improvements: int = 0       # moves that improved


class Descent:
    """Descends ``problem.space`` feeding ``archive``; stops when ``budget`` evaluations are spent or
    when ``target`` (a value of the single objective no design can beat) is reached."""

    def __init__(self, problem: Problem, archive: Archive, *, seed: int = 0, kick: int = 3,
                 target: float = -math.inf, weights: Sequence[float] | None = None) -> None:
        self.problem = problem
        self.archive = archive
        self.names = problem.space.parameters()
        self.rng = np.random.default_rng(seed)
        self.kick = kick
        k = len(problem.objectives)
        w = np.asarray(weights if weights is not None else [1.0] * k, dtype=float)
        scale = np.array([max(floor(problem.space.layer, problem.accelerator, o), 1e-30)
                          for o in problem.objectives])
        self.weights = w / scale
        # The target is in the first objective's units; the descent compares scalarised values.
        self.target = target * self.weights[0] if k == 1 else -math.inf
        self.values: dict[Point, float] = {}       # point -> scalarised value (inf: infeasible)
        self._decoded: dict[tuple, Point] = {}     # parameter values -> point (neighbourhoods overlap)
        self.stats = DescentStats()

    # ------------------------------------------------------------------------------ scoring
    def score(self, params: list[Params], budget_end: int) -> list[float]:
        """Scalarised values of the points these assignments decode to (new points are scored, within
        the budget; points beyond it are inf)."""
        points = [self._decode(p) for p in params]
        new: list[Point] = []
        seen: set[Point] = set()
        for pt in points:
            if pt not in self.values and pt not in seen:
                seen.add(pt)
                new.append(pt)
        room = max(budget_end - self.archive.evaluations, 0)
        if new[:room]:
            scored = self.archive.add(new[:room])
            for pt, v in zip(new[:room], scored.values @ self.weights, strict=True):
                self.values[pt] = float(v) if np.isfinite(v) else math.inf
        return [self.values.get(pt, math.inf) for pt in points]

    def _decode(self, params: Params) -> Point:
        key = tuple(params[name] for name in self.names)
        point = self._decoded.get(key)
        if point is None:
            point = self._decoded[key] = self.problem.space.decode(params)
        return point

    def _neighbours(self, params: Params) -> list[Params]:
        out = []
        for name, k in self.names.items():
            for v in range(k):
                if v != params[name]:
                    q = dict(params)
                    q[name] = v
                    out.append(q)
        return out

    # ------------------------------------------------------------------------------ search
    def descend(self, start: Params, budget_end: int) -> tuple[Params, float]:
        """From ``start`` to a local optimum (or until the budget ends)."""
        current = dict(start)
        value = self.score([current], budget_end)[0]
        while self.archive.evaluations < budget_end and value > self.target:
            neighbours = self._neighbours(current)
            values = self.score(neighbours, budget_end)
            i = int(np.argmin(values))
            if values[i] >= value:
                break
            current, value = neighbours[i], values[i]
            self.stats.improvements += 1
        self.stats.descents += 1
        return current, value

    def run(self, seeds: Sequence[Params], budget_end: int) -> tuple[Params | None, float]:
        """Descend from every seed in order, then restart from kicked copies of the best optimum
        until the budget (archive evaluations reaching ``budget_end``) is spent."""
        best, best_value = None, math.inf
        for seed in seeds:
            if self.archive.evaluations >= budget_end or best_value <= self.target:
                break
            params, value = self.descend(seed, budget_end)
            if value < best_value:
                best, best_value = params, value
        stale = 0
        while best is not None and self.archive.evaluations < budget_end and best_value > self.target:
            before = self.archive.evaluations
            params, value = self.descend(self._kicked(best), budget_end)
            if value < best_value:
                best, best_value, stale = params, value, 0
            else:
                stale += 1
            if self.archive.evaluations == before and stale > 50:
                break                       # every neighbourhood around the optimum is scored
        return best, best_value

    def _kicked(self, params: Params) -> Params:
        out = dict(params)
        names = list(self.names)
        for j in self.rng.choice(len(names), size=min(self.kick, len(names)), replace=False):
            name = names[int(j)]
            out[name] = int(self.rng.integers(0, self.names[name]))
        return out

    def random_params(self, n: int, fixed: dict[str, int] | None = None) -> list[Params]:
        """``n`` seeded random assignments (``fixed`` parameters kept as given)."""
        out = []
        for _ in range(n):
            params = {name: int(self.rng.integers(0, k)) for name, k in self.names.items()}
            params.update(fixed or {})
            out.append(params)
        return out
