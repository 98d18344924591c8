"""Co-design for a weighted mix of networks with per-network latency targets: what a trial records,
targets as constraints, the compute-bound refusal, bad input, queries under other weights and targets
against a brute-force pick from the export, the per-network export and plot."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from studies import codesign as cd
from studies import mix
from studies.storage import open_storage

from .cli_helpers import run, write_file
from .codesign_helpers import BUDGET, HARDWARE, NETWORK

# Shares the shape of tiny's fc (8 x 24 x 32), which a trial must search once for both networks.
LM = """\
Network lm {
Layer qkv { Type: GEMM Dimensions { M: 1, N: 96, K: 32 } }
Layer fc { Type: GEMM Dimensions { M: 8, N: 24, K: 32 } }
}
"""
TRIALS = 16


def _hardware() -> dict:
    flags = dict(zip(HARDWARE[::2], HARDWARE[1::2], strict=True))
    return {flag[2:].replace("-", "_"): value for flag, value in flags.items()}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A 16-trial mix study (tiny x2 + lm; tiny within 0.03 ms, lm at 500,000 inferences a second), run
    once for the module's tests."""
    folder = tmp_path_factory.mktemp("mix")
    tiny, lm = write_file(folder, "tiny.m", NETWORK), write_file(folder, "lm.m", LM)
    url = f"sqlite:///{folder / 'mix.db'}"
    spec = cd.CodesignSpec.create([f"{tiny}:weight=2", str(lm)], trials=TRIALS, hardware=_hardware(),
                                  budget={"max_area_mm2": float(BUDGET[1])},
                                  targets=[("max_latency_ms", "tiny", 0.03), ("min_fps", "lm", 500_000.0)])
    study = cd.create_or_load(spec, "mix", url)
    cd.run_worker("mix", url)
    return {"url": url, "spec": spec, "study": study, "folder": folder, "tiny": tiny, "lm": lm}


def test_a_trial_maps_every_shape_once_and_records_each_network_and_the_weighted_totals(study):
    spec, trials = study["spec"], study["study"].get_trials(deepcopy=False)
    assert spec.network_name == "tiny+lm" and spec.weights() == {"tiny": 2.0, "lm": 1.0}
    assert len(spec.shapes()) == 4 and len(spec.layers()) == 6         # fc shared by both networks
    assert sum(t.state.name == "COMPLETE" for t in trials) == TRIALS
    mapped = [t for t in trials if t.user_attrs.get("networks")]
    assert len(mapped) >= TRIALS // 2
    limits = STUDY_LIMITS
    seen_met = seen_missed = 0
    for t in mapped:
        a, nets = t.user_attrs, t.user_attrs["networks"]
        layers = t.system_attrs[cd.LAYERS_ATTR]
        for net in ("tiny", "lm"):
            cycles = sum(v["count"] * v["runtime"] for k, v in layers.items() if k.startswith(net + "/"))
            assert nets[net]["latency_cycles"] == cycles
            assert nets[net]["latency_ms"] == pytest.approx(cycles / 1e6)
            assert nets[net]["edp"] == pytest.approx(cycles * nets[net]["energy_nj"])
        assert a["latency_cycles"] == pytest.approx(2 * nets["tiny"]["latency_cycles"]
                                                    + nets["lm"]["latency_cycles"])
        assert a["energy_nj"] == pytest.approx(2 * nets["tiny"]["energy_nj"] + nets["lm"]["energy_nj"])
        assert a["edp"] == pytest.approx(2 * nets["tiny"]["edp"] + nets["lm"]["edp"])
        assert t.values[0] == pytest.approx(a["latency_cycles"])
        # Each target is a constraint: (latency - target) / target, and a trial that misses one says so.
        for net, limit in limits.items():
            assert t.constraints[f"latency_{net}"] == pytest.approx(nets[net]["latency_ms"] / limit - 1)
        met = all(nets[n]["latency_ms"] <= limits[n] for n in limits)
        assert met == all(v <= 0 for v in t.constraints.values())
        assert met == (not str(a.get("infeasible", "")).startswith("target"))
        seen_met += met
        seen_missed += not met
        # The shared fc shape was searched once: both networks' fc layers carry the same cache entry.
        assert layers["tiny/fc"]["key"] == layers["lm/fc"]["key"]
        if "duplicate_of" not in a:
            assert a["cache_hits"] + a["cache_misses"] == 4
    assert seen_met and seen_missed, "the targets should rule some designs in and some out"


