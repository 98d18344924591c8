"""Reading and writing MAESTRO .m files: grammar, errors with positions, round trips."""

from __future__ import annotations

import pytest

from costmodel import (
    Accelerator,
    DimSize,
    Hole,
    LayerType,
    ParseError,
    format_dataflow_template,
    format_hw,
    format_network,
    parse_dataflow,
    parse_hw,
    parse_network,
    read_network,
)
from costmodel.networks import DATA, bundled_dataflow, maestro_text, resnet50
from tests.costmodel_tests.fidelity import MAPPING_DIR

NET = """
// comment line
Constant KT 16;
Network demo {
  Layer L1 {
    Type: CONV
    Stride { X: 2, Y: 2 }
    Dimensions { K: 32, C: 3, R: 3, S: 3, Y: 33, X: 33 }
    Dataflow {
      SpatialMap(1,1) K;          // trailing comment
      TemporalMap(KT,KT) C;
      TemporalMap(Sz(R),Sz(R)) R;
      TemporalMap(Sz(S),Sz(S)) S;
      TemporalMap(Sz(R),1) Y;
      TemporalMap(?tx,?tx) X';
      Cluster(4, P);
      SpatialMap(1,1) C;
    }
  }
  Layer L2 {
    Type: GEMM
    //@repeat 3
    Dimensions { M: 8, N: 16, K: 32 }
  }
}
"""


def test_grammar_constants_sz_holes_and_inherited_dataflow():
    net = parse_network(NET, file="demo.m")
    assert net.name == "demo" and [m.name for m in net.layers] == ["L1", "L2"]
    l1, l2 = net.layers
    assert l1.layer.layer_type is LayerType.CONV and l1.layer.stride("X") == 2
    assert dict(l1.layer.dims) == {"K": 32, "C": 3, "R": 3, "S": 3, "Y": 33, "X": 33}
    d = l1.dataflow.directives
    assert d[1].size == 16 and d[2].size == DimSize("R") and d[5].size == Hole("tx")
    assert d[5].dim == "X'" and d[6].is_cluster and d[6].size == 4
    assert l1.dataflow.holes == ("tx",) and l1.dataflow.num_levels == 2
    # A layer without a Dataflow block takes the previous layer's dataflow as written (Q9).
    assert l2.dataflow == l1.dataflow and l2.layer.count == 3


@pytest.mark.parametrize("text, line, column, message", [
    ("Network n {\n Layer a {\n Type: POOL\n Dimensions { K: 1 }\n }\n}", 3, 8, "POOL is not supported"),
    ("Network n {\n Layer a {\n Type: CONV\n Dimensions { K: 0 }\n }\n}", 4, 18, "positive integer"),
    ("Network n {\n Layer a {\n Type: CONV\n Dimensions { K: 4 }\n Dataflow { Spatial(1,1) K; }\n }\n}",
     5, 13, "unknown directive 'Spatial'"),
    ("Network n {\n Layer a {\n Type: CONV\n Dimensions { K: 4 }\n Dataflow { TemporalMap(1,1) K; "
     "Cluster(2,P); }\n }\n}", 5, 47, "cannot end with a Cluster"),
])
def test_layer_errors_name_line_and_column(text, line, column, message):
    net = parse_network(text, file="bad.m")
    err = net.layers[0].error
    assert isinstance(err, ParseError) and err.file == "bad.m"
    assert (err.line, err.column) == (line, column)
    assert message in str(err) and str(err).startswith(f"bad.m:{line}:{column}: ")


def test_one_bad_layer_does_not_lose_the_others():
    text = NET.replace("Type: GEMM", "Type: LSTM").replace("Layer L1", "Layer L0 { Type: FC }\n  Layer L1")
    net = parse_network(text)
    assert [m.name for m in net.layers] == ["L0", "L1", "L2"]
    assert net.layers[0].error is not None and net.layers[1].error is None
    assert net.layers[2].error is not None and "LSTM" in str(net.layers[2].error)


def test_file_level_errors():
    with pytest.raises(ParseError, match="no Network block"):
        parse_network("Constant A 3;")
    with pytest.raises(ParseError, match=r"missing.m: cannot read file"):
        read_network("missing.m")
    with pytest.raises(ParseError, match=r"x.m:1:1: unexpected 'Netwrk'"):
        parse_network("Netwrk n { }", file="x.m")
    with pytest.raises(ParseError, match="unexpected end of file"):
        parse_network("Network n {\n Layer a {\n Type: CONV")


def test_hw_file_semantics_and_round_trip():
    acc = parse_hw("num_pes: 256\nl1_size_cstr: 100\nl2_size_cstr: 3000\nnoc_bw_cstr: 1000\n"
                   "offchip_bw_cstr: 50\n")
    # MAESTRO: absent NoC_NumHops means a 1-cycle head latency (with one hop).
    assert acc == Accelerator(num_pes=256, l1_size=100, l2_size=3000, noc_bw=1000, offchip_bw=50,
                              noc_hop_latency=1, noc_hops=1)
    assert parse_hw(format_hw(acc)) == acc
    with pytest.raises(ParseError, match="unknown hardware key 'num_pe'"):
        parse_hw("num_pe: 3")


def test_dataflow_template_round_trip():
    template = parse_dataflow(bundled_dataflow("kcp_ws").read_text())
    assert parse_dataflow(format_dataflow_template(template)) == template


MAPPING_FILES = [*sorted(MAPPING_DIR.glob("*.m")), DATA / "resnet50_kcp_ws.m"]


@pytest.mark.parametrize("path", MAPPING_FILES, ids=lambda p: p.name)
def test_round_trip_parse_write_parse(path):
    net = read_network(path)
    pairs = [(m.layer, m.dataflow) for m in net.layers if m.error is None]
    again = parse_network(format_network(net.name, pairs))
    assert [(m.layer, m.dataflow) for m in again.layers] == pairs


def test_bundled_network_file_is_the_generated_one():
    expected = maestro_text(resnet50(), parse_dataflow(bundled_dataflow("kcp_ws").read_text()))
    assert (DATA / "resnet50_kcp_ws.m").read_text() == expected
