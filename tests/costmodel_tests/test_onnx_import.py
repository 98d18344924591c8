"""ONNX import: models built in code with onnx.helper import to the expected layer shapes and MACs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from costmodel import Layer, LayerType, ParseError, SpecError, evaluate_batch, read_dataflow, read_network
from costmodel.accelerator import Accelerator
from costmodel.networks import bundled_dataflow
from costmodel.onnx_import import import_onnx, read_onnx
from costmodel.workloads import load_network
from studies.commands import import_onnx as import_cmd

FLOAT = TensorProto.FLOAT


def weight(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def ints(name: str, *values: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def save(tmp_path, nodes, inputs, inits, name="model", opset=17, extra_opsets=()) -> str:
    """A checked ONNX model with the given nodes; its output is the last node's first output (its type
    and shape from shape inference, or a float tensor of unknown rank-1 shape if it has none)."""
    graph = helper.make_graph(nodes, name, inputs, [], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])
    inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(model).graph.value_info}
    out = nodes[-1].output[0]
    model.graph.output.append(inferred.get(out) or helper.make_tensor_value_info(out, FLOAT, ["unknown"]))
    onnx.checker.check_model(model)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return str(path)


def by_name(network) -> dict[str, Layer]:
    return {layer.name: layer for layer in network.layers}


# ------------------------------------------------------------------------------- ResNet-style block
def resnet_block(tmp_path) -> str:
    """conv 3x3 pad 1 -> relu -> conv 3x3 stride 2 pad 1, a 1x1 stride-2 projection shortcut, add, relu,
    then two identical 3x3 convolutions (merged on import) on a 1x64x56x56 input."""
    x = helper.make_tensor_value_info("x", FLOAT, [1, 64, 56, 56])
    nodes = [
        helper.make_node("Conv", ["x", "w_a"], ["a"], name="block/conv_a", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["a_r"]),
        helper.make_node("Conv", ["a_r", "w_b", "b_b"], ["b"], name="block/conv_b", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Conv", ["x", "w_p"], ["p"], name="block/proj", kernel_shape=[1, 1], strides=[2, 2]),
        helper.make_node("Add", ["b", "p"], ["s"]),
        helper.make_node("Relu", ["s"], ["s_r"]),
        helper.make_node("Conv", ["s_r", "w_c1"], ["c1"], name="block/conv_c1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["c1_r"]),
        helper.make_node("Conv", ["c1_r", "w_c2"], ["c2"], name="block/conv_c2", pads=[1, 1, 1, 1]),
    ]
    inits = [weight("w_a", 64, 64, 3, 3), weight("w_b", 128, 64, 3, 3), weight("b_b", 128),
             weight("w_p", 128, 64, 1, 1), weight("w_c1", 128, 128, 3, 3), weight("w_c2", 128, 128, 3, 3)]
    return save(tmp_path, nodes, [x], inits, name="resnet_block")


def test_resnet_block_shapes_and_macs(tmp_path):
    result = import_onnx(resnet_block(tmp_path))
    net = result.network
    layers = by_name(net)
    assert list(layers) == ["conv_a", "conv_b", "proj", "conv_c1"]
    assert layers["conv_a"] == Layer.conv("conv_a", K=64, C=64, R=3, S=3, Y=58, X=58)
    assert layers["conv_b"] == Layer.conv("conv_b", K=128, C=64, R=3, S=3, Y=58, X=58,
                                                stride=2)
    assert layers["proj"] == Layer.conv("proj", K=128, C=64, R=1, S=1, Y=56, X=56, stride=2)
    # the two identical 3x3 convolutions are one layer with count 2
    assert layers["conv_c1"] == Layer.conv("conv_c1", K=128, C=128, R=3, S=3, Y=30, X=30,
                                                 count=2)
    assert [layers[n].output_size("Y") for n in layers] == [56, 28, 28, 28]
    expected = (64 * 64 * 9 * 56 * 56 + 128 * 64 * 9 * 28 * 28 + 128 * 64 * 28 * 28
                + 2 * 128 * 128 * 9 * 28 * 28)
    assert net.total_macs == expected == 411_041_792
    assert net.num_layers == 5
    assert result.unsupported == []
    assert result.skipped == ["Relu x3", "Add x1"]


def test_imported_block_evaluates_and_round_trips_through_a_maestro_file(tmp_path):
    path = resnet_block(tmp_path)
    out = tmp_path / "block.m"
    args = parse_cli(["import", path, "--output", str(out), "--dataflow", "kcp_ws"])
    assert args.run(args) == 0
    text = out.read_text()
    assert "//@repeat 2" in text and "Skipped (no MACs): Relu x3, Add x1." in text
    net = read_network(out)
    network, _ = read_onnx(path)
    assert [m.layer for m in net.layers] == list(network.layers)
    kcp = read_dataflow(bundled_dataflow("kcp_ws"))
    for mapped in net.layers:
        assert mapped.dataflow == kcp
        cost = evaluate_batch(mapped.layer, mapped.dataflow, accelerator=Accelerator(num_pes=256)).row(0)
        assert not cost.error and cost.num_macs == mapped.layer.true_macs


def test_import_without_dataflow_writes_no_dataflow_blocks(tmp_path, capsys):
    args = parse_cli(["import", resnet_block(tmp_path)])
    assert args.run(args) == 0
    out, err = capsys.readouterr()
    assert "Network resnet_block {" in out and "Dataflow" not in out
    assert "4 distinct layers, 5 per inference, 411,041,792 MACs" in err


def test_weights_in_an_external_data_file(tmp_path, monkeypatch):
    model = onnx.load(resnet_block(tmp_path))
    (tmp_path / "ext").mkdir()
    path = tmp_path / "ext" / "block.onnx"
    onnx.save_model(model, path, save_as_external_data=True, location="block.bin", size_threshold=0)
    monkeypatch.chdir(tmp_path)  # the weights are found next to the model, not in the working directory
    assert read_onnx(path)[0].total_macs == 411_041_792


def test_load_network_accepts_onnx(tmp_path):
    loaded = load_network(resnet_block(tmp_path))
    assert loaded.name == "resnet_block" and len(loaded.layers) == 4
    assert all(df is None for _, df in loaded.layers)
    assert loaded.total_macs == 411_041_792


# ------------------------------------------------------------------------------- transformer block
def transformer_block(tmp_path, *, batch=1, seq=16, hidden=32, heads=4, ffn=128, symbolic=False) -> str:
    """Q/K/V projections (MatMul on [batch, seq, hidden]), per-head attention as batched MatMuls with a
    Softmax, the output projection, a residual Add and LayerNormalization, and the feed-forward
    network as a Gemm (transB, PyTorch's Linear) and a MatMul."""
    d = hidden // heads
    dims = ["batch", "seq", hidden] if symbolic else [batch, seq, hidden]
    x = helper.make_tensor_value_info("x", FLOAT, dims)
    nodes = [helper.make_node("MatMul", ["x", f"w_{p}"], [p], name=f"attn/{p}_proj") for p in "qkv"]
    for p in "qkv":
        nodes += [helper.make_node("Reshape", [p, "heads_shape"], [f"{p}_h"]),
                  helper.make_node("Transpose", [f"{p}_h"], [f"{p}_t"],
                                   perm=[0, 2, 3, 1] if p == "k" else [0, 2, 1, 3])]
    nodes += [
        helper.make_node("MatMul", ["q_t", "k_t"], ["scores"], name="attn/qk"),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v_t"], ["ctx"], name="attn/av"),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx_t", "model_shape"], ["ctx_m"]),
        helper.make_node("MatMul", ["ctx_m", "w_o"], ["o"], name="attn/o_proj"),
        helper.make_node("Add", ["o", "x"], ["res"]),
        helper.make_node("LayerNormalization", ["res", "ln_scale", "ln_bias"], ["ln"], axis=-1),
        helper.make_node("Reshape", ["ln", "rows_shape"], ["rows"]),
        helper.make_node("Gemm", ["rows", "w_ffn1", "b_ffn1"], ["h1"], name="ffn/fc1", transB=1),
        helper.make_node("Relu", ["h1"], ["h1_r"]),
        helper.make_node("MatMul", ["h1_r", "w_ffn2"], ["h2"], name="ffn/fc2"),
    ]
    inits = [*(weight(f"w_{p}", hidden, hidden) for p in "qkvo"),
             ints("heads_shape", 0, 0, heads, d), ints("model_shape", 0, 0, hidden),
             ints("rows_shape", -1, hidden), weight("ln_scale", hidden), weight("ln_bias", hidden),
             weight("w_ffn1", ffn, hidden), weight("b_ffn1", ffn), weight("w_ffn2", ffn, hidden)]
    return save(tmp_path, nodes, [x], inits, name="transformer_block")