def test_the_best_design_meets_every_target_and_is_written_per_network(capsys, study):
    code, out, err = run(capsys, "study", "show", "mix", "--storage", study["url"], "--write",
                         study["folder"] / "best")
    assert code == 0, err
    frame = pd.DataFrame([{"trial": t.number, "value": t.values[0], **t.user_attrs["networks"]["tiny"]}
                          for t in study["study"].get_trials(deepcopy=False)
                          if t.state.name == "COMPLETE" and all(v <= 0 for v in t.constraints.values())])
    best = int(frame.sort_values(["value", "trial"]).iloc[0].trial)
    assert re.search(r"best \d+ design\(s\):\n  trial (\d+):", out).group(1) == str(best)
    best_nets = study["study"].trials[best].user_attrs["networks"]
    assert best_nets["tiny"]["latency_ms"] <= 0.03 and best_nets["lm"]["latency_ms"] <= 0.002
    assert out.splitlines()[0].startswith("study mix: networks tiny x2 + lm; targets ")
    assert f"networks of trial {best} (" in out and "weighted latency" in out
    table = out.split(f"networks of trial {best} (", 1)[1].split("layers of trial", 1)[0]
    lm_row = next(line for line in table.splitlines() if line.startswith("lm "))
    assert f"{best_nets['lm']['latency_cycles']:,}" in lm_row and "<= 0.002 ms" in lm_row
    written = sorted(p.name for p in (study["folder"] / "best").iterdir())
    assert written == ["hardware.m", "mapping-lm.m", "mapping-tiny.m"]
    from costmodel import read_network

    lm = read_network(study["folder"] / "best" / "mapping-lm.m")
    assert [m.name for m in lm.layers] == ["qkv", "fc"] and all(m.dataflow for m in lm.layers)


def _export(capsys, study, name="trials.csv") -> tuple[pd.DataFrame, pd.DataFrame]:
    path = study["folder"] / name
    code, out, err = run(capsys, "study", "export", "mix", "--storage", study["url"], "--output", path)
    assert code == 0, err
    assert "(trial, network) rows" in out
    return pd.read_csv(path), pd.read_csv(path.with_name(path.stem + "-networks.csv"))


def test_export_has_one_row_per_trial_and_one_per_trial_and_network(capsys, study):
    trials, networks = _export(capsys, study)
    assert len(trials) == len(study["study"].trials) and len(networks) == 2 * len(trials)
    assert list(networks.network[:2]) == ["tiny", "lm"]                  # the mix's order in each trial
    for column in ("latency_cycles_tiny", "latency_ms_lm", "energy_nj_lm", "edp_tiny", "c_latency_tiny",
                   "mapped", "feasible"):
        assert column in trials
    row = networks[(networks.network == "lm") & networks.latency_ms.notna()].iloc[0]
    assert row.weight == 1.0 and row.target_ms == pytest.approx(0.002)
    assert row.meets_target == (row.latency_ms <= 0.002)
    same = trials.set_index("trial").loc[int(row.trial)]
    assert row.latency_cycles == same.latency_cycles_lm and row.area_mm2 == same.area_mm2


def _brute_force(trials: pd.DataFrame, *, weights: dict, limits: dict, max_area: float | None = None,
                 objective: str = "latency"):
    """The query's answer picked by hand from the export: the first trial of each design that mapped
    every layer within the budget and meets ``limits``, lowest weighted latency or energy (ties: the
    earlier trial)."""
    ok = trials[trials.mapped.astype(bool)].sort_values("trial").drop_duplicates(
        subset=["num_pes", "simd_lanes", "l1_size", "l2_size", "noc_bw", "offchip_bw", "noc_hop_latency"])
    if max_area is not None:
        ok = ok[ok.area_mm2 <= max_area]
    for net, limit in limits.items():
        ok = ok[ok[f"latency_ms_{net}"] <= limit * (1 + 1e-12)]
    if ok.empty:
        return None
    column = {"latency": "latency_cycles", "energy": "energy_nj"}[objective]
    value = sum(w * ok[f"{column}_{net}"] for net, w in weights.items())
    return int(ok.assign(value=value).sort_values(["value", "trial"]).iloc[0].trial)


def _answer(out: str) -> int:
    return int(re.search(r"^  trial (\d+):", out, re.M).group(1))


