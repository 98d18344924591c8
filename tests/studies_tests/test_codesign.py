"""Co-design studies on SQLite and journal files: exact trial counts, resume after an interruption
with the mapping cache reused, budgets as constraints, queries and exports from storage."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from costmodel import Accelerator, evaluate, read_hw, read_network
from spaces.hardware import Budget, HardwareSpace, format_value, parse_spec
from studies import codesign as cd
from studies.results import BASE_COLUMNS
from studies.storage import open_storage, redact

from .cli_helpers import run
from .codesign_helpers import codesign_args, count_layer_searches, hardware_of, load, states, write_network


@pytest.fixture
def network(tmp_path):
    return write_network(tmp_path)


@pytest.fixture
def sqlite(tmp_path):
    return f"sqlite:///{tmp_path / 'studies.db'}"


def test_hardware_specs_parse_and_refuse_nonsense():
    assert parse_spec("num_pes", "16:128:*2").values == (16, 32, 64, 128)
    assert parse_spec("l1_size", "128:512:128").values == (128, 256, 384, 512)
    assert parse_spec("l1_size", "128:512:128").key == "l1_size"
    assert parse_spec("noc_bw", "64,16,64").values == (16, 64)
    assert parse_spec("noc_hop_latency", "0").values == (0,)
    for bad, why in (("16:8:1", "below start"), ("a:b:c", "not an integer"), ("1:2", "start:stop"),
                     ("4:64:*1", "factor >= 2"), ("0,4", "out of range"), ("1:2000000:1", "above the limit"),
                     ("-4,8", "out of range"), ("1:10:0", "step of a range must be positive")):
        with pytest.raises(Exception, match=why):
            parse_spec("num_pes", bad)
    with pytest.raises(Exception, match="more than"):
        parse_spec("l2_size", "1:10000000:1")
    with pytest.raises(Exception, match="step of a range must be positive"):
        parse_spec("noc_hop_latency", "1:10:0")           # was a ZeroDivisionError
    with pytest.raises(Exception, match="head latency"):
        HardwareSpace.from_specs({"noc_hop_latency": "1:1024:*2"}, noc_hops=2)
    space = HardwareSpace.from_specs({"num_pes": "16:64:*2"})
    assert space.param("num_pes").values == (16, 32, 64) and space.size() > 1000
    with pytest.raises(Exception, match="unknown hardware parameter"):
        HardwareSpace.from_specs({"pes": "4"})


def test_budget_violations_are_relative_and_named():
    acc = Accelerator(num_pes=64, l1_size=256, l2_size=65536, noc_bw=32)
    area = acc.area_um2() / 1e6
    budget = Budget(max_area_mm2=area / 2, max_pes=128)
    v = budget.violations(acc)
    assert v["max_area_mm2"] == pytest.approx(1.0) and v["max_pes"] == pytest.approx(-0.5)
    assert v["max_power_mw"] == 0.0
    assert budget.violated(acc) == [f"max_area_mm2 {format_value(area / 2)} (design: {format_value(area)})"]
    # Figures are written out, never in exponent notation.
    assert Budget(max_buffer=1_000_000).violated(Accelerator(num_pes=1024, l1_size=4096, l2_size=1,
                                                             noc_bw=1)) == [
        "max_buffer 1,000,000 (design: 4,194,305)"]
    assert [format_value(v) for v in (1022480.0, 8758.3, 12.3456, 0.001, 0.046153)] == [
        "1,022,480", "8,758", "12.35", "0.001", "0.04615"]
    assert Budget(max_area_mm2=1).tighter(Budget(max_area_mm2=2, max_pes=8)) == Budget(max_area_mm2=1,
                                                                                          max_pes=8)


def test_study_completes_exactly_the_requested_trials_and_the_winner_reproduces(capsys, network, sqlite):
    code, out, err = run(capsys, *codesign_args(network, sqlite, trials=8))
    assert code == 0, err
    study = load(sqlite)
    assert states(study) == {"COMPLETE": 8}
    assert "best design: trial" in out
    # Budget-breaking designs are recorded as infeasible with the violated limit, never as the best.
    frame = pd.DataFrame([{**t.user_attrs, **{f"c_{k}": v for k, v in t.constraints.items()}}
                          for t in study.trials])
    over = frame[frame.area_mm2 > 0.4]
    assert (over.c_max_area_mm2 > 0).all() and over.infeasible.str.startswith("budget").all()
    # The written files reproduce the winner through the cost model.
    best = min((t for t in study.trials if all(v <= 0 for v in t.constraints.values())
                and math.isfinite(t.values[0])), key=lambda t: t.values[0])
    acc = read_hw(network.parent / "best" / "hardware.m")
    mapped = read_network(network.parent / "best" / "mapping.m")
    total = sum(m.layer.count * evaluate(m.layer, m.dataflow, acc).runtime_cycles for m in mapped.layers)
    assert total == best.values[0] == best.user_attrs["latency_cycles"]
    assert acc.area_um2() / 1e6 <= 0.4


def test_resume_after_an_interrupt_reruns_the_trial_and_reuses_its_cached_layers(
        capsys, network, sqlite, monkeypatch):
    calls = {"n": 0}
    real = cd.search_layer

    def interrupt_a_later_trial_after_its_first_layer(spec, layer, acc):
        # Shapes are searched in network order: conv_a (with conv_b), pw, fc. Stopping at pw leaves
        # conv_a's mapping for this accelerator in the cache.
        calls["n"] += 1
        if calls["n"] >= 6 and layer.name == "pw":
            raise KeyboardInterrupt
        return real(spec, layer, acc)

    monkeypatch.setattr(cd, "search_layer", interrupt_a_later_trial_after_its_first_layer)
    code, _, err = run(capsys, *codesign_args(network, sqlite, trials=8))
    assert code == 130 and "interrupted" in err
    study = load(sqlite)
    before = states(study)
    assert before.get("FAIL") == 1 and before.get("WAITING") == 1 and before["COMPLETE"] < 8
    failed = next(t for t in study.trials if t.state.name == "FAIL")

    monkeypatch.setattr(cd, "search_layer", real)
    code, _, err = run(capsys, *codesign_args(network, sqlite, trials=8))
    assert code == 0, err
    study = load(sqlite)
    assert states(study) == {"COMPLETE": 8, "FAIL": 1}
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == failed.number)
    assert retry.state.name == "COMPLETE" and hardware_of(retry) == hardware_of(failed)
    # The layers the interrupted trial had mapped came from the cache: counted, not recomputed.
    assert retry.user_attrs["cache_hits"] >= 1
    assert retry.user_attrs["cache_hits"] + retry.user_attrs["cache_misses"] == 3   # distinct shapes
    # No hardware was completed twice by the retry mechanism.
    completed = [t.number for t in study.trials if t.state.name == "COMPLETE"]
    assert len(completed) == len(set(completed)) == 8


def test_running_again_with_more_trials_continues_where_it_stopped(capsys, network, sqlite, monkeypatch):
    assert run(capsys, *codesign_args(network, sqlite, trials=4))[0] == 0
    first = [(t.number, t.params) for t in load(sqlite).trials]
    searched = count_layer_searches(monkeypatch)
    assert run(capsys, *codesign_args(network, sqlite, trials=7))[0] == 0
    study = load(sqlite)
    assert states(study) == {"COMPLETE": 7}
    assert [(t.number, t.params) for t in study.trials[:4]] == first
    hits = sum(t.user_attrs.get("cache_hits", 0) for t in study.trials[4:])
    misses = sum(t.user_attrs.get("cache_misses", 0) for t in study.trials[4:])
    assert misses == searched["n"]                 # every miss searched once; hits searched nothing
    assert hits + misses == 3 * sum(1 for t in study.trials[4:] if cd.LAYERS_ATTR in t.system_attrs)
    # Same command, already complete: nothing runs.
    monkeypatch.setattr(cd, "search_layer", None)
    assert run(capsys, *codesign_args(network, sqlite, trials=7))[0] == 0


def test_a_changed_command_is_refused_rather_than_mixed_into_the_study(capsys, network, sqlite):
    assert run(capsys, *codesign_args(network, sqlite, trials=2))[0] == 0
    code, _, err = run(capsys, *codesign_args(network, sqlite, "--max-power-mw", "50", trials=3))
    assert code == 2 and "exists with a different budget" in err


def test_query_answers_from_storage_for_a_tighter_budget(capsys, network, sqlite, monkeypatch, tmp_path):
    assert run(capsys, *codesign_args(network, sqlite, trials=12))[0] == 0
    monkeypatch.setattr(cd, "search_layer", None)          # a query must not search anything
    export = tmp_path / "trials.csv"
    assert run(capsys, "study", "export", "tiny", "--storage", sqlite, "--output", export)[0] == 0
    frame = pd.read_csv(export)
    ok = frame[frame.feasible & (frame.area_mm2 <= 0.25)]
    assert len(ok)                                # the test needs one: the space has small designs
    want = ok.sort_values(["latency_cycles", "trial"]).iloc[0]
    code, out, _ = run(capsys, "query", "--study", "tiny", "--storage", sqlite, "--max-area-mm2", "0.25",
                       "--write", tmp_path / "answer")
    assert code == 0 and f"trial {int(want.trial)}:" in out.splitlines()[1]
    assert read_hw(tmp_path / "answer" / "hardware.m").num_pes == want.num_pes
    code, out, _ = run(capsys, "query", "--study", "tiny", "--storage", sqlite, "--max-area-mm2", "0.001")
    assert code == 1 and "no stored design" in out
    code, out, _ = run(capsys, "query", "--study", "tiny", "--storage", sqlite, "--objective",
                       "latency,energy", "--max-power-mw", "1e9")
    assert code == 0 and "Pareto front" in out


def test_export_has_the_documented_columns_in_csv_and_parquet(capsys, network, sqlite, tmp_path):
    assert run(capsys, *codesign_args(network, sqlite, trials=5))[0] == 0
    frames = []
    for suffix in ("csv", "parquet"):
        path = tmp_path / f"t.{suffix}"
        assert run(capsys, "study", "export", "tiny", "--storage", sqlite, "--output", path)[0] == 0
        frames.append(pd.read_csv(path) if suffix == "csv" else pd.read_parquet(path))
    for frame in frames:
        assert len(frame) == 5
        assert set(BASE_COLUMNS) <= set(frame.columns)
        assert {"c_max_area_mm2", "c_mapping", "cache_hits", "cache_misses", "seconds"} <= set(frame.columns)
        assert {f"runtime_{n}" for n in ("conv_a", "conv_b", "pw", "fc")} <= set(frame.columns)
        done = frame[frame.feasible.astype(bool)]
        layers = done[[f"runtime_{n}" for n in ("conv_a", "conv_b", "pw", "fc")]].sum(axis=1)
        assert np.array_equal(layers.to_numpy(), done.latency_cycles.to_numpy())
    code, _, err = run(capsys, "study", "export", "tiny", "--storage", sqlite, "--output", tmp_path / "t.xls")
    assert code == 2 and ".csv or .parquet" in err


def test_list_show_plot(capsys, network, sqlite, tmp_path):
    assert run(capsys, *codesign_args(network, sqlite, trials=6))[0] == 0
    code, out, _ = run(capsys, "study", "list", "--storage", sqlite)
    assert code == 0 and "tiny" in out and " 6 " in out
    code, out, _ = run(capsys, "study", "show", "tiny", "--storage", sqlite)
    assert code == 0 and "best" in out and "conv_a" in out and "hardware space" in out
    folder = tmp_path / "new" / "plots"                  # created
    code, out, _ = run(capsys, "study", "plot", "tiny", "--storage", sqlite, "--output-dir", folder)
    assert code == 0
    for kind in ("pareto", "history", "budget", "layers"):
        png = folder / f"tiny-{kind}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run(capsys, "study", "show", "nope", "--storage", sqlite)
    assert code == 2 and "no study named 'nope'" in err
    code, _, err = run(capsys, "study", "list", "--storage", f"sqlite:///{tmp_path / 'missing.db'}")
    assert code == 2 and "does not exist" in err


def test_journal_storage_with_several_workers_finishes_exactly(capsys, network, tmp_path):
    url = f"journal:///{tmp_path / 'journal.log'}"
    code, _, err = run(capsys, *codesign_args(network, url, "--workers", "2", trials=10))
    assert code == 0, err
    study = load(url)
    assert states(study).get("COMPLETE") == 10 and not states(study).get("FAIL")
    # The mapping cache lives in its own journal beside the study's, not in the study's attributes.
    assert '"dataflow":' not in (tmp_path / "journal.log").read_text()      # trials name keys only
    assert '"dataflow":' in (tmp_path / "journal.log.mappings").read_text()
    assert len(cd.mapcache.for_study(study)) >= 3


def test_sqlite_with_several_workers_warns(capsys, network, sqlite):
    code, _, err = run(capsys, *codesign_args(network, sqlite, "--workers", "2", trials=4))
    assert code == 0 and "workers on SQLite" in err
    assert states(load(sqlite)).get("COMPLETE") == 4


def test_passwords_never_appear_in_messages(capsys, network):
    assert redact("postgresql://alice:s3cr3t@db.example:5432/dse") == "postgresql://alice:***@db.example:5432/dse"
    url = "postgresql://alice:s3cr3t@127.0.0.1:1/dse"
    code, out, err = run(capsys, *codesign_args(network, url, trials=1))
    assert code == 2 and "s3cr3t" not in out + err and "alice:***@" in err
    with pytest.raises(Exception) as info:
        open_storage(url)
    assert "s3cr3t" not in str(info.value)


def test_retry_running_requeues_a_dead_workers_trial_on_a_journal(capsys, network, tmp_path):
    url = f"journal:///{tmp_path / 'journal.log'}"
    assert run(capsys, *codesign_args(network, url, trials=2))[0] == 0
    study = load(url)
    spec = cd.stored_spec(study)
    study.sampler = cd.hardware_sampler(spec, seed=1)
    orphan = study.ask()                       # a trial whose worker "died": it stays RUNNING
    spec.hardware_space().suggest(orphan)
    code, _, err = run(capsys, "study", "resume", "tiny", "--storage", url, "--trials", "4",
                       "--retry-running", "--output-dir", tmp_path / "best")
    assert code == 0, err
    assert "re-queued 1 trial(s)" in err
    study = load(url)
    assert states(study) == {"COMPLETE": 4, "FAIL": 1}
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == orphan.number)
    assert retry.state.name == "COMPLETE" and retry.params == study.trials[orphan.number].params
    assert cd.stored_spec(study).trials == 4


def _png_height(path) -> int:
    return int.from_bytes(path.read_bytes()[20:24], "big")       # the IHDR chunk


def test_plots_of_a_two_objective_study_show_both_and_the_chosen_design(capsys, network, sqlite, tmp_path):
    from studies import results
    from studies.plots import plot_study

    assert run(capsys, *codesign_args(network, sqlite, "--objective", "latency,energy", trials=8))[0] == 0
    study = load(sqlite)
    spec = cd.stored_spec(study)
    one = plot_study(study, dataclasses.replace(spec, objectives=("latency",)), tmp_path / "one")
    two = plot_study(study, spec, tmp_path / "two")
    # latency, energy and the front's hypervolume: three panels against one.
    assert _png_height(two[1]) > 2.5 * _png_height(one[1])
    frame = results.trials_frame(study, spec)
    chosen, why = results.chosen_row(frame, spec.objectives)
    assert why.startswith("lowest latency of the") and chosen.trial in results.pareto_rows(
        frame, spec.objectives).trial.tolist()
    other = int(frame[frame.feasible].trial.iloc[-1])
    code, out, _ = run(capsys, "study", "plot", "tiny", "--storage", sqlite, "--output-dir", tmp_path / "t",
                       "--trial", other)
    assert code == 0 and out.count("wrote") == 4
    code, _, err = run(capsys, "study", "plot", "tiny", "--storage", sqlite, "--output-dir", tmp_path,
                       "--trial", 999)
    assert code == 2 and "trial 999 of study tiny is not a feasible design" in err
