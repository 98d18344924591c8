"""Input limits (costmodel.limits): negative and huge numbers refused where they are read, sizes kept
within what the int64 engine can count, files that are not text or never end refused, and every shipped
network and dataflow well inside the limits."""

from __future__ import annotations

import numpy as np
import pytest

from costmodel import (
    Accelerator,
    Layer,
    LayerType,
    MappingError,
    ParseError,
    SpecError,
    evaluate,
    limits,
    parse_dataflow,
    parse_hw,
    parse_network,
    read_dataflow,
    read_hw,
    read_network,
)
from costmodel.networks import BUILTIN, bundled_dataflow

LAYER = """Network n {
Layer a {
Type: CONV
Stride { X: STRIDE, Y: 1 }
Dimensions { K: KDIM, C: 8, R: 3, S: 3, Y: 10, X: 10 }
Dataflow {
SpatialMap(SSIZE,1) K;
TemporalMap(2,TOFS) C;
TemporalMap(Sz(R),Sz(R)) R;
TemporalMap(Sz(S),Sz(S)) S;
TemporalMap(Sz(R),1) Y;
TemporalMap(Sz(S),1) X;
Cluster(CLUSTER, P);
SpatialMap(1,1) C;
}
}
}
"""
GOOD = {"STRIDE": "1", "KDIM": "16", "SSIZE": "1", "TOFS": "2", "CLUSTER": "4"}
LINE = {"STRIDE": 4, "KDIM": 5, "SSIZE": 7, "TOFS": 8, "CLUSTER": 13}


def network(**values) -> str:
    text = LAYER
    for key, value in {**GOOD, **values}.items():
        text = text.replace(key, value)
    return text


def only_error(text: str) -> ParseError:
    net = parse_network(text, file="n.m")
    assert len(net.layers) == 1 and net.layers[0].layer is None
    return net.layers[0].error


def test_the_template_is_good():
    net = parse_network(network(), file="n.m")
    assert net.layers[0].error is None
    assert evaluate(net.layers[0].layer, net.layers[0].dataflow, Accelerator(num_pes=16)).error == ""


@pytest.mark.parametrize("key", sorted(GOOD))
def test_negative_numbers_are_refused_not_read_as_positive(key):
    # MAESTRO's tokenizer drops the "-" of -32; reading the positive value would be a silent wrong number.
    error = only_error(network(**{key: "-" + GOOD[key]}))
    assert error.line == LINE[key] and f"got -{GOOD[key]}" in str(error)
    assert str(error).startswith(f"n.m:{LINE[key]}:")


@pytest.mark.parametrize("key", sorted(GOOD))
def test_zero_and_huge_numbers_are_refused_with_their_line(key):
    assert "positive integer, got 0" in str(only_error(network(**{key: "0"})))
    for huge in (str(1 << 62), str(1 << 80)):
        error = only_error(network(**{key: huge}))
        assert error.line == LINE[key] and "above the limit" in str(error)
    error = only_error(network(**{key: "9" * 5000}))       # Python's int() refuses > 4300 digits
    assert error.line == LINE[key] and "more than 30 digits" in str(error)


def test_a_dash_that_does_not_start_a_number_still_separates():
    text = network().replace("SpatialMap(1,1) K;", "SpatialMap(1,1)-> K;")
    assert parse_network(text).layers[0].error is None


def test_negative_and_huge_values_in_hardware_files():
    for text, what in (("num_pes: -4", "got -4"), ("num_pes: 0", "got 0"),
                       (f"l2_size_cstr: {1 << 62}", "above the limit"),
                       ("NoC_NumHops: 5000", "above the limit"),
                       ("noc_bw_cstr: 1e6", "got '1e6'")):
        with pytest.raises(ParseError, match=what) as info:
            parse_hw(text, file="hw.m")
        assert info.value.line == 1
    assert parse_hw("num_pes: 1048576\nl2_size_cstr: 68719476736").num_pes == limits.MAX_PES


def test_repeat_counts_and_templates_are_bounded():
    text = network().replace("Type: CONV", "Type: CONV\n//@repeat -3")
    assert "got -3" in str(only_error(text))
    text = network().replace("Type: CONV", f"Type: CONV\n//@repeat {limits.MAX_REPEAT + 1}")
    assert "above the limit" in str(only_error(text))
    with pytest.raises(ParseError, match="got -2"):
        parse_dataflow("Dataflow { SpatialMap(1,1) K; TemporalMap(?c,-2) C; }")


def test_layers_check_their_sizes_and_that_they_have_an_output():
    with pytest.raises(MappingError, match="smaller than the filter R"):
        Layer.conv("a", K=8, C=8, R=3, S=3, Y=2, X=10)
    with pytest.raises(MappingError, match="product of the dimensions"):
        Layer.gemm("g", M=1 << 16, N=1 << 16, K=1 << 16)             # 2^48 > 2^44
    with pytest.raises(MappingError, match="above the limit"):
        Layer.gemm("g", M=limits.MAX_DIM + 1, N=1, K=1)
    with pytest.raises(MappingError, match="repeat count"):
        Layer.gemm("g", M=4, N=4, K=4, count=limits.MAX_REPEAT + 1)
    with pytest.raises(MappingError, match="positive integer"):
        Layer.gemm("g", M=True, N=4, K=4)
    assert Layer.gemm("g", M=np.int64(8), N=4, K=4).true_macs == 128
    big = Layer.gemm("g", M=1 << 14, N=1 << 15, K=1 << 15)           # exactly the limit
    assert big.work == limits.MAX_LAYER_WORK


