"""Co-design trials are spent on designs within the budget, each tried once; an impossible budget is
refused before the study starts."""

from __future__ import annotations

import optuna
import pytest

from spaces.hardware import Budget, HardwareSpace
from studies import codesign as cd
from studies.sampling import HardwareSampler
from studies.storage import open_storage

from .cli_helpers import run
from .codesign_helpers import codesign_args, count_layer_searches, load, states, write_network

SPECS = {"num_pes": "4:64:*2", "simd_lanes": "1,2", "l1_size": "16:256:*2", "l2_size": "1024,4096,65536",
         "noc_bw": "4:32:*2", "offchip_bw": "8,32", "noc_hop_latency": "1"}


@pytest.fixture
def network(tmp_path):
    return write_network(tmp_path)


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "cmaes", "gp", "random"])
def test_every_sampler_proposes_only_new_designs_within_the_budget(sampler):
    space = HardwareSpace.from_specs(SPECS)
    budget = Budget(max_area_mm2=0.3, max_power_mw=60)
    region = space.within(budget)
    fitting = sum(1 for _ in region.designs())
    from search.optuna_search import make_sampler

    multi = sampler == "nsga2"
    study = optuna.create_study(directions=["minimize"] * (2 if multi else 1),
                                sampler=HardwareSampler(make_sampler(sampler, 0, multi), region, seed=0))

    def objective(trial):
        acc = space.suggest(trial)
        # Larger designs score better: a sampler left alone would climb out of the budget.
        return (-acc.area_um2(), acc.power_mw()) if multi else -acc.area_um2()

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    trials = 30 if sampler != "gp" else 15
    study.optimize(objective, n_trials=trials)
    designs = [space.key(t.params) for t in study.trials]
    assert all(budget.fits(space.decode(t.params)) for t in study.trials)
    assert len(set(designs)) == len(designs) == trials < fitting
    # Stored in the hardware's own units.
    assert set(study.trials[0].params) == {p.name for p in space.varying()}
    assert all(v in space.param(k).values for t in study.trials for k, v in t.params.items())


def test_a_study_spends_no_trial_over_budget_and_none_on_a_design_it_has(capsys, network, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = run(capsys, *codesign_args(network, url, trials=20))
    assert code == 0, err
    study = load(url)
    assert states(study) == {"COMPLETE": 20}
    # The same space and budget sampled blindly would put about a third of its designs over budget.
    assert all(t.user_attrs["area_mm2"] <= 0.4 for t in study.trials)
    assert not any(str(t.user_attrs.get("infeasible", "")).startswith("budget") for t in study.trials)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 20
    assert "0 repeated design(s)" in out
    assert all(isinstance(v, int) and not k.endswith("_index") for t in study.trials
               for k, v in t.params.items())


def test_once_every_design_within_the_budget_is_tried_the_rest_are_answered_from_storage(
        capsys, network, tmp_path, monkeypatch):
    argv = codesign_args(network, f"sqlite:///{tmp_path / 's.db'}", trials=7)
    for flag, value in (("--num-pes", "4:32:*2"), ("--l1-size", "128"), ("--l2-size", "16384"),
                        ("--noc-bw", "4"), ("--offchip-bw", "8")):
        argv[argv.index(flag) + 1] = value
    argv[argv.index("--max-area-mm2") + 1] = "0.3"         # 3 of the 4 PE counts fit
    space = HardwareSpace.from_specs({"num_pes": "4:32:*2", "simd_lanes": "1", "l1_size": "128",
                                      "l2_size": "16384", "noc_bw": "4", "offchip_bw": "8"})
    fitting = [d["num_pes"] for d in space.within(Budget(max_area_mm2=0.3)).designs()]
    assert fitting == [4, 8, 16]
    searched = count_layer_searches(monkeypatch)
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    study = load(f"sqlite:///{tmp_path / 's.db'}")
    first = [t.params["num_pes"] for t in study.trials[:3]]
    assert sorted(first) == fitting                           # each design once, before any repeat
    assert all("duplicate_of" in t.user_attrs for t in study.trials[3:])
    assert searched["n"] == 3 * 3                             # 3 designs x 3 layer shapes
    # Listed once each among the best designs, however often repeated.
    code, out, _ = run(capsys, "study", "show", "tiny", "--storage", f"sqlite:///{tmp_path / 's.db'}")
    listed = [line for line in out.splitlines() if line.startswith("  trial ")]
    assert code == 0 and len(listed) == 3 and len({line.split(":")[1] for line in listed}) == 3


def test_an_impossible_budget_is_refused_before_any_trial(capsys, network, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    argv = codesign_args(network, url, trials=5)
    argv[argv.index("--max-area-mm2") + 1] = "0.001"
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "--max-area-mm2 0.001: no design of the hardware space fits the budget" in err
    assert "smallest area it allows is 0.0" in err and "mW" in err
    assert optuna.get_all_study_summaries(open_storage(url)) == []       # no study was created


def test_studies_open_well_in_optuna_dashboard(capsys, network, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run(capsys, *codesign_args(network, url, trials=4))[0] == 0
    study = load(url)
    assert study.metric_names == ["latency (cycles)"]
    # Small user attributes: a summary, no network text, no mapping cache.
    assert set(study.user_attrs) == {"network", "objectives", "budget", "hardware space", "inner search"}
    assert len(repr(study.user_attrs)) < 1000
    assert len(cd.mapcache.for_study(study)) >= 3           # the cache is kept beside the study
    assert cd.stored_spec(study).network_name == "tiny"


def test_a_study_stored_in_the_old_format_is_refused_in_one_line(capsys, tmp_path, network):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    study = optuna.create_study(study_name="tiny", storage=open_storage(url))
    study.set_user_attr("dse_spec", "{}")
    study.set_user_attr("map:0123", {"runtime_cycles": 1})
    for argv in (("study", "show", "tiny"), ("query", "--study", "tiny"), ("worker", "--study", "tiny"),
                 ("study", "resume", "tiny")):
        code, _, err = run(capsys, *argv, "--storage", url)
        assert code == 2 and err.count("\n") == 1, (argv, err)
        assert "stored by an earlier version of dataflow-dse" in err and "new --study name" in err
    code, _, err = run(capsys, *codesign_args(network, url, trials=2))
    assert code == 2 and "stored by an earlier version" in err


def test_a_study_whose_every_design_within_the_budget_hangs_ends(capsys, network, tmp_path, monkeypatch):
    # Three PE counts, two within the budget: once the watchdog has stopped both, no design is left to
    # try (the one over budget is never proposed), so the worker stops instead of failing trials forever.
    argv = codesign_args(network, f"sqlite:///{tmp_path / 's.db'}", "--trial-timeout", "1", trials=5)
    for flag, value in (("--num-pes", "4:16:*2"), ("--l1-size", "128"), ("--l2-size", "16384"),
                        ("--noc-bw", "4"), ("--offchip-bw", "8"), ("--max-area-mm2", "0.2")):
        argv[argv.index(flag) + 1] = value

    def hang(spec, layer, acc):
        while True:                     # the watchdog interrupts it
            pass

    monkeypatch.setattr(cd, "search_layer", hang)
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "the watchdog stopped every design within the budget; 0 complete trials" in err
    study = load(f"sqlite:///{tmp_path / 's.db'}")
    assert sorted({t.params["num_pes"] for t in study.trials}) == [4, 8]
    assert all(t.state.name == "FAIL" for t in study.trials) and "no feasible design yet" in out
