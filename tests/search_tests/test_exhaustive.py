"""The exhaustive searcher is the ground truth: it must see every point once and keep exactly the best."""

from __future__ import annotations

import numpy as np

from costmodel import Accelerator, Layer
from search import ExhaustiveSearcher, Problem, evaluate_points, pareto_mask
from spaces import FreeSpace, Point
from spaces.template import TemplateSpace, load_template


def space() -> FreeSpace:
    layer = Layer.conv("c", K=8, C=4, R=3, S=3, Y=6, X=6)
    return FreeSpace(layer, 8, levels=2, spatial=["K", "C"], cluster_sizes=[2, 4],
                     tile_options={"K": [1, 8], "C": [1, 4], "Y'": [2, 4], "X'": [4]})


def all_points(sp) -> list:
    points = []
    for structure, holes in sp.chunks(100):
        names = list(holes)
        n = len(holes[names[0]])
        points += [(structure, tuple((h, int(holes[h][i])) for h in names)) for i in range(n)]
    return points


def test_every_point_once_and_the_top_k_are_the_k_best():
    sp = space()
    points = all_points(sp)
    assert len(points) == len(set(points)) == sp.count()
    problem = Problem(sp, Accelerator(num_pes=8, l1_size=120, noc_bw=4, noc_hop_latency=1), ("edp",))
    seen = []
    searcher = ExhaustiveSearcher(top_k=7, chunk=64, progress=lambda done, total: seen.append((done, total)))
    result = searcher.search(problem)
    assert result.status == "optimal" and result.evaluations == sp.count()
    assert seen[-1] == (sp.count(), sp.count()) and len(seen) > 1
    direct = evaluate_points(problem, [f.point for f in result.best])
    assert [f.values[0] for f in result.best] == list(direct.values[:, 0])
    every = evaluate_points(problem, [Point(s, v) for s, v in points])
    finite = np.sort(every.values[np.isfinite(every.values[:, 0]), 0])
    assert [f.values[0] for f in result.best] == list(finite[:7])
    assert all(f.cost.l1_size_req <= 120 for f in result.best)
    assert result.bound == finite[0] and result.gap == 0.0


def test_pareto_set_is_the_non_dominated_subset_of_everything():
    sp = space()
    problem = Problem(sp, Accelerator(num_pes=8, noc_bw=4, noc_hop_latency=1), ("latency", "energy"))
    every = evaluate_points(problem, [Point(s, v) for s, v in all_points(sp)])
    front = {tuple(v) for v in every.values[pareto_mask(every.values)]}
    result = ExhaustiveSearcher(chunk=50).search(problem)
    assert result.pareto == result.best and {f.values for f in result.pareto} == front


def test_time_limit_gives_a_partial_answer_without_a_bound():
    result = ExhaustiveSearcher(chunk=8, time_limit=0.0).search(Problem(space(), Accelerator(num_pes=8)))
    assert result.status == "feasible" and result.bound is None and result.evaluations < space().count()


def test_templates_are_enumerated_too():
    layer = Layer.conv("c", K=8, C=4, R=3, S=3, Y=6, X=6)
    sp = TemplateSpace(layer, load_template("kcp_ws_holes"), 8)
    result = ExhaustiveSearcher().search(Problem(sp, Accelerator(num_pes=8)))
    assert result.status == "optimal" and result.evaluations == sp.count() > 1
    assert result.best[0].dataflow.holes == ()