def test_accelerator_fields_and_the_noc_latency_product_are_bounded():
    for name, (low, high) in limits.ACCELERATOR_LIMITS.items():
        Accelerator(**{name: high})
        with pytest.raises(SpecError, match="above the limit") as info:
            Accelerator(**{name: high + 1})
        assert info.value.key == name
        with pytest.raises(SpecError):
            Accelerator(**{name: low - 1})
    with pytest.raises(SpecError, match="head latency"):
        Accelerator(noc_hops=64, noc_hop_latency=64)
    assert limits.MAX_CAPACITY < 1 << 40 and limits.MAX_BANDWIDTH < 1 << 40   # below UNLIMITED


def test_overlapping_or_oversized_maps_that_would_overflow_int64_are_refused():
    layer = Layer.gemm("g", M=1 << 14, N=1 << 14, K=1 << 14)
    # Each level re-walks a half-size window one step at a time: ~2^13 x 2^13 steps per dimension.
    overlap = "".join(f"TemporalMap({1 << 13},1) {d}; " for d in "MNK")
    flow = f"Dataflow {{ SpatialMap(1,1) M; {overlap} Cluster(2,P); {overlap} SpatialMap(1,1) N; }}"
    with pytest.raises(MappingError, match="iterates up to") as info:
        limits.check_mapping(layer, parse_dataflow(flow))
    assert info.value.layer == "g"
    # Maps far larger than their dimensions: MAESTRO counts the map's size in the tile volumes.
    huge = f"SpatialMap({1 << 24},{1 << 24}) N; TemporalMap({1 << 24},{1 << 24}) K;"
    oversized = parse_dataflow(f"Dataflow {{ TemporalMap(1,1) M; {huge} }}")
    limits.check_mapping(Layer.gemm("s", M=16, N=16, K=16), oversized)    # 16 steps x 2^48: fine
    with pytest.raises(MappingError, match="largest tile"):
        limits.check_mapping(Layer.gemm("s", M=4096, N=16, K=16), oversized)
    # In a file, the error names the layer's line.
    dims = f"Dimensions {{ M: {1 << 14}, N: {1 << 14}, K: {1 << 14} }}"
    text = f"Network n {{\nLayer g {{ Type: GEMM {dims}\n{flow} }}\n}}\n"
    error = parse_network(text, file="o.m").layers[0].error
    assert error.line == 2 and "iterates up to" in str(error)


def test_every_shipped_network_and_dataflow_is_well_inside_the_limits():
    dataflows = [read_dataflow(p) for p in sorted(bundled_dataflow("x").parent.glob("*.m"))]
    concrete = [d for d in dataflows if not d.holes]
    worst = 0
    for name, factory in BUILTIN.items():
        net = factory()
        assert limits.network_problem([(la.work, la.count) for la in net.layers]) is None, name
        for layer in net.layers:
            assert layer.work <= limits.MAX_LAYER_WORK >> 8, (name, layer.name)
            for df in concrete:
                bound = limits.mapping_bound(layer.full_dims(), df)
                if bound is not None:
                    worst = max(worst, bound[0] * bound[1])
    assert 0 < worst <= limits.MAX_ITERATION_VOLUME >> 8
    for layer in read_network("costmodel/data/resnet50_kcp_ws.m").layers:
        assert layer.error is None


def test_files_that_are_not_text_or_never_end_are_refused(tmp_path, monkeypatch):
    for path, what in (("/dev/zero", "is a device"), (str(tmp_path), "is a directory"),
                       (str(tmp_path / "missing.m"), "cannot read file")):
        for reader in (read_network, read_hw, read_dataflow):
            with pytest.raises(ParseError, match=what):
                reader(path)
    binary = tmp_path / "b.m"
    binary.write_bytes(b"Network n {\x00\x01\x02")
    with pytest.raises(ParseError, match="binary data"):
        read_network(binary)
    latin = tmp_path / "l.m"
    latin.write_bytes(b"Network caf\xe9 { }")
    with pytest.raises(ParseError, match="not UTF-8"):
        read_network(latin)
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 1 << 20)
    big = tmp_path / "big.m"
    big.write_text("//" + "x" * (1 << 20))
    with pytest.raises(ParseError, match="larger than the limit"):
        limits.read_limited(big, lambda reason: ParseError(reason, file=str(big)),
                            limit=limits.MAX_FILE_BYTES)


def test_layer_types_are_unchanged_by_the_checks():
    # DSCONV/TRCONV/NGCONV keep their shapes; the filter check only concerns given input sizes.
    Layer(name="d", layer_type=LayerType.DSCONV, dims=(("K", 1), ("C", 8), ("R", 3), ("S", 3), ("Y'", 1),
                                                       ("X'", 1)))
    Layer(name="t", layer_type=LayerType.TRCONV, dims=(("K", 4), ("C", 4), ("R", 3), ("S", 3), ("Y", 3),
                                                       ("X", 3)))
