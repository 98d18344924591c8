"""The compiled kernel against the numpy reference engine: every figure of every design, bit for bit.

Both engines implement the same analysis (``costmodel/engine.py`` with numpy arrays over a batch,
``costmodel/kernel.py`` one design at a time in compiled code). They are compared on both MAESTRO
corpora (public oracle and generated cases, default and ``maestro_exact`` models), on random layers
and 0-3-cluster dataflows with holes, hardware arrays and mixed batches of many structures, and for
any number of worker threads. Integers must be equal, floats equal to the last bit, strings equal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from costmodel import (
    Accelerator,
    DseError,
    Layer,
    LayerCost,
    LayerType,
    MappingError,
    compiled,
    evaluate,
    evaluate_batch,
    evaluate_mixed,
    jit,
    parse_dataflow,
    parse_network,
    set_jobs,
)
from tests.costmodel_tests import fidelity
from tests.costmodel_tests.test_properties import (
    SETTINGS,
    _describe,
    dataflows,
    designs,
    hole_designs,
    layers,
)

REPO = Path(__file__).resolve().parents[2]


def _column_diff(a: LayerCost, b: LayerCost) -> dict[str, tuple]:
    """Fields whose values differ (first differing row shown); floats compared bit for bit."""
    out = {}
    for f in fields(LayerCost):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            x, y = np.asarray(x), np.asarray(y)
            if x.dtype != y.dtype or x.shape != y.shape:
                out[f.name] = (x.dtype, y.dtype, x.shape, y.shape)
                continue
            same = (x.view(np.int64) == y.view(np.int64)) if x.dtype == np.float64 else (x == y)
            if not np.all(same):
                i = int(np.argmin(same))
                out[f.name] = (i, x[i], y[i])
        elif type(x) is not type(y) or x != y:
            out[f.name] = (x, y)
    return out


def _both(layer, df, **kwargs):
    """Both engines' batches, or both MappingErrors (which must then read the same)."""
    results = []
    for engine in ("reference", "compiled"):
        try:
            results.append(evaluate_batch(layer, df, engine=engine, **kwargs))
        except MappingError as e:
            results.append(e)
    ref, com = results
    if isinstance(ref, MappingError) or isinstance(com, MappingError):
        assert isinstance(ref, MappingError) and isinstance(com, MappingError), (ref, com)
        assert (ref.reason, ref.layer, ref.level, ref.directive) == (com.reason, com.layer, com.level,
                                                                     com.directive)
        return None
    return ref, com


def _corpus_diffs(rows, texts, maestro_exact: bool) -> tuple[int, list[str]]:
    compared, diffs = 0, []
    for row, text in zip(rows.itertuples(index=False), texts, strict=True):
        try:
            mapped = parse_network(text).layers[0]
        except DseError:
            continue
        if mapped.error is not None:
            continue
        pair = _both(mapped.layer, mapped.dataflow, accelerator=fidelity.accelerator_of(row),
                     maestro_exact=maestro_exact)
        compared += 1
        if pair and (d := _column_diff(*pair)):
            diffs.append(f"{getattr(row, 'layer_file', None) or row.case_id}: {d}")
    return compared, diffs


@pytest.mark.parametrize("maestro_exact", [False, True], ids=["default", "maestro_exact"])
@pytest.mark.parametrize("corpus", ["public", "generated"])
def test_corpora_give_identical_figures(corpus, maestro_exact):
    rows, texts = fidelity.public_oracle() if corpus == "public" else fidelity.generated_cases()
    compared, diffs = _corpus_diffs(rows, texts, maestro_exact)
    print(f"\n{corpus} corpus ({'maestro_exact' if maestro_exact else 'default'}): {compared} cases, "
          f"{len(diffs)} differ")
    assert compared == len(rows)
    assert diffs == []


@settings(max_examples=300, **SETTINGS)
@given(hole_designs())
def test_hole_batches_identical(design):
    layer, holed, acc, value_sets = design
    note(_describe(layer, holed, acc))
    holes = {k: np.array([vs[k] for vs in value_sets]) for k in value_sets[0]}
    pair = _both(layer, holed, accelerator=acc, holes=holes, num_pes=np.full(len(value_sets), acc.num_pes))
    if pair:
        assert _column_diff(*pair) == {}


