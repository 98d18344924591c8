"""Built-in networks: MACs, weights and layer counts against published figures; repeat counts; every
layer evaluates with a shipped dataflow; ``load_network``; ``dse networks``.

Published figures are rounded; a total "matches" a figure when it lies within half a unit of the
figure's last digit (what rounding it would give), unless a test says otherwise.
"""

from __future__ import annotations

import argparse

import pytest

from costmodel import (
    Accelerator,
    LayerType,
    ParseError,
    SpecError,
    evaluate_batch,
    parse_network,
    read_dataflow,
)
from costmodel.networks import (
    BUILTIN,
    DATA,
    alexnet,
    bert_base,
    bundled_dataflow,
    gpt2_decode,
    gpt2_prefill,
    maestro_text,
    mobilenetv2,
    resnet50,
    resnet50_v1_5,
    unet,
    vgg16,
)
from costmodel.workloads import load_network, merge_repeats
from studies.commands import networks as networks_cmd


def rounds_to(value: float, published: float, unit: float) -> bool:
    """``value`` rounds to ``published`` given to a precision of ``unit``."""
    return abs(value - published) <= unit / 2


def macs(net, select=lambda layer: True) -> int:
    return sum(la.true_macs * la.count for la in net.layers if select(la))


def weights(net, select=lambda layer: True) -> int:
    return sum(la.tensor_sizes()["weight"] for la in net.layers if select(la) for _ in range(la.count))


def is_fc(layer) -> bool:
    return layer.name.startswith("fc")


# Sze, Chen, Yang & Emer, "Efficient Processing of Deep Neural Networks: A Tutorial and Survey",
# Proc. IEEE 105(12), 2017, Table IV (MACs and weights of CONV and FC layers, 224x224 inputs):
# network: (CONV MACs, FC MACs, total MACs, CONV weights, FC weights) with their rounding units.
SZE_TABLE_IV = {
    "alexnet": ((666e6, 1e6), (58.6e6, 0.1e6), (724e6, 1e6), (2.3e6, 0.1e6), (58.6e6, 0.1e6)),
    "vgg16": ((15.3e9, 0.1e9), (124e6, 1e6), (15.5e9, 0.1e9), (14.7e6, 0.1e6), (124e6, 1e6)),
    "resnet50": ((3.86e9, 0.01e9), (2.0e6, 0.1e6), (3.9e9, 0.1e9), (23.5e6, 0.1e6), (2.0e6, 0.1e6)),
}


@pytest.mark.parametrize("name", sorted(SZE_TABLE_IV))
def test_cnn_macs_and_weights_match_sze_et_al(name):
    net = BUILTIN[name]()
    conv_macs, fc_macs, total, conv_w, fc_w = SZE_TABLE_IV[name]
    conv = lambda la: not is_fc(la)  # noqa: E731
    assert rounds_to(macs(net, conv), *conv_macs)
    assert rounds_to(macs(net, is_fc), *fc_macs)
    assert rounds_to(net.total_macs, *total)
    assert rounds_to(weights(net, conv), *conv_w)
    assert rounds_to(weights(net, is_fc), *fc_w)


def test_exact_cnn_totals():
    # regression values of the shapes (the figures above are their rounded forms)
    assert alexnet().total_macs == 724_406_816
    assert vgg16().total_macs == 15_470_264_320
    assert resnet50().total_macs == 3_857_973_248
    assert resnet50_v1_5().total_macs == 4_089_184_256
    assert mobilenetv2().total_macs == 300_774_272
    assert unet().total_macs == 150_428_424_448


def test_mobilenetv2_macs_match_sandler_et_al():
    # Sandler et al., CVPR 2018, Table 4: MobileNetV2 (width 1.0, 224x224) "300M" multiply-adds. The
    # paper quotes a round figure (the reference implementation's count, 300.8M, is the same network),
    # so we accept 0.5 %.
    assert mobilenetv2().total_macs == pytest.approx(300e6, rel=5e-3)


