"""Hand-checked examples: the semantics doc's worked example and the MAESTRO error cases."""

from __future__ import annotations

import numpy as np
import pytest

from costmodel import (
    Accelerator,
    Dataflow,
    DimSize,
    Directive,
    Hole,
    Layer,
    LayerType,
    MappingError,
    evaluate,
    evaluate_batch,
    parse_network,
)

T, S, CL = Directive.temporal, Directive.spatial, Directive.cluster


def worked_example():
    """maestro-semantics.md section 4.6: MAESTRO prints 325 cycles."""
    layer = Layer.conv("L", K=4, C=2, R=3, S=3, Y=6, X=6)
    df = Dataflow.of(S(1, 1, "K"), T(1, 1, "C"), T(3, 3, "R"), T(3, 3, "S"), T(3, 1, "Y"), T(3, 1, "X"))
    return layer, df, Accelerator(num_pes=4, noc_bw=2, noc_hop_latency=1)


def test_worked_example_figures():
    cost = evaluate(*worked_example())
    assert cost.runtime_cycles == 325
    assert cost.num_macs == cost.true_macs == 1152
    assert (cost.input_l2_reads, cost.weight_l2_reads, cost.output_l2_writes) == (144, 72, 128)
    assert cost.l2_size_req == 2 * 9 + 2 * 36 + 2 * 4
    assert cost.l1_size_req == 3 * 2 * 9
    assert cost.peak_noc_bw_req == 5
    assert cost.avg_noc_bw_req == pytest.approx(0.8125)
    assert cost.input_l1_reads == cost.weight_l1_reads == cost.output_l1_writes == 1152
    assert cost.deviations == ""
    # MAESTRO's stdout energy: 18.61 x six L2 counts + 1.68 x six L1 counts + MACs.
    l2 = 144 + 72 + 72 + 72 + cost.output_l2_reads + 128
    assert cost.input_l2_writes == 2 * 6 * 6 and cost.weight_l2_writes == 72
    l1 = 1152 + 144 + 1152 + 72 + 1152 + 1152
    assert cost.energy_mac_units == pytest.approx(18.61 * l2 + 1.68 * l1 + 1152)
    assert cost.energy_nj == pytest.approx(cost.energy_mac_units * 0.00023)


def test_unlimited_noc_changes_only_delays():
    layer, df, acc = worked_example()
    slow = evaluate(layer, df, acc)
    fast = evaluate(layer, df, Accelerator(num_pes=4))             # unlimited NoC, no hop latency
    assert fast.runtime_cycles < slow.runtime_cycles
    assert fast.runtime_cycles == 32 * 9          # every case compute-bound: 9 MACs per PE, 32 cases
    for name in ("num_macs", "input_l2_reads", "weight_l2_reads", "output_l2_writes", "l2_size_req",
                 "energy_mac_units"):
        assert getattr(fast, name) == getattr(slow, name)


def test_cluster_product_beyond_pe_count_is_a_clear_error():
    layer = Layer.gemm("BLAS", M=100, N=100, K=100)
    df = Dataflow.of(T(1, 1, "N"), S(1, 1, "M"), T(100, 100, "K"), CL(100), T(1, 1, "N"), T(1, 1, "M"),
                     S(1, 1, "K"))
    with pytest.raises(MappingError, match="cluster sizes multiply to 100 but the accelerator has 64 PEs"):
        evaluate(layer, df, Accelerator(num_pes=64))


def test_filter_wider_than_tile_names_the_tile():
    layer = Layer.conv("L", K=8, C=4, R=3, S=3, Y=16, X=16)
    df = Dataflow.of(T(2, 2, "K"), T(4, 4, "C"), T(3, 3, "R"), S(3, 1, "Y"), T(3, 1, "X"), CL(3),
                     S(1, 1, "X"), S(1, 1, "R"), T(3, 3, "S"))
    message = r"X tile 1 is smaller than the filter width S=3 at cluster level 1"
    with pytest.raises(MappingError, match=message):
        evaluate(layer, df, Accelerator(num_pes=64))


