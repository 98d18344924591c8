"""The Optuna searcher on a space small enough to enumerate (1,722 points, ~0.5 s exhaustively)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import optuna
import pytest

from costmodel import Accelerator, Layer, SpecError, evaluate
from search import ExhaustiveSearcher, Problem
from search.optuna_search import ERROR_CONSTRAINT, SAMPLERS, OptunaSearcher, make_sampler
from spaces.mapping import FreeSpace, Point

NEEDS = {"cmaes": ("cmaes",), "gp": ("torch", "scipy")}


@pytest.fixture(scope="module")
def space() -> FreeSpace:
    layer = Layer.conv("c", K=16, C=16, R=3, S=3, Y=18, X=18)
    return FreeSpace(layer, 16, levels=2, spatial=["K", "C"], cluster_sizes=[2, 4],
                     tile_options={"K": [1, 4, 16], "C": [4, 16], "Y'": [16], "X'": [4, 16]})


def problem(space: FreeSpace, objectives=("edp",), l1_size: int | None = 1500) -> Problem:
    # l1_size 1500 rules out about two thirds of the space (requirements run from 1,152 to 25,344).
    return Problem(space, Accelerator(num_pes=16, l1_size=l1_size), objectives=tuple(objectives))


def new_study(sampler: str = "tpe", seed: int = 0, k: int = 1) -> optuna.Study:
    return optuna.create_study(sampler=make_sampler(sampler, seed, k > 1), directions=["minimize"] * k)


def trial_log(study: optuna.Study) -> list:
    return [(t.params, t.values, t.constraints) for t in study.trials]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_each_sampler_finds_designs_the_cost_model_confirms(space, sampler):
    # GP fits a model per trial (slow): 10 random trials (its startup), then 4 of its own.
    trials, batch = (14, 10) if sampler == "gp" else (64, 32)
    pr = problem(space)
    result = OptunaSearcher(sampler=sampler, trials=trials, batch=batch, top_k=5).search(pr)
    assert result.searcher == "optuna" and (result.stop, result.status) in (("budget", "feasible"),
                                                                         ("optimal", "optimal"))
    # Its bound is the objective's floor (search.bounds), never above the best design.
    assert result.bound is not None and result.bound <= result.best[0].values[0]
    assert result.evaluations == trials and 1 <= len(result.best) <= 5
    values = [f.values[0] for f in result.best]
    assert values == sorted(values) and all(map(math.isfinite, values))
    assert len({f.point for f in result.best}) == len(result.best)
    best = result.best[0]
    direct = evaluate(space.layer, best.dataflow, pr.accelerator)
    assert best.cost.figures() == pytest.approx(direct.figures())
    assert best.values[0] == pytest.approx(direct.runtime_cycles * direct.energy_nj)
    assert direct.l1_size_req <= 1500


def test_same_seed_same_trials_and_result_other_seed_differs(space):
    pr = problem(space)
    runs = []
    for seed in (0, 0, 1):
        study = new_study("tpe", seed)
        result = OptunaSearcher(trials=96, batch=32, study=study).search(pr)
        runs.append((trial_log(study), [(f.point, f.values) for f in result.best]))
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0]
    # The study the searcher creates itself is seeded the same way.
    a, b = (OptunaSearcher(sampler="nsga2", trials=96, batch=32, seed=3).search(pr) for _ in range(2))
    assert [(f.point, f.values) for f in a.best] == [(f.point, f.values) for f in b.best]


def test_tpe_gets_close_to_the_exhaustive_optimum(space):
    pr = problem(space)
    optimum = ExhaustiveSearcher(top_k=1).search(pr).best[0].values[0]
    found = OptunaSearcher(sampler="tpe", trials=300, seed=0).search(pr).best[0].values[0]
    # Seeds 0-7 all land within 1.5 % of the optimum; 5 % leaves room for library changes.
    assert optimum <= found <= 1.05 * optimum


def test_constraints_are_recorded_and_infeasible_designs_never_returned(space):
    pr = problem(space, l1_size=1500)
    study = new_study("tpe")
    result = OptunaSearcher(trials=128, batch=64, study=study).search(pr)
    assert result.best and all(f.cost.l1_size_req <= 1500 for f in result.best)
    feasible = []
    for t in study.trials:
        assert set(t.constraints) == {"l1_size", "l2_size", ERROR_CONSTRAINT}
        ok = all(v <= 0 for v in t.constraints.values())
        assert ok == (t.user_attrs["l1_size_req"] <= 1500) == math.isfinite(t.values[0])
        feasible.append(ok)
    assert 0 < sum(feasible) < len(feasible)        # the sample holds both kinds

    tiny = OptunaSearcher(trials=64, batch=32).search(problem(space, l1_size=100))
    # Sampling proves nothing: the budget ended with no feasible design (not "infeasible").
    assert (tiny.status, tiny.stop) == ("unknown", "no_feasible") and tiny.best == []
    assert tiny.evaluations == 64
    assert "binding constraint: l1_size (l1_size 100 exceeded by 64 designs" in tiny.message


def test_nsga2_returns_a_non_dominated_set(space):
    pr = problem(space, objectives=("latency", "energy"))
    result = OptunaSearcher(sampler="nsga2", trials=192, batch=64).search(pr)
    assert result.status == "feasible" and result.pareto == result.best and result.best
    values = np.array([f.values for f in result.best])
    for i, v in enumerate(values):
        others = np.delete(values, i, axis=0)
        assert not np.any(np.all(others <= v, axis=1)), f"{v} is dominated"
    assert all(f.cost.l1_size_req <= 1500 for f in result.best)
    # Every point of the true front is at least as good as what the sampler found.
    front = np.array([f.values for f in ExhaustiveSearcher().search(pr).pareto])
    assert all(np.any(np.all(front <= v, axis=1)) for v in values)


def test_continuing_a_study_adds_trials_and_keeps_earlier_designs(space):
    pr = problem(space)
    study = new_study("tpe")
    first = OptunaSearcher(trials=32, batch=16, study=study).search(pr)
    second = OptunaSearcher(trials=32, batch=16, study=study).search(pr)
    assert len(study.trials) == 64 and first.evaluations == second.evaluations == 32
    assert second.best[0].values <= first.best[0].values
    # The stored attributes re-read a trial without the searcher.
    t = study.trials[-1]
    point = space.decode(t.params)
    assert point == Point(t.user_attrs["structure"], tuple(t.user_attrs["holes"].items()))
    assert t.user_attrs["dataflow"] == str(space.dataflow(point))
    with pytest.raises(SpecError, match="direction"):
        OptunaSearcher(trials=8, study=study).search(problem(space, ("latency", "energy")))


def test_time_limit_stops_after_a_batch_and_bad_options_are_refused(space):
    result = OptunaSearcher(trials=1000, batch=16, time_limit=0.0).search(problem(space))
    assert result.evaluations == 16
    with pytest.raises(SpecError, match="unknown sampler"):
        OptunaSearcher(sampler="anneal")
    for name, modules in NEEDS.items():
        if any(importlib.util.find_spec(m) is None for m in modules):
            with pytest.raises(SpecError, match="needs the Python package"):
                make_sampler(name, 0, False)
    if importlib.util.find_spec("cmaes") is not None:
        with pytest.raises(SpecError, match="single objective"):
            make_sampler("cmaes", 0, True)