def test_unet_macs_follow_figure_1():
    # Ronneberger et al., MICCAI 2015, Fig. 1, written out by hand: (output channels, input channels,
    # filter size, output map size) of each convolution; up-convolutions 2x2 (input map size).
    convs = [(64, 1, 3, 570), (64, 64, 3, 568), (128, 64, 3, 282), (128, 128, 3, 280), (256, 128, 3, 138),
             (256, 256, 3, 136), (512, 256, 3, 66), (512, 512, 3, 64), (1024, 512, 3, 30),
             (1024, 1024, 3, 28), (512, 1024, 3, 54), (512, 512, 3, 52), (256, 512, 3, 102),
             (256, 256, 3, 100), (128, 256, 3, 198), (128, 128, 3, 196), (64, 128, 3, 390), (64, 64, 3, 388),
             (2, 64, 1, 388)]
    upconvs = [(512, 1024, 28), (256, 512, 52), (128, 256, 100), (64, 128, 196)]
    expected = (sum(k * c * r * r * o * o for k, c, r, o in convs)
                + sum(k * c * 2 * 2 * i * i for k, c, i in upconvs))
    net = unet()
    assert net.total_macs == expected
    # "In total the network has 23 convolutional layers"; the output segmentation map is 388x388x2
    assert net.num_layers == 23
    assert sum(la.layer_type is LayerType.TRCONV for la in net.layers) == 4
    last = net.layers[-1]
    assert (last.size("K"), last.output_size("Y"), last.output_size("X")) == (2, 388, 388)


def test_layer_counts_match_the_papers():
    assert alexnet().num_layers == 8            # 5 convolutional + 3 fully connected
    assert vgg16().num_layers == 16             # configuration D: 13 conv + 3 FC
    r50 = resnet50()                            # 50 weighted layers + 4 projection shortcuts
    assert r50.num_layers - sum("proj" in la.name for la in r50.layers) == 50
    assert mobilenetv2().num_layers == 53       # Table 2: conv, 17 bottlenecks (2 or 3 convs), 2 x 1x1


def test_resnet50_v1_5_moves_the_stride_to_the_3x3_convolutions():
    # torchvision's resnet50 (v1.5): 4.09 GFLOPS in its documentation, counting multiply-adds.
    assert resnet50_v1_5().total_macs == pytest.approx(4.09e9, rel=1e-3)
    v1 = {la.name: la for la in resnet50().layers}
    v15 = {la.name: la for la in resnet50_v1_5().layers}
    assert v1.keys() == v15.keys()
    for stage in (3, 4, 5):
        a, b = f"conv{stage}_1_a", f"conv{stage}_1_b"
        assert (v1[a].stride("Y"), v1[b].stride("Y")) == (2, 1)
        assert (v15[a].stride("Y"), v15[b].stride("Y")) == (1, 2)
        assert v15[a].output_size("Y") == 2 * v15[b].output_size("Y") == 2 * v1[b].output_size("Y")
    changed = {n for n in v1 if v1[n] != v15[n]}
    assert changed == {f"conv{s}_1_{x}" for s in (3, 4, 5) for x in "ab"}


def test_builtin_names_as_papers_spell_them():
    assert load_network("ResNet-50").name == "resnet50"
    assert load_network("ResNet-50 v1.5").name == "resnet50_v1_5"
    assert load_network("BERT-base").name == "bert_base"
    assert load_network("GPT-2 prefill").name == "gpt2_prefill"
    with pytest.raises(SpecError, match=r"'ResNet-51' is neither .* did you mean resnet50\?"):
        load_network("ResNet-51")


def test_repeat_counts():
    counts = {la.name: la.count for la in resnet50().layers}
    assert [counts[f"conv{s}_x_b"] for s in (2, 3, 4, 5)] == [2, 3, 5, 2]   # 3, 4, 6, 3 blocks
    counts = {la.name: la.count for la in mobilenetv2().layers}
    assert [counts[f"b{s}_x_dw"] for s in (2, 3, 4, 5, 6)] == [1, 2, 3, 2, 2]
    assert "b1_x_dw" not in counts and "b7_x_dw" not in counts
    assert {la.name: la.count for la in bert_base().layers} == {
        "q_proj": 12, "k_proj": 12, "v_proj": 12, "attn_qk": 144, "attn_av": 144, "o_proj": 12,
        "ffn1": 12, "ffn2": 12}
    assert {la.name: la.count for la in vgg16().layers}["conv3_x"] == 2


def test_depthwise_layers_are_dsconv_with_k_1_and_alexnet_groups_are_ngconv():
    dw = [la for la in mobilenetv2().layers if la.name.endswith("_dw")]
    assert sum(la.count for la in dw) == 17   # one per bottleneck
    assert all(la.layer_type is LayerType.DSCONV and la.size("K") == 1 for la in dw)
    groups = {la.name: la.size("G") for la in alexnet().layers if la.layer_type is LayerType.NGCONV}
    assert groups == {"conv2": 2, "conv4": 2, "conv5": 2}
    assert [la.output_size("Y") for la in alexnet().layers[:5]] == [55, 27, 13, 13, 13]


# --------------------------------------------------------------------------------- transformers
def bert_formula(n: int, h: int = 768, layers: int = 12) -> int:
    """L·(4·n·h² + 2·n²·h + 2·n·h·4h): Q/K/V/O projections, QKᵀ and AV, the two FFN GEMMs."""
    return layers * (4 * n * h * h + 2 * n * n * h + 2 * n * h * 4 * h)