def test_transformer_block_shapes_and_macs(tmp_path):
    n, h, heads, ffn = 16, 32, 4, 128
    d = h // heads
    result = import_onnx(transformer_block(tmp_path))
    layers = by_name(result.network)
    assert layers == {
        # Q, K, V and O projections: one shape, count 4 (the batch of 1 folded into M)
        "q_proj": Layer.gemm("q_proj", M=n, K=h, N=h, count=4),
        # per head: scores Q·Kᵀ and A·V, count = heads
        "qk": Layer.gemm("qk", M=n, K=d, N=n, count=heads),
        "av": Layer.gemm("av", M=n, K=n, N=d, count=heads),
        "fc1": Layer.gemm("fc1", M=n, K=h, N=ffn),
        "fc2": Layer.gemm("fc2", M=n, K=ffn, N=h),
    }
    # one encoder layer of the BERT formula: 4·n·h² + 2·n²·h + 2·n·h·ffn
    assert result.network.total_macs == 4 * n * h * h + 2 * n * n * h + 2 * n * h * ffn == 212_992
    assert result.unsupported == []
    assert "Softmax x1" in result.skipped and "LayerNormalization x1" in result.skipped
    gemm = read_dataflow(bundled_dataflow("gemm_mnk"))
    for layer in layers.values():
        cost = evaluate_batch(layer, gemm, accelerator=Accelerator(num_pes=256)).row(0)
        assert not cost.error and cost.num_macs == layer.true_macs


