"""Template spaces: hole domains, enumeration, encoding, shipped templates, exhaustive search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from costmodel import Accelerator, Layer, evaluate, evaluate_batch, parse_dataflow
from costmodel.errors import SpecError
from costmodel.networks import resnet50
from search import ExhaustiveSearcher, Problem
from spaces import TemplateSpace
from spaces.mapping import Point, divisors
from spaces.template import load_template, shipped_templates

SHIPPED = ("kcp_ws", "kcp_ws_holes", "rs", "yxp_os", "xp_ws", "nlr")
WITH_HOLES = ("kcp_ws_holes", "rs", "yxp_os", "xp_ws", "nlr")


def df(body: str):
    return parse_dataflow("Dataflow {\n" + body + "\n}")


def conv(**dims) -> Layer:
    return Layer.conv("L", **dims)


# A stride-2 3x3 layer: input 9 x 11 -> output 4 x 5.
STRIDED = conv(K=12, C=18, R=3, S=3, Y=9, X=11, stride=2)
ROWS_COLS = df("""
    TemporalMap(?k,?k) K;
    SpatialMap(?yo,?yo) Y';
    TemporalMap(?xo,?xo) X';
    TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
""")


# ------------------------------------------------------------------------------ domain inference
def test_map_holes_take_divisors_and_clusters_divisors_of_pes():
    layer = conv(K=64, C=48, R=3, S=3, Y=58, X=58)
    space = TemplateSpace(layer, load_template("kcp_ws_holes"), 12)
    assert space.holes == ("c", "p")
    assert space.domains["c"] == tuple(divisors(48)) == (1, 2, 3, 4, 6, 8, 12, 16, 24, 48)
    assert space.domains["p"] == (1, 2, 3, 4, 6, 12)


def test_output_rows_and_columns_use_the_strided_output_size():
    assert STRIDED.output_size("Y") == 4 and STRIDED.output_size("X") == 5
    space = TemplateSpace(STRIDED, ROWS_COLS, 8)
    assert space.domains == {"k": (1, 2, 3, 4, 6, 12), "yo": (1, 2, 4), "xo": (1, 5)}
    anyt = TemplateSpace(STRIDED, ROWS_COLS, 8, tiles="any")
    assert anyt.domains == {"k": tuple(range(1, 13)), "yo": (1, 2, 3, 4), "xo": (1, 2, 3, 4, 5)}


def test_input_rows_and_columns_use_the_input_size():
    template = df("TemporalMap(?ty,?oy) Y; SpatialMap(?tx,1) X; TemporalMap(Sz(R),Sz(R)) R; "
                  "TemporalMap(Sz(S),Sz(S)) S;")
    space = TemplateSpace(STRIDED, template, 8)
    assert space.domains == {"ty": (1, 3, 9), "oy": (1, 3, 9), "tx": (1, 11)}
    assert TemplateSpace(STRIDED, template, 8, tiles="any").domains["tx"] == tuple(range(1, 12))


def test_layers_given_with_output_sizes():
    layer = Layer(name="L", layer_type=STRIDED.layer_type,
                  dims=(("K", 4), ("C", 4), ("R", 3), ("S", 3), ("Y'", 6), ("X'", 10)))
    space = TemplateSpace(layer, ROWS_COLS, 4)
    assert space.domains["yo"] == (1, 2, 3, 6) and space.domains["xo"] == (1, 2, 5, 10)


def test_a_hole_used_in_several_places_takes_the_common_values():
    # ?x is the output-column tile and the cluster size: divisors of 56 and of 256.
    layer = conv(K=64, C=64, R=3, S=3, Y=58, X=58)
    space = TemplateSpace(layer, load_template("yxp_os"), 256)
    assert space.domains["x"] == (1, 2, 4, 8)
    assert [u.what for u in space.uses["x"]] == ["size", "offset", "cluster"]
    both = df("TemporalMap(?t,?t) K; SpatialMap(?t,?t) C; TemporalMap(Sz(R),Sz(R)) R; "
              "TemporalMap(Sz(S),Sz(S)) S;")
    assert TemplateSpace(STRIDED, both, 8).domains["t"] == (1, 2, 3, 6)      # K 12, C 18
    assert TemplateSpace(STRIDED, both, 8, tiles="any").domains["t"] == tuple(range(1, 13))


def test_filter_maps_in_time_must_cover_the_filter():
    template = df("SpatialMap(1,1) K; TemporalMap(?r,?r) R; SpatialMap(?s,?s) S;")
    assert TemplateSpace(STRIDED, template, 8).domains == {"r": (3,), "s": (1, 3)}
    clash = df("TemporalMap(?r,?r) R; SpatialMap(?r,?r) K;")
    with pytest.raises(SpecError) as err:
        TemplateSpace(conv(K=4, C=2, R=3, S=3, Y=6, X=6), clash, 8)
    assert err.value.key == "r" and "fits all its uses" in str(err.value)


def test_explicit_domains_replace_inference():
    space = TemplateSpace(STRIDED, ROWS_COLS, 8, domains={"k": [6, 2, 2, 5], "yo": np.array([3])})
    assert space.domains == {"k": (2, 5, 6), "yo": (3,), "xo": (1, 5)}
    assert space.explicit == {"k", "yo"}
    assert "given" in space.describe()


@pytest.mark.parametrize(("domains", "key", "text"), [
    ({"q": [1]}, "q", "no hole ?q"),
    ({"k": []}, "k", "empty domain"),
    ({"xo": [0, 1]}, "xo", "positive integers"),
    ({"xo": [1.5]}, "xo", "positive integers"),
    ({"yo": 3}, "yo", "list of positive integers"),
])
def test_bad_domains_are_errors_naming_the_key(domains, key, text):
    with pytest.raises(SpecError) as err:
        TemplateSpace(STRIDED, ROWS_COLS, 8, domains=domains)
    assert err.value.key == key and text in str(err.value)


def test_a_hole_on_a_dimension_the_layer_lacks_needs_an_explicit_domain():
    template = df("TemporalMap(?n,?n) N; SpatialMap(1,1) K; TemporalMap(Sz(R),Sz(R)) R; "
                  "TemporalMap(Sz(S),Sz(S)) S;")
    with pytest.raises(SpecError) as err:
        TemplateSpace(STRIDED, template, 8)
    assert err.value.key == "n" and "does not have" in str(err.value)
    assert TemplateSpace(STRIDED, template, 8, domains={"n": [1]}).count() == 1


def test_bad_options():
    with pytest.raises(SpecError) as err:
        TemplateSpace(STRIDED, ROWS_COLS, 8, tiles="powers")
    assert err.value.key == "tiles"
    with pytest.raises(SpecError):
        TemplateSpace(STRIDED, ROWS_COLS, 0)


# ---------------------------------------------------------------------------------- enumeration
@pytest.mark.parametrize("size", [1, 7, 36, 1000])
def test_chunks_enumerate_every_binding_once(size):
    space = TemplateSpace(STRIDED, ROWS_COLS, 8)
    assert space.count() == 6 * 3 * 2
    rows = []
    for structure, holes in space.chunks(size):
        assert structure == 0
        assert list(holes) == list(space.holes)
        n = len(holes["k"])
        assert 1 <= n <= size and all(len(v) == n for v in holes.values())
        for h, v in holes.items():
            assert v.dtype == np.int64 and set(v.tolist()) <= set(space.domains[h])
        rows += list(zip(*(v.tolist() for v in holes.values()), strict=True))
    assert len(rows) == space.count() == len(set(rows))
    assert rows == list(itertools.product(*space.domains.values()))      # last hole fastest


@pytest.mark.parametrize("name", WITH_HOLES)
def test_count_matches_chunks_for_shipped_templates(name):
    layer = next(x for x in resnet50().layers if x.name == "conv3_x_b")
    space = TemplateSpace.from_template(layer, name, 256)
    assert space.count() == sum(len(next(iter(h.values()))) for _, h in space.chunks(50))
    assert space.count() == int(np.prod([len(v) for v in space.domains.values()]))


def test_a_template_without_holes_is_one_point():
    space = TemplateSpace(STRIDED, load_template("kcp_ws"), 256)
    assert space.count() == 1 and space.parameters() == {}
    assert list(space.chunks()) == [(0, {})]
    point = space.decode({})
    assert point == Point(0, ()) and space.dataflow(point) == load_template("kcp_ws")


# ------------------------------------------------------------------------------------- encoding
def test_parameters_decode_and_encode_round_trip():
    space = TemplateSpace(STRIDED, ROWS_COLS, 8)
    params = space.parameters()
    assert params == {"k": 6, "yo": 3, "xo": 2}
    for combo in itertools.product(*(range(n) for n in params.values())):
        p = dict(zip(params, combo, strict=True))
        point = space.decode(p)
        assert point.structure == 0 and [h for h, _ in point.values] == list(space.holes)
        assert all(point.value_map()[h] == space.domains[h][p[h]] for h in space.holes)
        assert space.encode(point) == p and space.encode(point.value_map()) == p
        assert space.point_of(point.value_map()) == point
        bound = space.dataflow(point)
        assert bound.holes == () and bound == ROWS_COLS.bind(point.value_map())


def test_decode_and_encode_reject_bad_input():
    space = TemplateSpace(STRIDED, ROWS_COLS, 8)
    for bad, key in (({"k": 6, "yo": 0, "xo": 0}, "k"), ({"k": 0, "yo": 0}, "xo"),
                     ({"k": 0, "yo": 0, "xo": 0, "z": 0}, "z"), ({"k": -1, "yo": 0, "xo": 0}, "k")):
        with pytest.raises(SpecError) as err:
            space.decode(bad)
        assert err.value.key == key
    with pytest.raises(SpecError) as err:
        space.encode({"k": 5, "yo": 1, "xo": 1})
    assert err.value.key == "k" and "not in its domain" in str(err.value)


def test_sample_is_reproducible_and_inside_the_domains():
    space = TemplateSpace(STRIDED, ROWS_COLS, 8)
    a = space.sample(np.random.default_rng(7), 50)
    b = space.sample(np.random.default_rng(7), 50)
    assert a == b and len(a) == 50
    assert a != space.sample(np.random.default_rng(8), 50)
    for p in a:
        assert p.structure == 0 and all(v in space.domains[h] for h, v in p.values)
    assert len({p.values for p in a}) > 10


def test_describe_names_every_hole():
    text = TemplateSpace(STRIDED, ROWS_COLS, 8).describe()
    assert "?k in {1, 2, 3, 4, 6, 12}" in text and "?xo" in text and "36 points" in text


# ----------------------------------------------------------------------------- shipped templates
def test_shipped_templates_and_loading(tmp_path):
    shipped = shipped_templates()
    assert set(SHIPPED) <= set(shipped)
    for name in SHIPPED:
        text = shipped[name].read_text()
        assert text.lstrip().startswith("//") and "Source:" in text and "Dataflow {" in text
        assert load_template(name) == load_template(shipped[name]) == load_template(str(shipped[name]))
    assert "Eyeriss" in shipped["rs"].read_text() and "MICRO 2019" in shipped["yxp_os"].read_text()
    mine = tmp_path / "mine.m"
    mine.write_text("Dataflow { SpatialMap(?a,?a) K; }")
    assert load_template(mine).holes == ("a",)
    with pytest.raises(SpecError) as err:
        load_template("no_such_template")
    assert err.value.key == "template"


def test_kcp_ws_is_kcp_ws_holes_with_64_and_64():
    assert load_template("kcp_ws_holes").bind({"c": 64, "p": 64}) == load_template("kcp_ws")


LAYERS = ("conv1", "conv2_x_b", "conv3_1_a", "conv4_x_c", "conv5_x_b")
ACC = Accelerator(num_pes=256)


@pytest.mark.parametrize("layer_name", LAYERS)
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_templates_evaluate_on_resnet50_layers(name, layer_name):
    layer = next(x for x in resnet50().layers if x.name == layer_name)
    template = load_template(name)
    space = TemplateSpace(layer, template, ACC.num_pes)
    first = None
    for _, holes in space.chunks(4096):
        cost = evaluate_batch(layer, template, accelerator=ACC, holes=holes)
        ok = np.nonzero(np.asarray(cost.error) == "")[0]
        if len(ok):
            first = {h: int(v[ok[0]]) for h, v in holes.items()}
            break
    assert first is not None, f"no binding of {name} evaluates on {layer_name}"
    cost = evaluate(layer, space.dataflow(space.point_of(first)), ACC)
    assert cost.runtime_cycles > 0 and cost.num_macs >= layer.true_macs


# --------------------------------------------------------------------------------------- search
@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_exhaustive_search_over_a_template_matches_brute_force(objective):
    layer = Layer.conv("small", K=8, C=12, R=3, S=3, Y=8, X=8)
    acc = Accelerator(num_pes=16)
    template = load_template("kcp_ws_holes")
    space = TemplateSpace(layer, template, acc.num_pes)
    assert space.count() == 6 * 5

    key = "runtime_cycles" if objective == "latency" else "energy_nj"
    brute = []
    for values in itertools.product(*space.domains.values()):
        binding = dict(zip(space.holes, values, strict=True))
        brute.append((float(getattr(evaluate(layer, template.bind(binding), acc), key)), binding))
    best_value = min(v for v, _ in brute)
    best_binding = next(b for v, b in brute if v == best_value)       # first in enumeration order

    result = ExhaustiveSearcher(top_k=3, chunk=7).search(Problem(space, acc, (objective,)))
    assert result.status == "optimal" and result.evaluations == space.count()
    top = result.best[0]
    assert top.values[0] == pytest.approx(best_value)
    assert top.point.value_map() == best_binding
    assert top.dataflow == template.bind(best_binding)
    assert [f.values[0] for f in result.best] == sorted(v for v, _ in brute)[:3]