STUDY_LIMITS = {"tiny": 0.03, "lm": 0.002}
QUESTIONS = [   # (dse query flags, weights, latency limits (ms), area budget, objective)
    ([], {"tiny": 2, "lm": 1}, STUDY_LIMITS, None, "latency"),
    (["--max-area-mm2", "0.2"], {"tiny": 2, "lm": 1}, STUDY_LIMITS, 0.2, "latency"),
    (["--weight", "lm=40", "--max-area-mm2", "0.2"], {"tiny": 2, "lm": 40}, STUDY_LIMITS, 0.2, "latency"),
    # Looser targets: designs the study ruled out are answers now.
    (["--max-area-mm2", "0.1", "--max-latency-ms", "tiny=0.05", "--max-latency-ms", "lm=0.003"],
     {"tiny": 2, "lm": 1}, {"tiny": 0.05, "lm": 0.003}, 0.1, "latency"),
    (["--max-area-mm2", "0.1", "--max-latency-ms", "tiny=0.05", "--max-latency-ms", "lm=0.003",
      "--objective", "energy"], {"tiny": 2, "lm": 1}, {"tiny": 0.05, "lm": 0.003}, 0.1, "energy"),
    (["--weight", "tiny=0.01", "--weight", "lm=50", "--objective", "energy", "--min-fps", "tiny=25000"],
     {"tiny": 0.01, "lm": 50}, {"tiny": 0.04, "lm": 0.002}, None, "energy"),
    (["--min-fps", "tiny=40000", "--weight", "lm=3"], {"tiny": 2, "lm": 3}, {"tiny": 0.025, "lm": 0.002},
     None, "latency"),
    (["--max-latency-ms", "tiny=0.001"], {"tiny": 2, "lm": 1}, {"tiny": 0.001, "lm": 0.002}, None,
     "latency"),                                                          # no stored design: exit 1
]


def test_query_with_new_weights_and_targets_equals_a_brute_force_pick_from_the_export(capsys, study):
    trials, _ = _export(capsys, study)
    answers = []
    for ask, weights, limits, area, objective in QUESTIONS:
        expected = _brute_force(trials, weights=weights, limits=limits, max_area=area, objective=objective)
        code, out, err = run(capsys, "query", "--study", "mix", "--storage", study["url"], *ask)
        if expected is None:
            assert code == 1 and "no stored design" in out, (ask, out, err)
            answers.append(None)
            continue
        assert code == 0, (ask, err)
        assert _answer(out) == expected, (ask, out)
        row = trials.set_index("trial").loc[expected]
        column = {"latency": "latency_cycles", "energy": "energy_nj"}[objective]
        shown = sum(w * row[f"{column}_{n}"] for n, w in weights.items())
        if objective == "latency":
            assert f"latency {int(shown):,} cycles" in out, (ask, out)
        else:
            assert f"energy {shown:,.1f} nJ" in out, (ask, out)
        answers.append(expected)
    # The questions are not all answered alike, and one answer is a design the study's own targets
    # ruled out (it is stored whole, so a looser question may choose it).
    found = [a for a in answers if a is not None]
    assert len(set(found)) >= 3 and None in answers
    assert not all(trials.set_index("trial").loc[found].feasible.astype(bool))


def test_query_says_which_target_binds_when_no_stored_design_meets_them(capsys, study):
    trials, _ = _export(capsys, study)
    fastest_tiny = trials[trials.mapped.astype(bool)].latency_ms_tiny.min()
    code, out, err = run(capsys, "query", "--study", "mix", "--storage", study["url"], "--max-latency-ms",
                         f"tiny={fastest_tiny * 0.9}")
    assert code == 1, err
    lines = out.splitlines()
    assert "no stored design of study mix meets every latency target" in lines[0]
    assert lines[1].strip().startswith("tiny <= ") and "met by 0 of" in lines[1]
    assert f"fastest {fastest_tiny:.4g} ms" in lines[1]
    assert "met by 0" not in lines[2]                     # lm's target is met by some design
    assert "binds" in lines[-1]
    # A budget nothing stored meets: the budget's message, still exit 1.
    code, out, _ = run(capsys, "query", "--study", "mix", "--storage", study["url"], "--max-area-mm2",
                       "0.001")
    assert code == 1 and "no stored design of study mix qualifies under max_area_mm2 0.001" in out