def test_batched_projection_folds_batch_into_m_and_attention_counts_batch_times_heads(tmp_path):
    layers = by_name(read_onnx(transformer_block(tmp_path, batch=2))[0])
    assert layers["q_proj"].dim_map == {"M": 32, "N": 32, "K": 32}
    assert layers["qk"].count == 8 and layers["qk"].dim_map == {"M": 16, "N": 16, "K": 8}
    assert layers["fc1"].dim_map == {"M": 32, "N": 128, "K": 32}


def test_symbolic_dimensions(tmp_path):
    path = transformer_block(tmp_path, symbolic=True)
    with pytest.raises(ParseError, match=r"symbolic dimension 'seq'.*--dim seq=N"):
        read_onnx(path)
    result = import_onnx(path, dims={"seq": 16})
    assert result.network.total_macs == 212_992
    assert any("'batch'" in note and "taken as 1" in note for note in result.notes)
    assert import_onnx(path, dims={"seq": 16, "batch": 3}).network.total_macs == 3 * 212_992
    args = parse_cli(["import", path, "--dim", "seq=16", "--output", str(tmp_path / "t.m")])
    assert args.run(args) == 0
    with pytest.raises(SpecError):
        import_onnx(path, dims={"seq": 0})


def test_gemm_trans_a(tmp_path):
    a = helper.make_tensor_value_info("a", FLOAT, [5, 3])  # stored K x M
    nodes = [helper.make_node("Gemm", ["a", "b"], ["y"], name="g", transA=1)]
    layer, = read_onnx(save(tmp_path, nodes, [a], [weight("b", 5, 7)]))[0].layers
    assert layer.dim_map == {"M": 3, "N": 7, "K": 5}


def test_matmul_vector_operands(tmp_path):
    v = helper.make_tensor_value_info("v", FLOAT, [16])
    nodes = [helper.make_node("MatMul", ["v", "w"], ["y"], name="mv")]
    layer, = read_onnx(save(tmp_path, nodes, [v], [weight("w", 16, 4)]))[0].layers
    assert layer.dim_map == {"M": 1, "N": 4, "K": 16}


# ----------------------------------------------------------------------------- convolution variants
def conv_model(tmp_path, w_shape, x_shape=(1, 32, 16, 16), name="conv", op="Conv", **attrs) -> str:
    x = helper.make_tensor_value_info("x", FLOAT, list(x_shape))
    nodes = [helper.make_node(op, ["x", "w"], ["y"], name=name, **attrs)]
    return save(tmp_path, nodes, [x], [weight("w", *w_shape)], name=name)


