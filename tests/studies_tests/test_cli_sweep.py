"""``dse sweep``: grid specs; the network figures of every design agree with brute-force evaluation and
with ``dse eval``; budgets; the Pareto set; CSV and Parquet outputs; bad input exits 2 in one line."""

from __future__ import annotations

import argparse
import io
import itertools
import sys

import numpy as np
import pandas as pd
import pytest

from costmodel import Accelerator, MappingError, evaluate, read_dataflow, read_network
from costmodel.networks import bundled_dataflow
from costmodel.sweep import sweep_hardware
from costmodel.workloads import merge_repeats
from studies.commands import sweep as sweep_cmd
from studies.commands.sweep import COLUMNS, grid_spec, sweep_network

from .cli_helpers import run, write_file

_DATAFLOW = """\
  Dataflow {
    SpatialMap(1,1) K; TemporalMap(%(c)d,%(c)d) C; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(Sz(R),1) Y; TemporalMap(Sz(S),1) X;
    Cluster(%(c)d, P);
    SpatialMap(1,1) C; TemporalMap(Sz(R),1) Y; TemporalMap(Sz(S),1) X;
    TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S;
  }
"""
# Two KC-P layers, the second repeated twice; with 8 PEs the second (Cluster(16)) cannot be mapped.
NETWORK = f"""\
Network tiny {{
Layer conv_a {{
  Type: CONV
  Stride {{ X: 1, Y: 1 }}
  Dimensions {{ K: 32, C: 16, R: 3, S: 3, Y: 12, X: 12 }}
{_DATAFLOW % {"c": 8}}}}
Layer conv_b {{
  //@repeat 2
  Type: CONV
  Stride {{ X: 1, Y: 1 }}
  Dimensions {{ K: 64, C: 32, R: 1, S: 1, Y: 10, X: 10 }}
{_DATAFLOW % {"c": 16}}}}
}}
"""
GRID = ["--num-pes", "8,16,24,32,64", "--noc-bw", "4:64:*2", "--l1-size", "32:64:16", "--l2-size",
        "256:4096:*2"]
AXES = {"num_pes": [8, 16, 24, 32, 64], "noc_bw": [4, 8, 16, 32, 64], "l1_size": [32, 48, 64],
        "l2_size": [256, 512, 1024, 2048, 4096]}
FIXED = ["--noc-hop-latency", "1", "--noc-hops", "2"]



@pytest.fixture
def network(tmp_path):
    return write_file(tmp_path, "tiny.m", NETWORK)


@pytest.fixture
def every_design(network, capsys):
    """Every design of the grid (``--all`` CSV), no budget."""
    code, out, err = run(capsys, "sweep", network, *GRID, *FIXED, "--format", "csv", "--all")
    assert code == 0, err
    return pd.read_csv(io.StringIO(out))


def brute_force(path, num_pes, noc_bw, l1_size, l2_size) -> dict:
    """One design evaluated layer by layer with the scalar API."""
    acc = Accelerator(num_pes=num_pes, noc_bw=noc_bw, l1_size=l1_size, l2_size=l2_size, noc_hop_latency=1,
                      noc_hops=2)
    runtime, energy, valid = 0, 0.0, True
    for mapped in read_network(path).layers:
        try:
            cost = evaluate(mapped.layer, mapped.dataflow, acc)
        except MappingError:
            return {"mappable": False, "valid": False, "area_mm2": acc.area_um2() / 1e6,
                    "power_mw": acc.power_mw()}
        runtime += mapped.layer.count * cost.runtime_cycles
        energy += mapped.layer.count * cost.energy_nj
        valid &= bool(cost.valid)
    return {"mappable": True, "valid": valid, "runtime_cycles": runtime, "energy_nj": energy,
            "area_mm2": acc.area_um2() / 1e6, "power_mw": acc.power_mw()}


def dominates(a, b) -> bool:
    """a dominates b over (throughput max, energy min, area min)."""
    ge = (a.throughput_macs_per_cycle >= b.throughput_macs_per_cycle and a.energy_nj <= b.energy_nj
          and a.area_mm2 <= b.area_mm2)
    return ge and (a.throughput_macs_per_cycle > b.throughput_macs_per_cycle or a.energy_nj < b.energy_nj
                   or a.area_mm2 < b.area_mm2)


# ----------------------------------------------------------------------------------------- specs
@pytest.mark.parametrize(("spec", "values"), [
    ("64", [64]),
    ("16:64:16", [16, 32, 48, 64]),
    ("16:70:16", [16, 32, 48, 64]),                 # stop is inclusive when reached, never exceeded
    ("64:1024:*2", [64, 128, 256, 512, 1024]),
    ("1:100:*10", [1, 10, 100]),
    ("256, 64,128,64", [64, 128, 256]),             # sorted, duplicates dropped
])
def test_spec_forms(spec, values):
    assert grid_spec("num_pes")(spec).tolist() == values


