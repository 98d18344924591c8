"""The CP-SAT searcher: its closed forms against the cost model, its answers against exhaustive search,
its bounds, its infeasibility reports and its parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from costmodel import Accelerator, Layer, LayerType, SpecError
from search import ExhaustiveSearcher, Problem, evaluate_points
from search import cpsat_formulas as F
from search.cpsat import CpSatSearcher
from spaces import FreeSpace
from spaces.mapping import ConfigBatch

FORMULA_LAYERS = (
    Layer.conv("conv3x3", K=32, C=16, R=3, S=3, Y=18, X=18),
    Layer.conv("stride2", K=16, C=8, R=3, S=3, Y=17, X=17, stride=2),
    Layer.conv("pointwise_s2", K=32, C=16, R=1, S=1, Y=16, X=16, stride=2),    # stride > filter
    Layer.conv("depthwise", K=1, C=32, R=3, S=3, Y=18, X=18, layer_type=LayerType.DSCONV),
    Layer.conv("grouped", K=4, C=4, R=3, S=3, Y=10, X=10, layer_type=LayerType.NGCONV, G=8),
    Layer.conv("batched", K=8, C=8, R=3, S=3, Y=10, X=10, N=4),
    Layer.gemm("gemm", M=24, N=32, K=16),
)


@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("layer", FORMULA_LAYERS, ids=lambda layer: layer.name)
def test_closed_forms_match_the_cost_model(layer, levels):
    """The CP-SAT constraints are exact: the L1 and L2 closed forms equal the cost model's requirement
    for every loop order of random configurations, and the latency surrogate never exceeds runtime."""
    space = FreeSpace(layer, 64, levels=levels)
    tab = F.tables(space)
    problem = Problem(space, Accelerator(num_pes=64, noc_hop_latency=1, noc_bw=32))
    rng = np.random.default_rng(levels)
    points, expected = [], []
    for _ in range(40):
        spatial = int(rng.integers(len(space.spatial_choices)))
        chain = {d: int(rng.integers(len(space.chains[d]))) for d in space.dim_names}
        cluster = int(rng.integers(len(space.cluster_chains))) if levels > 1 else 0
        batch = ConfigBatch(np.array([spatial]), {d: np.array([v]) for d, v in chain.items()},
                            np.array([cluster]))
        sym = F.Symbols(chain, cluster, space.spatial_choices[spatial])
        alg = F.Numbers()
        figures = (F.l1_requirement(alg, space, tab, sym), F.l2_requirement(alg, space, tab, sym),
                   F.latency_lower_bound(alg, space, tab, sym, 1))
        config_points = space.points(batch)                # every loop order of the configuration
        for i in rng.choice(len(config_points), size=min(4, len(config_points)), replace=False):
            points.append(config_points[i])
            expected.append(figures)
    cost = evaluate_points(problem, points).cost
    ok = np.asarray(cost.error) == ""
    assert ok.sum() >= 40
    for i in np.nonzero(ok)[0]:
        l1, l2, bound = expected[i]
        where = str(space.dataflow(points[i]))
        assert (l1, l2) == (cost.l1_size_req[i], cost.l2_size_req[i]), where
        assert bound <= cost.runtime_cycles[i], where


def small_problem(l1_size: int | None = 100, objectives=("latency",)) -> Problem:
    """74,964 designs; L1 and L2 limits that rule out most of them."""
    layer = Layer.conv("small", K=8, C=4, R=3, S=3, Y=6, X=6)
    space = FreeSpace(layer, 8, levels=2, spatial=["K", "C"],
                      tile_options={"K": [1, 2, 8], "C": [1, 4], "Y'": [1, 2, 4], "X'": [2, 4]})
    acc = Accelerator(num_pes=8, noc_bw=4, noc_hop_latency=1, l1_size=l1_size, l2_size=600)
    return Problem(space, acc, tuple(objectives))


@pytest.fixture(scope="module")
def exhaustive_latency():
    return ExhaustiveSearcher(top_k=1).search(small_problem())


def test_latency_optimum_is_proven_and_matches_exhaustive(exhaustive_latency):
    result = CpSatSearcher().search(small_problem())
    optimum = exhaustive_latency.best[0].values[0]
    assert exhaustive_latency.status == "optimal"
    assert result.status == "optimal" and result.best[0].values[0] == optimum
    assert result.bound == optimum and result.gap == 0.0 and result.stop == "optimal"
    # It proves optimality while scoring a small part of the space.
    assert result.evaluations < exhaustive_latency.evaluations / 5
    # Every design it returns is feasible and scored by the cost model.
    for f in result.best:
        assert f.cost.l1_size_req <= 100 and f.cost.l2_size_req <= 600
        assert f.values[0] == f.cost.runtime_cycles


def test_a_small_budget_stops_with_a_valid_bound(exhaustive_latency):
    result = CpSatSearcher(evaluations=60).search(small_problem())
    optimum = exhaustive_latency.best[0].values[0]
    assert result.stop == "budget" and result.status == "feasible" and result.evaluations <= 60
    assert result.best and result.best[0].values[0] >= optimum
    assert result.bound is not None and result.bound <= optimum
    assert 0.0 <= result.gap < 1.0


@pytest.mark.parametrize("objective", ["energy", "edp"])
def test_energy_and_edp_match_exhaustive(objective):
    exact = ExhaustiveSearcher(top_k=1).search(small_problem(objectives=(objective,)))
    result = CpSatSearcher(evaluations=100_000).search(small_problem(objectives=(objective,)))
    # A complete sweep of the latency surrogate visits every feasible configuration, which proves the
    # optimum; a sweep cut short by its budget keeps the objective's floor as its bound.
    assert result.status == "optimal" and result.stop == "optimal"
    assert result.best[0].values[0] == pytest.approx(exact.best[0].values[0], rel=1e-12)
    assert result.bound == result.best[0].values[0]
    cut = CpSatSearcher(evaluations=60).search(small_problem(objectives=(objective,)))
    assert cut.evaluations <= 60 and cut.bound is not None and cut.bound <= exact.best[0].values[0]
    # Stopped by its budget, or early because its best met the floor (then it is optimal).
    assert cut.stop == "budget" or (cut.stop == "optimal" and cut.best[0].values[0] == cut.bound)


def test_pareto_front_matches_exhaustive():
    objectives = ("latency", "energy")
    exact = ExhaustiveSearcher().search(small_problem(objectives=objectives))
    result = CpSatSearcher(evaluations=100_000).search(small_problem(objectives=objectives))
    assert result.pareto == result.best
    assert {f.values for f in result.pareto} == {f.values for f in exact.pareto}


def test_same_seed_same_answer():
    runs = [CpSatSearcher(seed=7).search(small_problem()) for _ in range(2)]
    assert [(f.point, f.values) for f in runs[0].best] == [(f.point, f.values) for f in runs[1].best]
    assert runs[0].evaluations == runs[1].evaluations


def test_infeasible_l1_names_the_constraint():
    result = CpSatSearcher().search(small_problem(l1_size=2))
    assert result.status == "infeasible" and result.stop == "infeasible" and result.best == []
    assert "l1_size 2" in result.message and "small" in result.message


def test_parameters_are_text_proto_and_bad_ones_are_refused():
    result = CpSatSearcher(params="num_workers:2, max_time_in_seconds:20").search(small_problem())
    assert result.status == "optimal"
    with pytest.raises(SpecError, match="cpsat_params"):
        CpSatSearcher(params="no_such_parameter: 3").search(small_problem())


def test_templates_and_edge_tiles_are_refused_with_advice():
    layer = Layer.conv("small", K=8, C=4, R=3, S=3, Y=6, X=6)
    space = FreeSpace(layer, 16, tiles="any")
    with pytest.raises(SpecError, match="exhaustive or Optuna"):
        CpSatSearcher().search(Problem(space, Accelerator(num_pes=16)))


def test_reaching_the_pe_peak_bound_ends_the_search():
    # 64 x 64 1x1 convolution on 16 PEs: a mapping that keeps every PE busy exists, so the search
    # stops as soon as it scores one and certifies it optimal.
    layer = Layer.conv("pw", K=64, C=64, R=1, S=1, Y=8, X=8)
    acc = Accelerator(num_pes=16)
    result = CpSatSearcher().search(Problem(FreeSpace(layer, 16), acc))
    peak = math.ceil(layer.true_macs / 16)
    assert result.status == "optimal" and result.best[0].values[0] == peak == result.bound