@pytest.mark.parametrize(("w_shape", "group", "layer_type", "dims"), [
    ((32, 1, 3, 3), 32, LayerType.DSCONV, {"K": 1, "C": 32}),            # depthwise
    ((64, 1, 3, 3), 32, LayerType.NGCONV, {"G": 32, "K": 2, "C": 1}),    # depthwise, multiplier 2
    ((64, 8, 3, 3), 4, LayerType.NGCONV, {"G": 4, "K": 16, "C": 8}),     # grouped
    ((64, 32, 3, 3), 1, LayerType.CONV, {"K": 64, "C": 32}),
])
def test_conv_groups(tmp_path, w_shape, group, layer_type, dims):
    layer, = read_onnx(conv_model(tmp_path, w_shape, group=group, pads=[1, 1, 1, 1]))[0].layers
    assert layer.layer_type is layer_type
    assert layer.dim_map == {**dims, "R": 3, "S": 3, "Y": 18, "X": 18}
    assert layer.true_macs == w_shape[0] * w_shape[1] * 9 * 16 * 16


def test_asymmetric_pads_stride_and_same_upper(tmp_path):
    layer, = read_onnx(conv_model(tmp_path, (8, 32, 3, 3), x_shape=(1, 32, 112, 112), strides=[2, 2],
                                  auto_pad="SAME_UPPER"))[0].layers
    assert layer.dim_map["Y"] == 113 and layer.output_size("Y") == 56  # TensorFlow-style: one pad row
    layer, = read_onnx(conv_model(tmp_path, (8, 32, 3, 5), x_shape=(2, 32, 10, 20),
                                  pads=[0, 2, 1, 2], strides=[1, 2]))[0].layers
    assert layer.dim_map == {"N": 2, "K": 8, "C": 32, "R": 3, "S": 5, "Y": 11, "X": 24}
    assert (layer.output_size("Y"), layer.output_size("X")) == (9, 10)


def test_conv_1d(tmp_path):
    layer, = read_onnx(conv_model(tmp_path, (16, 32, 5), x_shape=(1, 32, 100), pads=[2, 2]))[0].layers
    assert layer.dim_map == {"K": 16, "C": 32, "R": 1, "S": 5, "Y": 1, "X": 104}
    assert layer.true_macs == 16 * 32 * 5 * 100