@pytest.mark.parametrize("n", [128, 512])
def test_bert_base_macs_follow_the_formula(n):
    assert bert_base(n).total_macs == bert_formula(n)


def test_bert_base_known_totals():
    assert bert_base().total_macs == 48_318_382_080      # 48.3 G MACs at 512 tokens
    assert bert_base(128).total_macs == 11_173_625_856   # 11.2 G MACs = 22.3 GFLOPs at 128 tokens
    assert bert_base().layers[0].dim_map == {"M": 512, "N": 768, "K": 768}
    assert bert_base().num_layers == 12 * (4 + 2 * 12 + 2)


WEIGHT_GEMMS = ("q_proj", "k_proj", "v_proj", "o_proj", "ffn1", "ffn2", "qkv_proj", "mlp_fc", "mlp_proj")


def gemm_weights(net) -> int:
    """Parameters of the weight matrices (B of the projection GEMMs), repeats counted."""
    return sum(la.size("K") * la.size("N") * la.count for la in net.layers if la.name in WEIGHT_GEMMS)


def test_bert_base_weights_add_up_to_the_published_parameter_count():
    # Devlin et al., NAACL 2019, Sect. 3: BERT-base has 110M parameters; the released checkpoint
    # (google-research/bert uncased_L-12_H-768_A-12) has exactly 109,482,240. Add to the GEMMs' weights
    # what the GEMMs do not hold: embeddings (30522 words, 512 positions, 2 segments), their layer norm,
    # per layer the 6 bias vectors and 2 layer norms, and the pooler.
    h, L = 768, 12
    embeddings = (30522 + 512 + 2) * h + 2 * h
    per_layer = (4 * h + 4 * h + h) + 2 * 2 * h
    pooler = h * h + h
    total = gemm_weights(bert_base()) + embeddings + L * per_layer + pooler
    assert total == 109_482_240
    assert rounds_to(total, 110e6, 1e6 * 10)   # "110M": two significant figures


def test_gpt2_weights_add_up_to_the_published_parameter_count():
    # openai/gpt-2 releases GPT-2 small as model "124M" (Radford et al. 2019, Table 2, print 117M);
    # the checkpoint has 124,439,808 parameters. The LM head is tied to the token embedding.
    h, L, vocab, ctx = 768, 12, 50257, 1024
    net = gpt2_prefill()
    lm_head = next(la for la in net.layers if la.name == "lm_head")
    assert lm_head.size("K") * lm_head.size("N") == vocab * h
    per_layer = (3 * h + h + 4 * h + h) + 2 * 2 * h    # biases, 2 layer norms
    total = gemm_weights(net) + vocab * h + ctx * h + L * per_layer + 2 * h
    assert total == 124_439_808
    assert rounds_to(total, 124e6, 1e6)


def test_gpt2_prefill_and_decode_macs():
    h, L, vocab = 768, 12, 50257
    non_embedding = 12 * L * h * h     # QKV, projection and MLP weights (Kaplan et al. 2020, Table 1)
    for n in (128, 512, 1024):
        assert gpt2_prefill(n).total_macs == n * non_embedding + L * 2 * n * n * h + h * vocab
    for ctx in (0, 511, 512):
        # one token: every weight once (N + the de-embedding, Kaplan et al. Table 1 in MACs) plus QKᵀ
        # and AV over the cached tokens and itself
        assert gpt2_decode(ctx).total_macs == non_embedding + h * vocab + L * 2 * (ctx + 1) * h
    decode = {la.name: la for la in gpt2_decode().layers}
    assert all(la.size("M") == 1 for la in decode.values())
    assert decode["attn_qk"].dim_map == {"M": 1, "N": 513, "K": 64} and decode["attn_qk"].count == 144
    assert gpt2_decode().total_macs == 132_987_648
    assert gpt2_prefill().total_macs == 48_356_979_456


# ------------------------------------------------------------------------------- every network
def test_registry():
    assert set(BUILTIN) == {"alexnet", "vgg16", "resnet50", "resnet50_v1_5", "mobilenetv2", "unet",
                            "bert_base", "gpt2_prefill", "gpt2_decode"}
    for name, factory in BUILTIN.items():
        net = factory()
        assert name == name.lower() and net.name == name and net.source
        assert len({la.name for la in net.layers}) == len(net.layers)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_unique_shapes_keep_macs_and_layers(name):
    net = BUILTIN[name]()
    shapes = net.unique_shapes()
    assert len({la.shape_key for la in shapes}) == len(shapes) <= len(net.layers)
    assert sum(la.true_macs * la.count for la in shapes) == net.total_macs
    assert sum(la.count for la in shapes) == net.num_layers


