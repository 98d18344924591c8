"""Exhaustive search: every point of the space, in cost-model batches. The ground truth."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from spaces.mapping import Point

from ._base import (
    Found,
    InfeasibilityTally,
    Problem,
    Scored,
    Searcher,
    SearchResult,
    evaluate_mixed_chunk,
    found,
    status_of,
)
from .pareto import pareto_mask


class ExhaustiveSearcher(Searcher):
    """Enumerates the space chunk by chunk, keeping the ``top_k`` best designs (single objective) or
    the Pareto set (several objectives). ``evaluations`` caps the points scored (None: all of them,
    the ground truth); ``time_limit`` is an optional wall-clock cap. The result says how much of the
    space it saw (``stop``: exhausted, budget or time_cap; ``seen``)."""

    name = "exhaustive"

    def __init__(self, *, top_k: int = 10, chunk: int = 16384, evaluations: int | None = None,
                 time_limit: float | None = None, progress: Callable[[int, int], None] | None = None,
                 jobs: int | None = None) -> None:
        self.top_k = top_k
        self.chunk = chunk
        self.evaluations = evaluations
        self.jobs = jobs                  # cost-model threads (None: costmodel.set_jobs' choice)
        self.time_limit = time_limit
        self.progress = progress

    def _search(self, problem: Problem) -> SearchResult:
        space = problem.space
        total = space_size(space)
        start = time.perf_counter()
        stop = "exhausted"
        kept_points: list[Point] = []
        kept_values = np.zeros((0, len(problem.objectives)))
        kept_costs: list = []
        evaluations = 0
        tally = InfeasibilityTally(problem)
        for structures, holes in space.mixed_chunks(self.chunk):
            if self.evaluations is not None:
                room = self.evaluations - evaluations
                if room <= 0:
                    stop = "budget"
                    break
                structures, holes = structures[:room], holes[:room]
            cost, values, feasible = evaluate_mixed_chunk(problem, structures, holes, jobs=self.jobs)
            if not kept_points and not feasible.any():
                tally.add(cost)             # only needed while nothing fits
            n = len(values)
            evaluations += n
            if problem.multi:
                cand = np.nonzero(pareto_mask(values))[0]
            else:
                finite = np.nonzero(np.isfinite(values[:, 0]))[0]
                cand = finite[np.argsort(values[finite, 0], kind="stable")[:self.top_k]]
            if len(cand):
                for i in cand:
                    s = int(structures[i])
                    names = space.structures[s].holes
                    kept_points.append(Point(s, tuple((h, int(holes[i, k])) for k, h in enumerate(names))))
                    kept_costs.append(cost.row(int(i)))
                kept_values = np.vstack([kept_values, values[cand]])
                keep = (pareto_mask(kept_values) if problem.multi else
                        np.isin(np.arange(len(kept_values)),
                                np.argsort(kept_values[:, 0], kind="stable")[:self.top_k]))
                idx = np.nonzero(keep)[0]
                kept_points = [kept_points[i] for i in idx]
                kept_costs = [kept_costs[i] for i in idx]
                kept_values = kept_values[idx]
            if self.progress:
                self.progress(evaluations, total or evaluations)
            if self.time_limit is not None and time.perf_counter() - start > self.time_limit:
                stop = "time_cap"
                break
        else:
            stop = "exhausted"
        if stop == "exhausted":
            total = evaluations
        elif total is not None and evaluations >= total:
            stop = "exhausted"
        order = (np.lexsort(kept_values.T[::-1]) if len(kept_values) else np.zeros(0, dtype=int))
        best = [Found(kept_points[i], space.dataflow(kept_points[i]), kept_costs[i],
                      tuple(float(v) for v in kept_values[i])) for i in order]
        if stop == "exhausted" and not best:
            stop = "infeasible"                  # every point scored, none fits
        elif not best:
            stop = "no_feasible"
        result = SearchResult(self.name, problem.objectives, best, status_of(stop, bool(best)), evaluations,
                              0.0, stop=stop, total=total)
        if problem.multi:
            result.pareto = best
        if best and stop == "exhausted" and not problem.multi:
            result.bound = best[0].values[0]
        if not best:
            result.message = tally.message()
        return result


# Counting a free space's points walks its configurations: done when there are at most this many.
COUNT_CONFIGS = 20_000_000


def space_size(space) -> int | None:
    """Points in the space, when counting them is cheap (None otherwise)."""
    from spaces import FreeSpace

    if isinstance(space, FreeSpace) and space.config_count() > COUNT_CONFIGS:
        return None
    return space.count()


def text_progress(stream=sys.stderr) -> Callable[[int, int], None]:
    """A progress bar on a terminal (redrawn at most every 0.2 s)."""
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] < 0.2 and done < total:
            return
        last[0] = now
        frac = done / total if total else 1.0
        bar = "#" * int(30 * frac)
        stream.write(f"\r  [{bar:<30}] {done:,}/{total:,} designs")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return report


__all__ = ["ExhaustiveSearcher", "Found", "Scored", "found", "space_size", "text_progress"]