def test_conv_transpose_is_trconv_in_scatter_form(tmp_path):
    path = conv_model(tmp_path, (64, 32, 2, 2), x_shape=(1, 64, 14, 14), op="ConvTranspose", strides=[2, 2])
    layer, = read_onnx(path)[0].layers
    assert layer.layer_type is LayerType.TRCONV
    assert layer.dim_map == {"K": 32, "C": 64, "R": 2, "S": 2, "Y": 15, "X": 15} and layer.count == 1
    assert layer.true_macs == 64 * 32 * 2 * 2 * 14 * 14  # C_in · C_out · R · S · H_in · W_in
    grouped = conv_model(tmp_path, (64, 16, 3, 3), x_shape=(1, 64, 14, 14), op="ConvTranspose",
                         name="grouped", group=2, strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    result = import_onnx(grouped)
    layer, = result.network.layers
    assert layer.dim_map == {"K": 16, "C": 32, "R": 3, "S": 3, "Y": 16, "X": 16} and layer.count == 2
    assert result.network.total_macs == 64 * (2 * 16) // 2 * 9 * 14 * 14
    assert any("2 groups" in note for note in result.notes)


# ------------------------------------------------------------------------------------------ dilation
def test_dilation_is_modelled_by_phase_decomposition(tmp_path):
    # 3x3, dilation 2, pad 2 on 16x16: two phases of 10 rows per axis, each an 8x8 output
    result = import_onnx(conv_model(tmp_path, (8, 32, 3, 3), dilations=[2, 2], pads=[2, 2, 2, 2]))
    layer, = result.network.layers
    assert layer.dim_map == {"K": 8, "C": 32, "R": 3, "S": 3, "Y": 10, "X": 10} and layer.count == 4
    assert result.network.total_macs == 8 * 32 * 9 * 16 * 16
    assert any("dilation 2x2" in note for note in result.notes)
    # odd size 15 (padded 19): phases of 10 and 9 rows, four distinct shapes
    net, _ = read_onnx(conv_model(tmp_path, (8, 32, 3, 3), x_shape=(1, 32, 15, 15), name="odd",
                                  dilations=[2, 2], pads=[2, 2, 2, 2]))
    assert sorted((la.dim_map["Y"], la.dim_map["X"]) for la in net.layers) == [(9, 9), (9, 10), (10, 9),
                                                                               (10, 10)]
    assert net.total_macs == 8 * 32 * 9 * 15 * 15
    # dilation on rows only, stride 2 on columns
    net, _ = read_onnx(conv_model(tmp_path, (8, 32, 3, 3), name="rows", dilations=[3, 1],
                                  pads=[3, 1, 3, 1], strides=[1, 2]))
    assert net.total_macs == 8 * 32 * 9 * 16 * 8


def test_dilation_with_stride_is_refused_naming_the_node(tmp_path):
    path = conv_model(tmp_path, (8, 32, 3, 3), name="aspp", dilations=[2, 2], strides=[2, 2],
                      pads=[2, 2, 2, 2])
    with pytest.raises(ParseError, match=r"node aspp \(Conv\): dilation 2 with stride 2"):
        read_onnx(path)


# ----------------------------------------------------------------------- unsupported and bad files
def unsupported_model(tmp_path) -> str:
    x = helper.make_tensor_value_info("x", FLOAT, [4, 8])
    nodes = [
        helper.make_node("Einsum", ["x", "w"], ["e1"], equation="ij,jk->ik"),
        helper.make_node("Einsum", ["e1", "w"], ["e2"], equation="ij,jk->ik"),
        helper.make_node("CustomOp", ["e2"], ["c"], domain="com.example"),
        helper.make_node("MatMul", ["c", "w"], ["y"], name="mm"),
    ]
    return save(tmp_path, nodes, [x], [weight("w", 8, 8)], name="unsupported",
                extra_opsets=[helper.make_opsetid("com.example", 1)])


def test_unsupported_operators_are_listed_with_counts(tmp_path):
    path = unsupported_model(tmp_path)
    # the custom op's output shape is unknown, so feed the MatMul from a known tensor instead
    model = onnx.load(path)
    model.graph.node[3].input[0] = "e2"
    onnx.save(model, path)
    net, unsupported = read_onnx(path)
    # Each Einsum multiplies 4x8 by 8x8: 256 MACs, against the MatMul's 256.
    assert unsupported == ["Einsum x2 (512 MACs, 66.7 % of the model)",
                           "com.example::CustomOp x1 (MACs unknown)"]
    assert [layer.dim_map for layer in net.layers] == [{"M": 4, "N": 8, "K": 8}]
    with pytest.raises(ParseError, match=r"unsupported operators: Einsum x2 \(512 MACs, 66.7 % of the "
                                         r"model\), com.example::CustomOp x1 \(MACs unknown\)"):
        read_onnx(path, strict=True)
    args = parse_cli(["import", path, "--strict"])
    with pytest.raises(ParseError):
        args.run(args)


def test_unknown_shape_names_the_node(tmp_path):
    with pytest.raises(ParseError, match=r"node mm \(MatMul\): the shape of 'c' is unknown"):
        read_onnx(unsupported_model(tmp_path))


def test_three_d_conv_is_unsupported(tmp_path):
    path = conv_model(tmp_path, (8, 4, 3, 3, 3), x_shape=(1, 4, 8, 8, 8), name="c3d")
    x = onnx.load(path)
    x.graph.node.append(helper.make_node("MatMul", ["m", "w2"], ["z"], name="mm"))
    x.graph.input.append(helper.make_tensor_value_info("m", FLOAT, [2, 3]))
    x.graph.initializer.append(weight("w2", 3, 5))
    onnx.save(x, path)
    net, unsupported = read_onnx(path)
    # 8 filters of 4x3x3x3 over a 6x6x6 output: 186,624 MACs, against the MatMul's 30.
    assert unsupported == ["Conv (3-D) x1 (186,624 MACs, > 99.9 % of the model)"] and len(net.layers) == 1


def unchecked_conv(tmp_path, x_shape, k=3, **attrs) -> str:
    """A Conv model saved as given: shape inference and the checker would refuse some of these."""
    x = helper.make_tensor_value_info("x", FLOAT, list(x_shape))
    y = helper.make_tensor_value_info("y", FLOAT, ["unknown"])
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs)
    graph = helper.make_graph([node], "g", [x], [y], initializer=[weight("w", 8, x_shape[1], k, k)])
    path = tmp_path / "unchecked.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


