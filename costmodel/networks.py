"""Networks: ordered layers, each with a repeat count, and built-in definitions.

Layer shapes follow the networks' published definitions (the source is named on each). Padding is
folded into the input size, the way MAESTRO files expect unpadded inputs: a 3x3 convolution with
padding 1 on a 56x56 map has Y = X = 58, so its output is 56x56. Identical consecutive blocks are
written once with their count.

Conventions shared by the built-in networks (and by the ONNX importer, :mod:`costmodel.onnx_import`):

* Fully connected layers of CNNs are 1x1 convolutions on a 1x1 map (or an R x S convolution covering
  the whole last feature map, e.g. VGG's fc6 on 7x7x512), so one CONV dataflow serves the network.
* Depthwise convolutions are DSCONV with K = 1 (one filter per input channel); grouped convolutions are
  NGCONV with G groups, and K, C the output and input channels *per group*.
* Transposed convolutions are TRCONV in their *scatter* form: every input pixel is multiplied by every
  filter tap, so the layer has K output channels, C input channels, an R x S filter and
  Y = H_in + R - 1, X = W_in + S - 1 (stride 1), giving Y' x X' = H_in x W_in windows and exactly the
  C·K·R·S·H_in·W_in MACs of the transposed convolution. (The gather form on a zero-inserted input
  would count stride² times too many MACs, most of them with inserted zeros.)
* Transformers are GEMMs, A (M x K) times B (K x N); multi-head attention is one GEMM per head with
  ``count`` = heads x layers. Pooling, normalisation, softmax and element-wise operations have no
  multiply-accumulates in MAESTRO's sense and are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .layer import Layer, LayerType

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    name: str
    layers: tuple[Layer, ...]
    source: str = ""

    @property
    def total_macs(self) -> int:
        """True MACs of one inference, repeated layers counted."""
        return sum(layer.true_macs * layer.count for layer in self.layers)

    @property
    def num_layers(self) -> int:
        """Layers of one inference, repeated layers counted."""
        return sum(layer.count for layer in self.layers)

    def unique_shapes(self) -> tuple[Layer, ...]:
        """One layer per distinct shape (type, dimensions, strides), in order of first appearance.

        Each keeps the name of its first occurrence and carries the summed repeat count of all layers of
        that shape, so evaluating or searching these and weighting by ``count`` covers the network.
        """
        return unique_shapes(self.layers)


def unique_shapes(layers) -> tuple[Layer, ...]:
    """Layers with identical shapes merged into one, first name kept, repeat counts summed."""
    merged: dict[tuple, Layer] = {}
    for layer in layers:
        key = layer.shape_key
        if key in merged:
            merged[key] = replace(merged[key], count=merged[key].count + layer.count)
        else:
            merged[key] = layer
    return tuple(merged.values())


def _conv(name: str, k: int, c: int, r: int, out: int, stride: int = 1, count: int = 1, *,
          layer_type: LayerType = LayerType.CONV, groups: int | None = None) -> Layer:
    """A square convolution producing an ``out`` x ``out`` map, its input padded as 'same' padding does.

    The input extent is what the outputs need, (out - 1) x stride + r; a strided 1x1 convolution keeps
    its natural map size, out x stride. For NGCONV, ``groups`` is G and ``k``, ``c`` are per group.
    """
    size = (out - 1) * stride + r if r > 1 else out * stride
    return Layer.conv(name, K=k, C=c, R=r, S=r, Y=size, X=size, stride=stride, count=count,
                      layer_type=layer_type, G=groups)


def _valid(name: str, k: int, c: int, r: int, size: int, count: int = 1) -> Layer:
    """An unpadded ('valid') square convolution on a ``size`` x ``size`` input, stride 1."""
    return Layer.conv(name, K=k, C=c, R=r, S=r, Y=size, X=size, count=count)


def _fc(name: str, k: int, c: int) -> Layer:
    """A fully connected layer as a 1x1 convolution on a 1x1 map."""
    return Layer.conv(name, K=k, C=c, R=1, S=1, Y=1, X=1)


# ------------------------------------------------------------------------------------------- CNNs
def alexnet() -> Network:
    """AlexNet (Krizhevsky et al., "ImageNet Classification with Deep Convolutional Neural Networks",
    NeurIPS 2012, Fig. 2), the original two-GPU network on one accelerator.

    The layers the paper splits across the two GPUs without cross-connections (conv2, conv4, conv5)
    are grouped convolutions, NGCONV with G = 2; conv3 and the fully connected layers see both halves.
    The input is 227x227 (the size 11x11 windows at stride 4 need for the paper's 55x55 conv1 output;
    the paper's "224" is a known inconsistency); conv2 is padded by 2, conv3-5 by 1. 724 M MACs: 666 M
    in convolutions, 58.6 M in the fully connected layers, as in Sze et al., Proc. IEEE 2017, Table IV.
    (The single-tower variant without groups, e.g. torchvision's, has 64/192/384/256/256 channels and
    0.71 G MACs; it is not this network.)
    """
    ng = LayerType.NGCONV
    layers = (
        _conv("conv1", 96, 3, 11, 55, stride=4),
        _conv("conv2", 128, 48, 5, 27, layer_type=ng, groups=2),
        _conv("conv3", 384, 256, 3, 13),
        _conv("conv4", 192, 192, 3, 13, layer_type=ng, groups=2),
        _conv("conv5", 128, 192, 3, 13, layer_type=ng, groups=2),
        Layer.conv("fc6", K=4096, C=256, R=6, S=6, Y=6, X=6),
        _fc("fc7", 4096, 4096),
        _fc("fc8", 1000, 4096),
    )
    return Network(name="alexnet", layers=layers,
                   source="Krizhevsky et al., NeurIPS 2012, Fig. 2 (two towers as groups of 2)")


def vgg16() -> Network:
    """VGG-16 (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", ICLR 2015, Table 1, configuration D) on a 224x224 image.

    3x3 convolutions with padding 1; max pooling (not a layer here) halves the map after each stage;
    fc6 is a 7x7 convolution over the last 7x7x512 map, fc7 and fc8 1x1. 15.47 G MACs: 15.35 G in
    convolutions, 124 M in the fully connected layers (Sze et al., Proc. IEEE 2017, Table IV: 15.5 G,
    15.3 G and 124 M).
    """
    layers = [_conv("conv1_1", 64, 3, 3, 224), _conv("conv1_2", 64, 64, 3, 224)]
    in_ch = 64
    for stage, (width, n, out) in enumerate(((128, 2, 112), (256, 3, 56), (512, 3, 28), (512, 3, 14)),
                                            start=2):
        layers.append(_conv(f"conv{stage}_1", width, in_ch, 3, out))
        layers.append(_conv(f"conv{stage}_x", width, width, 3, out, count=n - 1))
        in_ch = width
    layers += [Layer.conv("fc6", K=4096, C=512, R=7, S=7, Y=7, X=7), _fc("fc7", 4096, 4096),
               _fc("fc8", 1000, 4096)]
    return Network(name="vgg16", layers=tuple(layers),
                   source="Simonyan & Zisserman, ICLR 2015, Table 1 (configuration D)")


def resnet50() -> Network:
    """ResNet-50 v1 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1).

    The original (v1) placement of the stride-2 downsampling in the first 1x1 convolution of
    conv3_1, conv4_1 and conv5_1; projection shortcuts (1x1) in the first block of each stage; the
    final fully connected layer as a 1x1 convolution. Pooling layers are not convolutions and are
    left out. 3.86 GMACs per 224x224 image (the paper rounds to 3.8e9 multiply-adds). The ResNet-50
    of torchvision and most frameworks is v1.5 (:func:`resnet50_v1_5`, 4.09 GMACs).
    """
    return _resnet50(v1_5=False)


def resnet50_v1_5() -> Network:
    """ResNet-50 v1.5, as torchvision's ``resnet50`` (and most frameworks' ResNet-50) builds it.

    The layers of :func:`resnet50` with the stride 2 of conv3_1, conv4_1 and conv5_1 moved from the
    first 1x1 convolution to the 3x3 one, which so runs on the larger input map: 4.09 GMACs per
    224x224 image (torchvision's documentation: 4.09 GFLOPS, counting multiply-adds), against v1's
    3.86. The downsampling projections keep their stride-2 1x1 convolutions.
    """
    return _resnet50(v1_5=True)


def _resnet50(*, v1_5: bool) -> Network:
    layers = [_conv("conv1", 64, 3, 7, 112, stride=2)]
    in_ch = 64
    for stage, (width, blocks, out, stride) in enumerate(
            ((64, 3, 56, 1), (128, 4, 28, 2), (256, 6, 14, 2), (512, 3, 7, 2)), start=2):
        expanded = 4 * width
        p = f"conv{stage}"
        # v1 strides the first 1x1 convolution, v1.5 the 3x3 one (whose input is then out x stride).
        a_stride, b_stride = (1, stride) if v1_5 else (stride, 1)
        layers += [
            _conv(f"{p}_1_a", width, in_ch, 1, out * b_stride, stride=a_stride),
            _conv(f"{p}_1_b", width, width, 3, out, stride=b_stride),
            _conv(f"{p}_1_c", expanded, width, 1, out),
            _conv(f"{p}_1_proj", expanded, in_ch, 1, out, stride=stride),
            _conv(f"{p}_x_a", width, expanded, 1, out, count=blocks - 1),
            _conv(f"{p}_x_b", width, width, 3, out, count=blocks - 1),
            _conv(f"{p}_x_c", expanded, width, 1, out, count=blocks - 1),
        ]
        in_ch = expanded
    layers.append(Layer.conv("fc1000", K=1000, C=2048, R=1, S=1, Y=1, X=1))
    if v1_5:
        return Network(name="resnet50_v1_5", layers=tuple(layers),
                       source="ResNet-50 v1.5 (torchvision's resnet50): stride 2 in the 3x3 convolutions")
    # The v1 source text is also the header of costmodel/data/resnet50_kcp_ws.m (generated from it).
    return Network(name="resnet50", layers=tuple(layers), source="He et al., CVPR 2016, Table 1")


# Sandler et al., Table 2: (expansion t, output channels c, repeats n, stride s of the first block).
_MOBILENETV2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenetv2() -> Network:
    """MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR
    2018, Table 2), width multiplier 1.0, 224x224 input.

    Each bottleneck is a 1x1 expansion to t x c_in channels, a 3x3 depthwise convolution (DSCONV,
    K = 1; stride 2 in the first block of a sequence where s = 2) and a 1x1 linear projection; the
    first sequence (t = 1) has no expansion convolution, as in the authors' implementation. Blocks 2..n
    of a sequence have identical shapes and are one layer each with count n - 1. Stride-2 windows are
    padded as TensorFlow's 'same' padding does (only the rows and columns the windows reach). The
    classifier is a 1x1 convolution after global pooling. 300.8 M MACs (the paper: 300 M multiply-adds,
    Table 4).
    """
    ds = LayerType.DSCONV
    layers = [_conv("conv1", 32, 3, 3, 112, stride=2)]
    in_ch, size = 32, 112
    for seq, (t, c, n, s) in enumerate(_MOBILENETV2_BLOCKS, start=1):
        out = size // s
        for first in (True, False) if n > 1 else (True,):
            p = f"b{seq}_1" if first else f"b{seq}_x"
            cin, stride, count = (in_ch, s, 1) if first else (c, 1, n - 1)
            hidden = t * cin
            if t != 1:
                layers.append(_conv(f"{p}_expand", hidden, cin, 1, size if first else out, count=count))
            layers.append(_conv(f"{p}_dw", 1, hidden, 3, out, stride=stride, count=count, layer_type=ds))
            layers.append(_conv(f"{p}_project", c, hidden, 1, out, count=count))
        in_ch, size = c, out
    layers += [_conv("conv_last", 1280, 320, 1, 7), _fc("fc", 1000, 1280)]
    return Network(name="mobilenetv2", layers=tuple(layers),
                   source="Sandler et al., CVPR 2018, Table 2 (width 1.0, 224x224)")


def unet() -> Network:
    """U-Net (Ronneberger et al., "U-Net: Convolutional Networks for Biomedical Image Segmentation",
    MICCAI 2015, Fig. 1) on its 572x572 one-channel input tile, two output classes.

    Unpadded ('valid') 3x3 convolutions, two per level; 2x2 max pooling (not a layer) between levels;
    each 2x2 up-convolution (stride 2, halving the channels) is a TRCONV in the scatter form described
    in the module docstring (K, C, 2x2 filter, Y = H_in + 1, so Y' = H_in and the MACs are
    C·K·4·H_in·W_in); the first convolution after each up-convolution reads the concatenation of the
    up-sampled map and the cropped skip connection (twice the channels). A final 1x1 convolution maps
    64 channels to 2 classes on the 388x388 output. 23 convolutional layers, as the paper counts them.
    The paper publishes no operation count; these shapes give 150.4 G MACs (72.5 G in the contracting
    path, 77.9 G in the expansive path, 5.6 G of them in the up-convolutions).
    """
    layers: list[Layer] = []
    size, in_ch = 572, 1
    skips = []
    for level, width in enumerate((64, 128, 256, 512, 1024), start=1):
        layers.append(_valid(f"down{level}_a", width, in_ch, 3, size))
        layers.append(_valid(f"down{level}_b", width, width, 3, size - 2))
        size -= 4
        in_ch = width
        if level < 5:
            skips.append(size)
            size //= 2
    for level, width in zip(range(4, 0, -1), (512, 256, 128, 64), strict=True):
        layers.append(Layer(name=f"up{level}_upconv", layer_type=LayerType.TRCONV,
                            dims=(("K", width), ("C", in_ch), ("R", 2), ("S", 2), ("Y", size + 1),
                                  ("X", size + 1))))
        size *= 2
        layers.append(_valid(f"up{level}_a", width, 2 * width, 3, size))
        layers.append(_valid(f"up{level}_b", width, width, 3, size - 2))
        size -= 4
        in_ch = width
    layers.append(_valid("out", 2, 64, 1, size))
    return Network(name="unet", layers=tuple(layers),
                   source="Ronneberger et al., MICCAI 2015, Fig. 1 (572x572 input, valid convolutions)")


# ------------------------------------------------------------------------------------ transformers
def bert_base(seq_len: int = 512, *, hidden: int = 768, heads: int = 12, ffn: int = 3072,
              layers: int = 12) -> Network:
    """BERT-base encoder (Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for
    Language Understanding", NAACL 2019, Sect. 3: L = 12, H = 768, A = 12, feed-forward 4H) on one
    sequence of ``seq_len`` tokens.

    Per encoder layer, as GEMMs (A is M x K, B is K x N): the Q, K, V and output projections
    (n x h times h x h); per head, the scores Q·Kᵀ (n x d times d x n, d = h / heads) and the weighted
    values A·V (n x n times n x d), each with count heads; the two feed-forward GEMMs (h -> 4h -> h).
    All counts are multiplied by the 12 layers. MACs = L·(4·n·h² + 2·n²·h + 2·n·h·4h): 48.3 G for
    n = 512, 11.2 G (22.3 GFLOPs) for n = 128. Embedding look-ups, layer norms, softmax and the pooler
    are left out; the weight GEMMs hold the 84.9 M non-embedding weights of BERT-base's 110 M parameters.
    """
    if hidden % heads:
        raise ValueError(f"hidden size {hidden} is not a multiple of {heads} heads")
    n, h, d = seq_len, hidden, hidden // heads
    gemms = (
        Layer.gemm("q_proj", M=n, K=h, N=h, count=layers),
        Layer.gemm("k_proj", M=n, K=h, N=h, count=layers),
        Layer.gemm("v_proj", M=n, K=h, N=h, count=layers),
        Layer.gemm("attn_qk", M=n, K=d, N=n, count=heads * layers),
        Layer.gemm("attn_av", M=n, K=n, N=d, count=heads * layers),
        Layer.gemm("o_proj", M=n, K=h, N=h, count=layers),
        Layer.gemm("ffn1", M=n, K=h, N=ffn, count=layers),
        Layer.gemm("ffn2", M=n, K=ffn, N=h, count=layers),
    )
    return Network(name="bert_base" if seq_len == 512 else f"bert_base_{seq_len}", layers=gemms,
                   source=f"Devlin et al., NAACL 2019 (BERT-base: L=12, H=768, A=12), seq {seq_len}")


# GPT-2 small: Radford et al., "Language Models are Unsupervised Multitask Learners", 2019, Table 2
# (12 layers, d_model 768) and the released code (openai/gpt-2, model "124M": 12 heads, 4x MLP,
# vocabulary 50257, context 1024, fused QKV projection, LM head tied to the token embedding).
_GPT2 = {"layers": 12, "hidden": 768, "heads": 12, "ffn": 3072, "vocab": 50257}


def _decoder(name: str, m: int, context: int, source: str) -> Network:
    L, h, heads, ffn, vocab = (_GPT2[k] for k in ("layers", "hidden", "heads", "ffn", "vocab"))
    d = h // heads
    gemms = (
        Layer.gemm("qkv_proj", M=m, K=h, N=3 * h, count=L),
        Layer.gemm("attn_qk", M=m, K=d, N=context, count=heads * L),
        Layer.gemm("attn_av", M=m, K=context, N=d, count=heads * L),
        Layer.gemm("o_proj", M=m, K=h, N=h, count=L),
        Layer.gemm("mlp_fc", M=m, K=h, N=ffn, count=L),
        Layer.gemm("mlp_proj", M=m, K=ffn, N=h, count=L),
        Layer.gemm("lm_head", M=1, K=h, N=vocab),
    )
    return Network(name=name, layers=gemms, source=source)


def gpt2_prefill(prompt_len: int = 512) -> Network:
    """GPT-2 small (124M) decoder, prefill of a ``prompt_len``-token prompt.

    Per layer: the fused Q/K/V projection (n x h times h x 3h), per head Q·Kᵀ (n x 64 times 64 x n) and
    A·V (n x n times n x 64) with count heads (the causal mask is applied to the full n x n scores, as
    implementations compute them), the output projection and the two MLP GEMMs (h -> 4h -> h); counts
    times 12 layers. The LM head (h x 50257, tied to the embedding) runs on the last position only,
    the one whose next token is generated. Embeddings, layer norms and softmax are left out.
    """
    return _decoder("gpt2_prefill" if prompt_len == 512 else f"gpt2_prefill_{prompt_len}", prompt_len,
                    prompt_len, f"GPT-2 small (Radford et al. 2019; openai/gpt-2 '124M'), prefill of "
                                f"{prompt_len} tokens")


def gpt2_decode(context: int = 512) -> Network:
    """GPT-2 small (124M) decoder, generating one token after ``context`` tokens held in the KV cache.

    The same GEMMs as :func:`gpt2_prefill` with M = 1 (one query row, so the weight GEMMs are
    matrix-vector products); attention covers the cached keys and values plus the new token's own,
    context + 1 of them.
    """
    return _decoder("gpt2_decode" if context == 512 else f"gpt2_decode_{context}", 1, context + 1,
                    f"GPT-2 small (Radford et al. 2019; openai/gpt-2 '124M'), one decode step, KV cache "
                    f"of {context} tokens")


BUILTIN: dict[str, Callable[[], Network]] = {
    "alexnet": alexnet,
    "vgg16": vgg16,
    "resnet50": resnet50,
    "resnet50_v1_5": resnet50_v1_5,
    "mobilenetv2": mobilenetv2,
    "unet": unet,
    "bert_base": bert_base,
    "gpt2_prefill": gpt2_prefill,
    "gpt2_decode": gpt2_decode,
}


def bundled_dataflow(name: str) -> Path:
    """Path of a dataflow template shipped with the package (``costmodel/data/dataflows/NAME.m``)."""
    return DATA / "dataflows" / f"{name}.m"


def maestro_text(network: Network, dataflow) -> str:
    """The network as a MAESTRO file, every layer with ``dataflow`` (repeat counts as ``//@repeat``)."""
    from .mfile import format_network

    header = (f"{network.name}: {network.num_layers} layers in one inference "
              f"({len(network.layers)} distinct), {network.total_macs:,} MACs.\n"
              f"Layer shapes: {network.source}. Generated by dataflow-dse; padding folded into Y/X.")
    return format_network(network.name, [(layer, dataflow) for layer in network.layers], header)


def builtin(name: str) -> Network:
    try:
        return BUILTIN[name.lower()]()
    except KeyError:
        raise KeyError(f"no built-in network '{name}' (known: {', '.join(sorted(BUILTIN))})") from None


__all__ = ["BUILTIN", "Network", "alexnet", "bert_base", "builtin", "bundled_dataflow", "gpt2_decode",
           "gpt2_prefill", "maestro_text", "mobilenetv2", "resnet50", "resnet50_v1_5", "unet",
           "unique_shapes", "vgg16"]