def test_query_refuses_unknown_networks_and_bad_values(capsys, study):
    for ask, flag in ((["--weight", "vgg=2"], "--weight"), (["--weight", "lm=0"], "--weight"),
                      (["--weight", "lm"], "--weight"), (["--max-latency-ms", "bert=3"], "--max-latency-ms"),
                      (["--min-fps", "lm=fast"], "--min-fps"),
                      (["--max-latency-ms", "5"], "--max-latency-ms")):
        code, out, err = run(capsys, "query", "--study", "mix", "--storage", study["url"], *ask)
        assert code == 2, (ask, out, err)
        assert err.count("\n") == 1 and flag in err and "Traceback" not in err, (ask, err)


def test_a_target_impossible_at_the_compute_bound_is_refused_before_the_study_starts(capsys, tmp_path):
    tiny, lm = write_file(tmp_path, "tiny.m", NETWORK), write_file(tmp_path, "lm.m", LM)
    url = f"sqlite:///{tmp_path / 's.db'}"
    # lm: 1*96*32 + 8*24*32 = 9,216 MACs; within 0.4 mm^2 at most 16 PEs x 1 lane (32 PEs do not fit):
    # 576 cycles, 0.000576 ms at 1000 MHz.
    code, out, err = run(capsys, "codesign", "--network", f"{tiny}:weight=2", "--network", lm, "--study", "x",
                         "--storage", url, *HARDWARE, *BUDGET, "--max-latency-ms", "lm=0.0005",
                         "--output-dir", tmp_path / "best")
    assert code == 2, out + err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--max-latency-ms lm=0.0005" in err and "lm needs at least 0.000576 ms" in err
    assert "9,216 MACs" in err and "16 PEs x 1 SIMD lanes" in err and "576 cycles at 1000 MHz" in err
    import optuna

    assert optuna.get_all_study_summaries(open_storage(url)) == []        # nothing was started
    # The same target at 2000 MHz is reachable (288 cycles are 0.000144 ms... under 0.0005 ms).
    bound = mix.compute_bound_cycles(cd.CodesignSpec.create(str(lm), trials=1).layers(), 16)
    assert bound == 576 and mix.cycles_to_ms(bound, 2000) < 0.0005
    # A frame rate: --min-fps 2000000 is 0.0005 ms as well.
    code, _, err = run(capsys, "codesign", "--network", tiny, "--network", lm, "--study", "x", "--storage",
                       url, *HARDWARE, *BUDGET, "--min-fps", "lm=2000000", "--output-dir", tmp_path / "best")
    assert code == 2 and "--min-fps lm=2000000: no design can meet it" in err


def test_bad_mix_input_is_one_line_naming_the_flag(capsys, tmp_path):
    tiny, lm = write_file(tmp_path, "tiny.m", NETWORK), write_file(tmp_path, "lm.m", LM)
    base = ["--study", "x", "--storage", f"sqlite:///{tmp_path / 's.db'}", *HARDWARE, *BUDGET,
            "--trials", "1", "--output-dir", tmp_path / "best"]
    cases = [
        (["--network", tiny, "--network", "no_such_net"], "network"),
        (["--network", f"{tiny}:weight=0", "--network", lm], "--network"),
        (["--network", f"{tiny}:weight=-1", "--network", lm], "--network"),
        (["--network", f"{tiny}:weight=x", "--network", lm], "--network"),
        (["--network", ":weight=2", "--network", lm], "--network"),
        (["--network", tiny, "--network", f"{tiny}:weight=2"], "--network"),            # twice
        (["--network", tiny, "--network", lm, "--max-latency-ms", "vgg=3"], "--max-latency-ms"),
        (["--network", tiny, "--network", lm, "--max-latency-ms", "tiny:3"], "--max-latency-ms"),
        (["--network", tiny, "--network", lm, "--max-latency-ms", "3"], "--max-latency-ms"),
        (["--network", tiny, "--network", lm, "--max-latency-ms", "lm=0"], "--max-latency-ms"),
        (["--network", tiny, "--network", lm, "--min-fps", "lm=-5"], "--min-fps"),
        (["--network", tiny, "--network", lm, "--min-fps", "lm=100", "--max-latency-ms", "lm=3"],
         "--max-latency-ms"),
        (["--network", tiny, "--network", lm, "--clock-mhz", "0"], "--clock-mhz"),
        (["--network", tiny, "--network", lm, "--objective", "area,speed"], "--objective"),
    ]
    for argv, flag in cases:
        code, out, err = run(capsys, "codesign", *argv, *base)
        assert code == 2, (argv, out, err)
        assert err.count("\n") == 1 and flag in err and "Traceback" not in err, (argv, err)