@pytest.mark.parametrize(("x_shape", "attrs", "message"), [
    ((1, 4, -1, 8), {"pads": [1, 1, 1, 1]}, ".x. has a dimension of size -1"),       # was -3,456 MACs
    ((1, 4, 0, 8), {}, ".x. has a dimension of size 0"),
    ((1, 4, 8, 8), {"dilations": [0, 0]}, r"dilations \[0, 0\] must be positive"),
    ((1, 4, 8, 8), {"pads": [-2, 0, -2, 0]}, "pads .* must be non-negative"),
    ((1, 4, 2, 2), {}, "the kernel spans 3 .* padded input is only 2"),
    ((1, 4, 8, 8), {"group": 0}, "group 0 must be positive"),
    ((1, 4, 8, 8), {"strides": [0, 1]}, "strides .* must be positive"),
])
def test_impossible_convolutions_are_refused_naming_the_node(tmp_path, x_shape, attrs, message):
    with pytest.raises(ParseError, match=r"node c \(Conv\): " + message):
        read_onnx(unchecked_conv(tmp_path, x_shape, **attrs))


def test_an_onnx_model_beyond_the_size_limits_names_the_node(tmp_path):
    x = helper.make_tensor_value_info("x", FLOAT, [1 << 24, 1 << 12])
    w = helper.make_tensor_value_info("w", FLOAT, [1 << 12, 1 << 12])     # an input: no weights to store
    path = save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [x, w], [], name="big")
    with pytest.raises(ParseError, match=r"node mm \(MatMul\): .*above the limit"):
        read_onnx(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_malformed_files_give_a_clear_error(tmp_path, damage):
    good = resnet_block(tmp_path)
    data = Path(good).read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"this is not an ONNX model\n",
                     "empty": b""}[damage])
    with pytest.raises(ParseError, match="not a valid ONNX model") as info:
        read_onnx(bad)
    assert info.value.file == str(bad) and str(info.value).startswith(str(bad))
    assert "\n" not in str(info.value)


def test_missing_file_and_model_without_layers(tmp_path):
    with pytest.raises(ParseError, match="cannot read file"):
        read_onnx(tmp_path / "nope.onnx")
    x = helper.make_tensor_value_info("x", FLOAT, [4])
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [x], [], name="relu_only")
    with pytest.raises(ParseError, match="no Conv, ConvTranspose, Gemm, MatMul or recurrent node"):
        read_onnx(path)