def test_rs_temporal_map_must_span_the_filter_only_under_maestro_exact():
    """MAESTRO's parser rejects a TemporalMap on R smaller than the filter; the default model counts
    it, here approximately, as the Y tiles are smaller than the layer's (partial-filter-shift)."""
    layer = Layer.conv("L", K=8, C=4, R=3, S=3, Y=16, X=16)
    df = Dataflow.of(S(1, 1, "K"), T(1, 1, "R"), T(3, 1, "Y"), T(3, 1, "X"))
    exact = evaluate_batch(layer, df, accelerator=Accelerator(num_pes=8), maestro_exact=True)
    assert "must span the whole filter" in str(exact.error[0])
    cost = evaluate(layer, df, Accelerator(num_pes=8))
    assert "partial-filter-shift" in cost.deviations.split(",") and cost.num_macs >= layer.true_macs


def test_level_without_spatial_map_is_rejected():
    layer = Layer.conv("L", K=8, C=4, R=3, S=3, Y=16, X=16)
    df = Dataflow.of(T(1, 1, "K"), T(3, 1, "Y"))
    with pytest.raises(MappingError, match="no SpatialMap"):
        evaluate(layer, df, Accelerator(num_pes=8))


def test_capacities_are_enforced_with_the_constraint_named():
    layer, df, _ = worked_example()
    cost = evaluate(layer, df, Accelerator(num_pes=4, l1_size=10, l2_size=1000, noc_bw=1))
    assert not cost.valid
    assert not cost.fits_l1 and cost.fits_l2 and not cost.meets_noc_bw
    assert cost.violations == "l1_size_req > l1_size; peak_noc_bw_req > noc_bw"
    assert cost.runtime_cycles > 0          # the figures are still reported


def test_gamma_q11_mapping_is_physically_consistent():
    """The semantics doc's Q11 example: MAESTRO gives 129,461 cycles, below the 419,904-cycle PE peak."""
    text = """Network R { Layer CONV2_1_2 { Type: CONV Stride { X: 1, Y: 1 }
      Dimensions { K: 64, C: 64, R: 3, S: 3, Y: 56, X: 56 }
      Dataflow { TemporalMap(3,3) S; TemporalMap(64,64) C; TemporalMap(30,30) X'; TemporalMap(3,3) R;
        SpatialMap(1,1) K; TemporalMap(28,28) Y'; Cluster(4,P); TemporalMap(29,29) X'; TemporalMap(1,1) K;
        SpatialMap(1,1) C; TemporalMap(3,3) R; TemporalMap(27,27) Y'; TemporalMap(3,3) S; } } }"""
    m = parse_network(text).layers[0]
    acc = Accelerator(num_pes=256, noc_hop_latency=1)
    raw = evaluate_batch(m.layer, m.dataflow, accelerator=acc, maestro_exact=True).row(0)
    assert raw.runtime_cycles == 129_461 and raw.num_macs == 107_495_424   # MAESTRO's own figures
    cost = evaluate(m.layer, m.dataflow, acc)
    assert cost.pe_peak_cycles == 419_904
    assert 419_904 <= cost.runtime_cycles <= 419_911
    assert "subtile-edges" in cost.deviations and "pe-peak-bound" not in cost.deviations


def test_holes_and_hardware_arrays_broadcast():
    layer = Layer.conv("L", K=16, C=16, R=3, S=3, Y=18, X=18)
    df = Dataflow.of(S(1, 1, "K"), T(Hole("c"), Hole("c"), "C"), T(DimSize("R"), DimSize("R"), "R"),
                     T(DimSize("S"), DimSize("S"), "S"), T(DimSize("R"), 1, "Y"), T(DimSize("S"), 1, "X"))
    batch = evaluate_batch(layer, df, holes={"c": [1, 2, 4, 8, 16]}, num_pes=np.array([4, 8, 16, 16, 16]))
    assert len(batch) == 5 and batch.runtime_cycles.shape == (5,)
    for i, (c, pes) in enumerate(zip([1, 2, 4, 8, 16], [4, 8, 16, 16, 16], strict=True)):
        single = evaluate(layer, df.bind({"c": c}), Accelerator(num_pes=pes))
        assert batch.row(i) == single