def test_unique_shapes_merge_identical_layers():
    shapes = {la.name: la.count for la in bert_base().unique_shapes()}
    assert shapes == {"q_proj": 48, "attn_qk": 144, "attn_av": 144, "ffn1": 12, "ffn2": 12}
    # ResNet-50: conv2_1_b and conv2_x_b are the same 3x3 convolution
    assert {la.name: la.count for la in resnet50().unique_shapes()}["conv2_1_b"] == 3


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_layer_evaluates_with_a_shipped_dataflow(name):
    conv = read_dataflow(bundled_dataflow("kcp_ws"))
    gemm = read_dataflow(bundled_dataflow("gemm_mnk"))
    acc = Accelerator(num_pes=256)
    for layer in BUILTIN[name]().unique_shapes():
        dataflow = gemm if layer.layer_type is LayerType.GEMM else conv
        cost = evaluate_batch(layer, dataflow, accelerator=acc).row(0)
        assert not cost.error, (layer.name, cost.error)
        assert cost.num_macs == cost.true_macs == layer.true_macs
        assert cost.runtime_cycles * 256 >= layer.true_macs


def test_gemm_dataflow_keeps_all_pes_busy_on_bert():
    gemm = read_dataflow(bundled_dataflow("gemm_mnk"))
    net = bert_base()
    cycles = sum(evaluate_batch(la, gemm, accelerator=Accelerator(num_pes=256)).row(0).runtime_cycles
                 * la.count for la in net.layers)
    assert cycles == net.total_macs // 256


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_maestro_text_round_trips_with_repeat_counts(name):
    net = BUILTIN[name]()
    parsed = parse_network(maestro_text(net, None))
    assert parsed.name == name and [m.layer for m in parsed.layers] == list(net.layers)


# -------------------------------------------------------------------------------- load_network
def test_load_network_builtin_and_maestro_file(tmp_path):
    loaded = load_network("ResNet50")
    assert loaded.name == "resnet50" and all(df is None for _, df in loaded.layers)
    assert loaded.total_macs == resnet50().total_macs
    from_file = load_network(DATA / "resnet50_kcp_ws.m")
    assert [la for la, _ in from_file.layers] == list(resnet50().layers)
    kcp = read_dataflow(bundled_dataflow("kcp_ws"))
    assert all(df == kcp for _, df in from_file.layers)
    merged = merge_repeats(from_file.layers)
    assert len(merged) == len(resnet50().unique_shapes())
    assert sum(la.count for la, _ in merged) == 54


def test_load_network_errors(tmp_path):
    with pytest.raises(SpecError, match="neither a built-in network"):
        load_network("resnet51")
    bad = tmp_path / "bad.m"
    bad.write_text("Network n {\n Layer a { Type: CONV Dimensions { K: 0 } }\n"
                   " Layer b { Type: POOL }\n}\n")
    with pytest.raises(ParseError, match=r"and 1 more unreadable layer") as info:
        load_network(bad)
    assert info.value.file == str(bad) and info.value.line == 2
    with pytest.raises(ParseError, match="cannot read file"):
        load_network(tmp_path / "missing.m")


# ------------------------------------------------------------------------------- dse networks
def run_networks(capsys, *argv) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="dse")
    networks_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["networks", *argv])
    code = args.run(args)
    return code, capsys.readouterr().out


def test_dse_networks_lists_every_builtin(capsys):
    code, out = run_networks(capsys)
    assert code == 0
    for name, factory in BUILTIN.items():
        net = factory()
        line = next(row for row in out.splitlines() if row.startswith(name + " "))
        assert f"{net.total_macs:,}" in line and f" {net.num_layers} " in line
    code, out = run_networks(capsys, "--format", "csv")
    assert out.splitlines()[0] == "network,entries,distinct_shapes,layers,macs,source"
    assert "vgg16,13,12,16,15470264320," in out and "resnet50,30,21,54,3857973248," in out


def test_dse_networks_shows_one_network(capsys):
    code, out = run_networks(capsys, "bert_base")
    assert code == 0 and ("bert_base: 8 layer entries (5 distinct shapes), 360 layers per inference, "
                          "48,318,382,080 MACs") in out
    # The list and the network's own view count alike.
    _, listed = run_networks(capsys)
    row = next(line for line in listed.splitlines() if line.startswith("resnet50 "))
    _, one = run_networks(capsys, "resnet50")
    assert row.split()[1:4] == ["30", "21", "54"]
    assert one.startswith("resnet50: 30 layer entries (21 distinct shapes), 54 layers per inference")
    assert "M=512 N=512 K=64" in out