@st.composite
def hardware_arrays(draw, n):
    def col(lo, hi, unlimited=False):
        values = [draw(st.integers(lo, hi)) for _ in range(n)]
        return None if unlimited and draw(st.booleans()) else np.array(values)
    return {"num_pes": col(1, 512), "simd_lanes": col(1, 4), "noc_bw": col(1, 256, True),
            "noc_hop_latency": col(0, 3), "noc_hops": col(1, 3), "offchip_bw": col(1, 512, True),
            "l1_size": col(1, 4096, True), "l2_size": col(1, 1 << 20, True)}


@settings(max_examples=300, **SETTINGS)
@given(designs(), st.integers(1, 6).flatmap(hardware_arrays), st.booleans())
def test_hardware_batches_identical(design, hardware, maestro_exact):
    layer, df, acc = design
    note(_describe(layer, df, acc))
    pair = _both(layer, df, accelerator=acc, maestro_exact=maestro_exact, **hardware)
    if pair:
        assert _column_diff(*pair) == {}


@st.composite
def mixed_batches(draw):
    """One layer, several dataflows (each with its own holes), points of all of them interleaved."""
    layer = draw(layers())
    acc = replace(Accelerator(num_pes=draw(st.sampled_from([4, 16, 64, 256]))),
                  noc_bw=draw(st.integers(1, 64)))
    flows = [draw(dataflows(layer, acc.num_pes)) for _ in range(draw(st.integers(1, 4)))]
    structure = np.array(draw(st.lists(st.integers(0, len(flows) - 1), min_size=1, max_size=12)))
    return layer, flows, structure, acc


@settings(max_examples=200, **SETTINGS)
@given(mixed_batches())
def test_mixed_batches_identical_to_per_structure_batches(batch):
    """evaluate_mixed (one kernel call over many structures) equals the reference per structure."""
    layer, flows, structure, acc = batch
    for df in flows:
        try:
            evaluate_batch(layer, df, accelerator=acc, engine="reference")
        except MappingError:
            return                              # a structure error: covered by the other tests
    values = np.zeros((len(structure), 0), dtype=np.int64)
    ref = evaluate_mixed(layer, flows, structure, values, accelerator=acc, engine="reference")
    com = evaluate_mixed(layer, flows, structure, values, accelerator=acc, engine="compiled")
    assert _column_diff(ref, com) == {}
    for i, s in enumerate(structure):
        one = evaluate_batch(layer, flows[s], accelerator=acc, engine="reference").row(0)
        assert _column_diff(com.row(i), one) == {}, f"row {i} (structure {s})"


def test_single_evaluation_path_matches_the_batch_path():
    """``evaluate`` has its own lean path through the kernel: same figures, same Python types."""
    rows, texts = fidelity.public_oracle()
    checked = 0
    for row, text in list(zip(rows.itertuples(index=False), texts, strict=True))[::7]:
        mapped = parse_network(text).layers[0]
        acc = fidelity.accelerator_of(row)
        try:
            one = evaluate(mapped.layer, mapped.dataflow, acc)
        except MappingError as e:
            batch = evaluate_batch(mapped.layer, mapped.dataflow, accelerator=acc, engine="reference")
            assert str(e).endswith(batch.error[0])
            continue
        assert _column_diff(one, evaluate(mapped.layer, mapped.dataflow, acc, engine="reference")) == {}
        checked += 1
    assert checked > 150


def test_results_do_not_depend_on_worker_threads():
    _, texts = fidelity.public_oracle()
    mapped = parse_network(texts[5]).layers[0]
    n = 3 * compiled.PARALLEL_MIN + 17
    rng = np.random.default_rng(3)
    hw = {"num_pes": rng.integers(1, 1024, n), "noc_bw": rng.integers(1, 512, n),
          "l2_size": rng.integers(1, 1 << 18, n)}
    try:
        runs = []
        for jobs in (1, 2, 3):
            set_jobs(jobs)
            runs.append(evaluate_batch(mapped.layer, mapped.dataflow, **hw))
    finally:
        set_jobs(None)
    assert _column_diff(runs[0], runs[1]) == {} and _column_diff(runs[0], runs[2]) == {}
    assert len(set(runs[0].runtime_cycles.tolist())) > 10