@pytest.mark.parametrize(("spec", "message"), [
    ("", "no value given"), ("abc", "not an integer"), ("0", "out of range"), ("-4", "out of range"),
    ("64:16:4", "below start"), ("16:64:0", "step of a range must be positive"), ("16:64:*1", "factor >= 2"),
    ("16:64:*x", "not an integer"), ("3:6", "a range is start:stop:step"), ("1:2:3:4", "a range is"),
    ("1:10000000000:1", "more than"), (str(1 << 41), "above the limit of 68,719,476,736"),
])
def test_spec_errors(spec, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        grid_spec("l2_size")(spec)


@pytest.mark.parametrize("flag", ["--num-pes", "--noc-bw", "--l1-size", "--l2-size"])
def test_bad_spec_on_the_command_line_names_the_flag(network, capsys, flag):
    argv = [*GRID]
    argv[argv.index(flag) + 1] = "64:16"
    code, out, err = run(capsys, "sweep", network, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and flag in err and "64:16" in err and "Traceback" not in err


# ----------------------------------------------------------------------------------------- figures
def test_every_design_matches_brute_force_evaluation(network, every_design):
    df = every_design
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == np.prod([len(v) for v in AXES.values()])
    assert list(zip(df.num_pes, df.noc_bw, df.l1_size, df.l2_size, strict=True)) == \
        list(itertools.product(*AXES.values()))             # grid order
    assert set(df.status) == {"ok", "unmappable", "bandwidth", "capacity"}    # the grid exercises each
    valid = 0
    for row in df.itertuples():
        expected = brute_force(network, row.num_pes, row.noc_bw, row.l1_size, row.l2_size)
        valid += expected["valid"]
        assert bool(row.valid) == expected["valid"]
        assert row.area_mm2 == pytest.approx(expected["area_mm2"], rel=1e-12)
        assert row.power_mw == pytest.approx(expected["power_mw"], rel=1e-12)
        if not expected["mappable"]:
            assert row.status == "unmappable" and pd.isna(row.runtime_cycles)
            continue
        assert row.runtime_cycles == expected["runtime_cycles"]
        assert row.energy_nj == pytest.approx(expected["energy_nj"], rel=1e-12)
        assert row.throughput_macs_per_cycle == pytest.approx(870_400 / expected["runtime_cycles"])
    assert valid == (df.status == "ok").sum() > 0


def test_grid_points_match_dse_eval(network, every_design, capsys):
    for point in [(16, 8, 64, 1024), (32, 64, 64, 4096), (64, 4, 32, 256)]:
        hw = dict(zip(("--num-pes", "--noc-bw", "--l1-size", "--l2-size"), point, strict=True))
        code, out, _ = run(capsys, "eval", network, *itertools.chain(*hw.items()), *FIXED, "--format", "csv")
        assert code == 0
        layers = pd.read_csv(io.StringIO(out))
        row = every_design.set_index(["num_pes", "noc_bw", "l1_size", "l2_size"]).loc[point]
        assert row.runtime_cycles == (layers.runtime_cycles * layers["count"]).sum()
        assert row.energy_nj == pytest.approx((layers.energy_nj * layers["count"]).sum(), rel=1e-12)
        assert bool(row.valid) == bool(layers.valid.all())


def test_one_layer_agrees_with_sweep_hardware(network):
    layer, dataflow = next((m.layer, m.dataflow) for m in read_network(network).layers)
    acc = Accelerator(noc_hop_latency=1, noc_hops=2)
    rows = []
    result = sweep_network([(layer, dataflow)], acc, {k: np.array(v) for k, v in AXES.items()},
                           sink=rows.append)
    ref = sweep_hardware(layer, dataflow, accelerator=acc, **AXES)
    df = pd.concat(rows, ignore_index=True)
    ok = df.status != "unmappable"
    np.testing.assert_array_equal(df.valid, ref.valid.ravel())
    np.testing.assert_array_equal(df.runtime_cycles[ok], ref.runtime_cycles.ravel()[ok])
    np.testing.assert_allclose(df.energy_mac_units[ok], ref.energy_mac_units.ravel()[ok], rtol=1e-12)
    np.testing.assert_allclose(df.area_mm2, ref.area_um2.ravel() / 1e6, rtol=1e-12)
    np.testing.assert_allclose(df.power_mw, ref.power_mw.ravel(), rtol=1e-12)
    assert result.counts["ok"] == int(ref.valid.sum())


def test_small_blocks_give_the_same_answer(network, monkeypatch):
    pairs = merge_repeats([(m.layer, m.dataflow) for m in read_network(network).layers])
    acc = Accelerator(noc_hop_latency=1, noc_hops=2)
    axes = {k: np.array(v) for k, v in AXES.items()}

    def sweep():
        rows = []
        result = sweep_network(pairs, acc, axes, sink=rows.append)
        return result, pd.concat(rows, ignore_index=True)

    big, big_rows = sweep()
    for block, eval_pairs in [(7, 1), (40, 3)]:     # 7 < 3 x 5 designs per pair: L1 is split too
        monkeypatch.setattr(sweep_cmd, "BLOCK_DESIGNS", block)
        monkeypatch.setattr(sweep_cmd, "EVAL_PAIRS", eval_pairs)
        small, small_rows = sweep()
        assert small.counts == big.counts
        pd.testing.assert_frame_equal(small_rows, big_rows)
        pd.testing.assert_frame_equal(small.pareto, big.pareto)


# ----------------------------------------------------------------------------------------- budgets, Pareto
@pytest.mark.parametrize("limits", [("area", "power"), ("pes", "buffer")])
def test_budgets_cut_exactly_the_designs_over_budget(network, every_design, capsys, limits):
    df = every_design
    ok = df[df.valid]
    budget = {"area": ("--max-area-mm2", ok.area_mm2.median(), df.area_mm2),
              "power": ("--max-power-mw", ok.power_mw.quantile(0.75), df.power_mw),
              "pes": ("--max-pes", 48, df.num_pes),
              "buffer": ("--max-buffer", 2000, df.num_pes * df.l1_size + df.l2_size)}
    flags = [str(v) for name in limits for v in budget[name][:2]]
    code, out, err = run(capsys, "sweep", network, *GRID, *FIXED, "--format", "csv", "--all", *flags)
    assert code == 0
    cut_df = pd.read_csv(io.StringIO(out))
    within = np.logical_and.reduce([budget[name][2] <= budget[name][1] for name in limits])
    np.testing.assert_array_equal(cut_df.valid, df.valid & within)
    cut = df.valid & ~within
    assert 0 < cut.sum() < df.valid.sum()
    assert (cut_df.status[cut] == "budget").all()
    assert (cut_df.status[~cut] == df.status[~cut]).all()
    assert f"cut by budget: {cut.sum():,} (budget: " in err


def test_pareto_set_is_non_dominated_and_covers_every_valid_design(network, every_design, capsys):
    code, out, err = run(capsys, "sweep", network, *GRID, *FIXED, "--format", "csv")
    assert code == 0
    front = pd.read_csv(io.StringIO(out))
    assert list(front.columns) == list(COLUMNS) and len(front) > 1 and front.valid.all()
    assert f"Pareto set over (throughput max, energy min, area min): {len(front)} design(s)" in err
    assert front.runtime_cycles.is_monotonic_increasing
    rows = list(front.itertuples())
    assert not any(dominates(a, b) for a in rows for b in rows)
    key = ["num_pes", "noc_bw", "l1_size", "l2_size"]
    merged = front.merge(every_design, on=key, suffixes=("", "_all"))
    assert len(merged) == len(front) and merged.valid_all.all()         # real designs of the grid
    np.testing.assert_allclose(merged.area_mm2, merged.area_mm2_all, rtol=1e-12)
    for design in every_design[every_design.valid].itertuples():
        assert any(dominates(p, design) or
                   (p.throughput_macs_per_cycle, p.energy_nj, p.area_mm2) ==
                   pytest.approx((design.throughput_macs_per_cycle, design.energy_nj, design.area_mm2))
                   for p in rows)


def test_table_output(network, capsys):
    code, out, err = run(capsys, "sweep", network, *GRID, *FIXED, "--max-area-mm2", "1.5")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("network tiny (") and "3 layer(s), 2 distinct" in lines[0]
    assert lines[1] == "grid: 5 num_pes x 5 noc_bw x 3 l1_size x 5 l2_size = 375 designs"
    assert lines[3].startswith("valid: ") and lines[4].startswith("cut by capacity/bandwidth: ")
    assert lines[5].startswith("cut by budget: ") and "designs/s" in lines[6]
    header = lines[8]
    for word in ("PEs", "NoC BW", "L1/PE", "L2", "runtime (cycles)", "MACs/cycle", "energy (nJ)",
                 "area (mm2)", "power (mW)"):
        assert word in header


def test_dataflow_option_applies_to_every_layer(tmp_path, capsys):
    path = tmp_path / "bare.m"
    path.write_text("Network bare {\nLayer fc { Type: CONV Stride { X: 1, Y: 1 } "
                    "Dimensions { K: 128, C: 64, R: 1, S: 1, Y: 1, X: 1 } }\n}\n")
    code, _, err = run(capsys, "sweep", path, "--num-pes", "64", "--noc-bw", "64", "--l1-size", "64",
                       "--l2-size", "65536")
    assert code == 2 and "no layer has a dataflow (give one with --dataflow)" in err
    code, out, _ = run(capsys, "sweep", path, "--dataflow", "kcp_ws", "--num-pes", "64:128:64",
                       "--noc-bw", "256", "--l1-size", "64", "--l2-size", "65536", "--format", "csv", "--all")
    df = pd.read_csv(io.StringIO(out))
    assert code == 0 and df.valid.tolist() == [True, True]
    layer = read_network(path).layers[0].layer
    kcp_ws = read_dataflow(bundled_dataflow("kcp_ws"))
    expected = [evaluate(layer, kcp_ws, Accelerator(num_pes=n, noc_bw=256)).runtime_cycles for n in (64, 128)]
    assert df.runtime_cycles.tolist() == expected


# ----------------------------------------------------------------------------------------- outputs
def test_parquet_and_csv_files_hold_the_same_rows(network, tmp_path, capsys):
    csv_path, parquet_path = tmp_path / "all.csv", tmp_path / "all.parquet"
    for path, fmt in [(csv_path, "csv"), (parquet_path, "parquet")]:
        code, out, err = run(capsys, "sweep", network, *GRID, *FIXED, "--format", fmt, "--all",
                             "--output", path)
        assert code == 0 and err == "" and f"wrote 375 designs to {path}" in out
    from_csv, from_parquet = pd.read_csv(csv_path), pd.read_parquet(parquet_path)
    assert list(from_parquet.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(from_parquet, from_csv, check_dtype=False)
    code, out, _ = run(capsys, "sweep", network, *GRID, *FIXED, "--format", "csv")      # the Pareto set
    front = pd.read_csv(io.StringIO(out))
    code, out, _ = run(capsys, "sweep", network, *GRID, *FIXED, "--format", "parquet", "--output",
                       parquet_path)
    assert code == 0 and f"wrote {len(front)} Pareto designs to {parquet_path}" in out
    pd.testing.assert_frame_equal(pd.read_parquet(parquet_path), front, check_dtype=False)


def test_parquet_without_pyarrow_is_a_user_error(network, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)      # makes "import pyarrow" fail
    code, out, err = run(capsys, "sweep", network, *GRID, "--format", "parquet", "--output",
                         tmp_path / "x.parquet")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "pyarrow" in err and "pip install" in err and not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--all"], "--all writes rows: use it with --format csv or parquet"),
    (["--format", "csv", "--all", "--max-rows", "100"],
     "--all would write 375 rows, more than --max-rows 100"),
    (["--format", "parquet"], "--format parquet needs --output PATH"),
    (["--output", "/nonexistent/dir/x.csv"], "--output: directory /nonexistent/dir does not exist"),
    (["--layer", "conv_a", "--layer", "nope"], "no layer named nope (--layer)"),
    (["--max-area-mm2", "0"], "argument --max-area-mm2: expected a positive number"),
    (["--simd-lanes", "0"], "argument --simd-lanes: expected a positive integer"),
])
def test_bad_input_exits_2_in_one_line(network, capsys, extra, message):
    code, out, err = run(capsys, "sweep", network, *GRID, *extra)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_bad_files_and_layers_exit_2(network, tmp_path, capsys):
    code, _, err = run(capsys, "sweep", tmp_path / "missing.m", *GRID)
    assert code == 2 and len(err.splitlines()) == 1 and "missing.m" in err
    code, _, err = run(capsys, "sweep", network, "--num-pes", "8", "--noc-bw", "8", "--l1-size", "64",
                       "--l2-size", "4096")
    assert code == 2 and "layer conv_b: cannot be mapped on any grid point: cluster sizes" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "sweep", network, "--noc-bw", "8", "--l1-size", "64", "--l2-size", "4096")
    assert code == 2 and "--num-pes: give a grid spec" in err
    bad = tmp_path / "bad.m"
    bad.write_text(NETWORK.replace("TemporalMap(8,8) C;", "TemporalMap(8,8) M;"))
    code, _, err = run(capsys, "sweep", bad, *GRID)
    assert code == 2 and "M is not a dimension of this layer" in err and len(err.splitlines()) == 1