def test_missing_onnx_package_names_the_extra(tmp_path, monkeypatch):
    path = resnet_block(tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    with pytest.raises(SpecError, match=r"needs the onnx package: pip install 'dataflow-dse\[onnx\]'"):
        read_onnx(path)


# ------------------------------------------------------------------------------------------ helpers
def parse_cli(argv: list[str]) -> argparse.Namespace:
    """Parse a ``dse import`` command line with the command's own parser (as studies.cli registers it)."""
    parser = argparse.ArgumentParser(prog="dse")
    import_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_every_network_command_takes_the_onnx_model_directly(tmp_path, capsys):
    from studies.cli import main

    model = resnet_block(tmp_path)
    expected = {layer.name for layer in read_onnx(model)[0].layers}
    commands = (["eval", model, "--dataflow", "kcp_ws", "--num-pes", "64", "--format", "csv"],
                ["map", model, "--num-pes", "64", "--space", "templates"],
                ["sweep", model, "--dataflow", "kcp_ws", "--num-pes", "16,64", "--noc-bw", "64",
                 "--l1-size", "512", "--l2-size", "65536"],
                ["codesign", "--network", model, "--trials", "2", "--num-pes", "16,64", "--study", "onnx",
                 "--storage", f"sqlite:///{tmp_path / 's.db'}", "--output-dir", str(tmp_path / "best")])
    for argv in commands:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert code == 0, (argv[0], err)
        if argv[0] in ("eval", "map"):
            assert all(name in out for name in expected), argv[0]
    assert all(name in (tmp_path / "best" / "mapping.m").read_text() for name in expected)


# --------------------------------------------------------------------------- models as people export them
def test_a_shape_only_model_imports_without_its_weights(tmp_path):
    model = onnx.load(resnet_block(tmp_path))
    path = tmp_path / "shapes.onnx"
    onnx.save_model(model, path, save_as_external_data=True, location="shapes.bin", size_threshold=0)
    (tmp_path / "shapes.bin").unlink()                 # shipped without its weights
    result = import_onnx(path)
    assert result.network.total_macs == 411_041_792
    assert any("shapes.bin, which is not there: imported from their shapes alone" in n for n in result.notes)
    with_weights = tmp_path / "ext.onnx"
    onnx.save_model(onnx.load(resnet_block(tmp_path)), with_weights, save_as_external_data=True,
                    location="ext.bin", size_threshold=0)
    assert not import_onnx(with_weights).notes        # weights present: nothing to say


def recurrent_model(tmp_path, op: str, *, steps=5, batch=2, inputs=12, hidden=16, direction="forward",
                    layout=0) -> str:
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    d = 2 if direction == "bidirectional" else 1
    x_shape = [batch, steps, inputs] if layout else [steps, batch, inputs]
    x = helper.make_tensor_value_info("x", FLOAT, x_shape)
    nodes = [helper.make_node(op, ["x", "w", "r"], ["y"], name=f"/encoder/rnn/{op}", hidden_size=hidden,
                              direction=direction, layout=layout),
             helper.make_node("Gemm", ["h", "w_fc"], ["z"], name="/classifier/classifier.1/Gemm", transB=1)]
    inits = [weight("w", d, gates * hidden, inputs), weight("r", d, gates * hidden, hidden),
             weight("w_fc", 10, hidden)]
    h = helper.make_tensor_value_info("h", FLOAT, [batch, hidden])
    return save(tmp_path, nodes, [x, h], inits, name=op.lower(), opset=17 if not layout else 14)


@pytest.mark.parametrize(("op", "gates"), [("LSTM", 4), ("GRU", 3), ("RNN", 1)])
def test_recurrent_cells_import_as_their_gate_gemms(tmp_path, op, gates):
    steps, batch, inputs, hidden = 5, 2, 12, 16
    result = import_onnx(recurrent_model(tmp_path, op))
    layers = by_name(result.network)
    assert layers["rnn"] == Layer.gemm("rnn", M=batch, K=inputs + hidden, N=gates * hidden, count=steps)
    assert layers["rnn"].true_macs * steps == steps * batch * gates * hidden * (inputs + hidden)
    assert result.unsupported == [] and any(f"{steps} time step(s) x 1 direction(s)" in n
                                            for n in result.notes)
    both = by_name(import_onnx(recurrent_model(tmp_path, op, direction="bidirectional", layout=1)).network)
    assert both["rnn"].count == 2 * steps and both["rnn"].dim_map == layers["rnn"].dim_map


def test_a_recurrent_weight_that_does_not_match_names_the_node(tmp_path):
    path = recurrent_model(tmp_path, "LSTM")
    model = onnx.load(path)
    next(a for a in model.graph.node[0].attribute if a.name == "hidden_size").i = 8   # weights for 16
    onnx.save(model, path)
    with pytest.raises(ParseError, match=r"node /encoder/rnn/LSTM \(LSTM\): weight \[1, 64, 12\]"):
        read_onnx(path)


def test_layer_names_are_short_module_paths():
    from costmodel.onnx_import import short_names

    nodes = [("/features/features.0/Conv", "Conv"), ("/features/features.18/features.18.0/Conv", "Conv"),
             ("/layer1/layer1.0/conv1/Conv", "Conv"), ("/layer2/layer2.0/conv1/Conv", "Conv"),
             ("/classifier/classifier.6/Gemm", "Gemm"), ("/fc/Gemm", "Gemm"), ("", "MatMul"),
             ("/0/Conv", "Conv"),
             ("/bert/encoder/layer.0/attention/self/query/MatMul", "MatMul"),
             ("/bert/encoder/layer.1/attention/self/query/MatMul", "MatMul")]
    assert short_names(nodes) == ["features.0", "features.18.0", "layer1.0.conv1", "layer2.0.conv1",
                                  "classifier.6", "fc", "matmul_6", "conv.0", "layer.0.attention.self.query",
                                  "layer.1.attention.self.query"]
    assert max(len(n) for n in short_names(nodes)) < 30