def test_one_network_keeps_its_stored_form_and_takes_a_bare_target(capsys, tmp_path):
    tiny = write_file(tmp_path, "tiny.m", NETWORK)
    spec = cd.CodesignSpec.create(str(tiny), hardware=_hardware())
    data = json.loads(spec.to_json())
    assert not {"networks", "targets", "clock_mhz"} & set(data)           # as stored before mixes
    assert cd.CodesignSpec.from_json(spec.to_json()).differences(spec) == []
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = run(capsys, "codesign", "--network", tiny, "--study", "one", "--storage", url, *HARDWARE,
                       *BUDGET, "--trials", "4", "--max-latency-ms", "0.1", "--clock-mhz", "500",
                       "--output-dir", tmp_path / "best")
    assert code == 0, err
    stored = cd.stored_spec(cd.load("one", url))
    assert stored.targets == {"tiny": ["max_latency_ms", 0.1]} and stored.clock_mhz == 500
    for t in cd.load("one", url).get_trials(deepcopy=False):
        nets = t.user_attrs.get("networks")
        if nets:
            assert nets["tiny"]["latency_ms"] == pytest.approx(nets["tiny"]["latency_cycles"] / 5e5)
            assert t.constraints["latency_tiny"] == pytest.approx(nets["tiny"]["latency_ms"] / 0.1 - 1)
    assert (tmp_path / "best" / "mapping.m").is_file()


def test_a_pareto_front_of_mix_energy_and_area(capsys, study, tmp_path):
    # The stored study answers for energy,area without running anything; a new study can ask for it.
    code, out, err = run(capsys, "query", "--study", "mix", "--storage", study["url"], "--objective",
                         "energy,area")
    assert code == 0, err
    row = r"; ([\d.]+) mm\^2, [\d,.]+ mW; weighted latency [\d,]+ cycles, weighted energy ([\d,.]+) nJ"
    front = [(float(m.group(2).replace(",", "")), float(m.group(1))) for m in re.finditer(row, out)]
    assert front and all(not (b[0] <= a[0] and b[1] <= a[1] and b != a) for a in front for b in front)
    tiny, lm = write_file(tmp_path, "tiny.m", NETWORK), write_file(tmp_path, "lm.m", LM)
    spec = cd.CodesignSpec.create([str(tiny), str(lm)], objectives="energy,area", trials=4,
                                  hardware=_hardware(), budget={"max_area_mm2": 0.4})
    assert spec.inner_objective == "energy" and spec.metric_names() == ["weighted energy (nJ)", "area (mm^2)"]
    url = f"sqlite:///{tmp_path / 'front.db'}"
    s = cd.create_or_load(spec, "front", url)
    cd.run_worker("front", url)
    for t in s.get_trials(deepcopy=False):
        if t.user_attrs.get("networks"):
            assert t.values[1] == pytest.approx(t.user_attrs["area_mm2"])
            assert t.values[0] == pytest.approx(t.user_attrs["energy_nj"])


def test_the_plot_shows_each_network_against_its_target(capsys, study, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = run(capsys, "study", "plot", "mix", "--storage", study["url"], "--output-dir", tmp_path)
    assert code == 0, err
    assert (tmp_path / "mix-networks.png").stat().st_size > 5000
    assert "mix-networks.png" in out


def test_a_mix_study_resumes_with_the_same_command_and_refuses_a_changed_target(capsys, tmp_path):
    tiny, lm = write_file(tmp_path, "tiny.m", NETWORK), write_file(tmp_path, "lm.m", LM)
    url = f"sqlite:///{tmp_path / 's.db'}"

    def codesign(trials: int, target: str = "tiny=0.05"):
        return run(capsys, "codesign", "--network", f"{tiny}:weight=2", "--network", lm, "--study", "r",
                   "--storage", url, *HARDWARE, *BUDGET, "--max-latency-ms", target, "--trials", trials,
                   "--output-dir", tmp_path / "best")

    assert codesign(3)[0] == 0
    first = {t.number: t.params for t in cd.load("r", url).get_trials(deepcopy=False)}
    code, _, err = codesign(5)
    assert code == 0, err
    trials = cd.load("r", url).get_trials(deepcopy=False)
    assert sum(t.state.name == "COMPLETE" for t in trials) == 5
    assert {t.number: t.params for t in trials if t.number in first} == first         # kept as they were
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 5                # no design twice
    code, _, err = codesign(6, "tiny=0.04")
    assert code == 2 and "exists with a different targets" in err