def test_missing_hole_value_is_an_error():
    layer = Layer.conv("L", K=16, C=16, R=3, S=3, Y=18, X=18)
    df = Dataflow.of(S(1, 1, "K"), T(Hole("c"), Hole("c"), "C"))
    with pytest.raises(MappingError, match=r"no value given for hole \?c"):
        evaluate(layer, df, Accelerator(num_pes=4))


def test_layer_types_and_true_macs():
    assert Layer.conv("c", K=64, C=3, R=7, S=7, Y=229, X=229, stride=2).true_macs == 64 * 3 * 49 * 112 * 112
    assert Layer.gemm("g", M=3, N=5, K=7).true_macs == 105
    ds = Layer.conv("d", K=1, C=32, R=3, S=3, Y=10, X=10, layer_type=LayerType.DSCONV)
    assert ds.true_macs == 32 * 9 * 64
    ng = Layer.conv("n", K=4, C=4, R=3, S=3, Y=10, X=10, layer_type=LayerType.NGCONV, G=32)
    assert ng.true_macs == 32 * 4 * 4 * 9 * 64
    assert ng.tensor_sizes()["output"] == 32 * 4 * 8 * 8


def test_invalid_layer_dimensions_are_rejected():
    with pytest.raises(MappingError, match="positive integer"):
        Layer.conv("bad", K=0, C=3, R=3, S=3, Y=8, X=8)


def test_non_positive_directive_sizes_are_errors_per_design():
    layer = Layer.conv("L", K=16, C=16, R=3, S=3, Y=18, X=18)
    base = (S(1, 1, "K"), T(DimSize("R"), DimSize("R"), "R"), T(DimSize("S"), DimSize("S"), "S"),
            T(DimSize("R"), 1, "Y"), T(DimSize("S"), 1, "X"))
    with pytest.raises(MappingError, match="not a positive integer"):
        evaluate(layer, Dataflow.of(*base, T(0, 1, "C")), Accelerator(num_pes=4))
    batch = evaluate_batch(layer, Dataflow.of(*base, T(Hole("c"), Hole("c"), "C")), holes={"c": [0, 2, -1]},
                           num_pes=4)
    assert [bool(e) for e in batch.error] == [True, False, True]
    assert "not a positive integer" in batch.error[0] and batch.runtime_cycles[1] > 0


def test_shared_class_structure_is_reused_and_never_mutated():
    """The reference engine memoises each level's class structure; a second evaluation must reuse it
    and get the same figures (the cached arrays are read-only, so an in-place write would raise)."""
    from costmodel import engine
    first = evaluate(*worked_example(), engine="reference")
    hits = engine._structure.cache_info().hits
    batch = evaluate_batch(*worked_example()[:2], num_pes=[4, 2, 4], noc_bw=[2, 2, 8], noc_hop_latency=1,
                           engine="reference")
    again = evaluate(*worked_example(), engine="reference")
    assert engine._structure.cache_info().hits > hits
    assert again == first == batch.row(0)


def test_grouped_any_matches_a_plain_loop():
    from costmodel.engine import _group_any, _Grouping
    rng = np.random.default_rng(7)
    for _ in range(50):
        k, batch = int(rng.integers(1, 40)), int(rng.integers(1, 9))
        n_groups = int(rng.integers(1, k + 1))           # every group has at least one class
        group = np.concatenate([np.arange(n_groups), rng.integers(0, n_groups, k - n_groups)])
        rng.shuffle(group)
        mask = rng.random((k, batch)) < 0.2
        expected = np.zeros((n_groups, batch), dtype=bool)
        for row, g in enumerate(group):
            expected[g] |= mask[row]
        assert np.array_equal(_group_any(mask, _Grouping.of(group, n_groups)), expected)