def test_cache_folder_is_outside_the_repository_and_falls_back(tmp_path, monkeypatch):
    assert jit.CACHE_DIR is not None and REPO not in jit.CACHE_DIR.resolve().parents
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_folder))
    fallback = jit.cache_dir()
    assert fallback is not None and not_a_folder not in fallback.parents


def test_a_corrupt_cache_is_rebuilt_not_fatal(tmp_path):
    """Every cached file overwritten with garbage: the next process recompiles and gets the same
    figures, with warnings as errors."""
    if jit.CACHE_DIR is None:
        pytest.fail("no writable cache folder")
    cache = tmp_path / "cache"
    shutil.copytree(jit.CACHE_DIR, cache)
    files = [p for p in cache.rglob("*") if p.is_file()]
    for p in files:
        p.write_bytes(b"garbage")
    code = ("from costmodel import Accelerator, evaluate, read_network\n"
            "from costmodel.networks import DATA\n"
            "m = read_network(DATA / 'resnet50_kcp_ws.m').layers[3]\n"
            "print(evaluate(m.layer, m.dataflow, Accelerator(num_pes=256, noc_bw=64)).runtime_cycles)\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert files, "the cache held no files to corrupt"
    m = fidelity_network_layer()
    want = evaluate(m.layer, m.dataflow, Accelerator(num_pes=256, noc_bw=64)).runtime_cycles
    assert int(proc.stdout) == want


def fidelity_network_layer():
    from costmodel import read_network
    from costmodel.networks import DATA

    return read_network(DATA / "resnet50_kcp_ws.m").layers[3]


def test_mixed_batch_rows_stay_in_design_order_for_any_worker_count():
    """The kernel runs a mixed batch's designs grouped by structure (for the cache); every row must still
    be its own design's, with one worker or several."""
    layer = Layer(name="conv", layer_type=LayerType.CONV,
                  dims=(("K", 32), ("C", 16), ("R", 3), ("S", 3), ("Y", 30), ("X", 30)))
    top = ("SpatialMap(1,1) K; TemporalMap(?c,{c_offset}) C; TemporalMap(Sz(R),Sz(R)) R; "
           "TemporalMap(Sz(S),Sz(S)) S; TemporalMap(?t,?t) Y'; TemporalMap(?t,?t) X'; Cluster(?p, P);")
    inner = ("SpatialMap(1,1) {spatial}; TemporalMap(Sz(R),1) Y; TemporalMap(Sz(S),1) X; "
             "TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S;")
    flows = [parse_dataflow("Dataflow { " + top.format(c_offset=o) + inner.format(spatial=s) + " }")
             for o, s in (("?c", "C"), ("?c", "K"), ("1", "C"))]
    n = 3 * compiled.PARALLEL_MIN + 17
    rng = np.random.default_rng(5)
    structure = rng.integers(0, len(flows), n)                 # interleaved, as searchers send them
    values = np.stack([rng.choice([1, 2, 4, 8, 16], n), rng.integers(1, 31, n), rng.choice([1, 2, 4, 8], n)],
                      axis=1)
    try:
        runs = []
        for jobs in (1, 2, 3):
            set_jobs(jobs)
            runs.append(evaluate_mixed(layer, flows, structure, values, num_pes=64, noc_bw=32))
    finally:
        set_jobs(None)
    assert _column_diff(runs[0], runs[1]) == {} and _column_diff(runs[0], runs[2]) == {}
    for s, df in enumerate(flows):
        rows = np.nonzero(structure == s)[0]
        alone = evaluate_batch(layer, df, holes={h: values[rows, i] for i, h in enumerate(df.holes)},
                               num_pes=64, noc_bw=32)
        for figure in ("runtime_cycles", "input_l2_reads", "weight_l2_reads", "l2_size_req", "error"):
            assert (getattr(runs[0], figure)[rows] == getattr(alone, figure)).all(), (s, figure)
    assert len(set(runs[0].runtime_cycles.tolist())) > 50
