"""Importing ONNX models as networks of MAESTRO layers (needs the optional ``onnx`` package).

The graph's shapes come from ONNX shape inference; the nodes are read in graph order:

* ``Conv`` (1-D or 2-D, NCHW): ``group`` 1 is CONV; ``group`` = input channels is DSCONV (K = 1) when
  there is one filter per channel, NGCONV (G = channels, K = the channel multiplier, C = 1) otherwise;
  any other ``group`` is NGCONV with K and C per group. Padding (``pads`` or ``auto_pad``) is folded
  into the input size, Y = H + pad_top + pad_bottom, X = W + pad_left + pad_right; strides are kept.
  Dilation d > 1 along an axis with stride 1 is modelled exactly by its *phase decomposition*: the
  input rows p, p + d, p + 2d, ... of each phase p < d form an ordinary stride-1 convolution with the
  same k-tap filter, so the layer becomes up to four layers of distinct phase sizes (counted by how
  many phases have each size) whose MACs and outputs add up to the dilated convolution's. (Only the
  weights' reuse across phases is lost.) Dilation with a stride > 1 on the same axis is refused.
* ``ConvTranspose`` is TRCONV in the scatter form of :mod:`costmodel.networks`: K = output channels per
  group, C = input channels per group, R x S the filter, Y = H_in + R - 1, X = W_in + S - 1, stride 1,
  so the MACs are exactly C_in·C_out/group·R·S·H_in·W_in; ``group`` > 1 becomes the repeat count.
  Strides, pads and output padding only place (or crop) outputs and do not change the layer.
* ``Gemm`` (``transA``, ``transB``) is GEMM with A M x K, B K x N. ``MatMul`` follows numpy: 1-D operands
  get a unit M or N; leading (batch) dimensions of A alone are folded into M (a projection shares B
  across the batch), of B alone into N, and batch dimensions of both (attention) become the repeat
  count.
* A batch N > 1 of a convolution is kept as MAESTRO's N dimension.

Operators without multiply-accumulates (element-wise arithmetic and activations, normalisation,
softmax, pooling, reductions, shape and data-movement operators) are skipped and listed; any other
operator (recurrent cells, Einsum, quantised convolutions, 3-D convolutions, custom domains ...) is
*unsupported*: left out and listed with its count, or an error with ``strict=True``. Layers of identical
shape are merged into one, named after the first, with the summed count.

Symbolic dimensions (``dim_param``) can be given sizes with ``dims``; an unbound symbolic first
dimension of a graph input is taken as a batch of 1 (and noted), any other one needed is an error.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import MappingError, ParseError, SpecError
from .layer import Layer, LayerType
from .limits import MAX_ONNX_BYTES, network_problem, read_limited
from .networks import Network, unique_shapes

INSTALL_HINT = "pip install 'dataflow-dse[onnx]'"

# Standard operators without multiply-accumulates in MAESTRO's sense: skipped (and listed), not errors.
NO_MACS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization BitShift
BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Cast CastLike Ceil Celu Clip Compress Concat Constant
ConstantOfShape Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout DynamicQuantizeLinear Elu
Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gelu Greater GreaterOrEqual
GlobalAveragePool GlobalLpPool GlobalMaxPool GroupNormalization HardSigmoid HardSwish Hardmax Identity
InstanceNormalization IsInf IsNaN LRN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax
LpNormalization LpPool Max MaxPool MaxRoiPool MaxUnpool Mean MeanVarianceNormalization Min Mish Mod
Mul Neg NonZero Not OneHot Or PRelu Pad Pow QuantizeLinear RMSNormalization Range Reciprocal ReduceL1
ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare Relu Reshape Resize ReverseSequence Round ScatterElements ScatterND Selu Shape Shrink
Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan
Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\[\]]+")


@dataclass(frozen=True, slots=True)
class OnnxImport:
    """What :func:`import_onnx` found: the network, and what it left out.

    ``unsupported`` and ``skipped`` are ``"OpType xN"`` strings in order of first appearance;
    ``notes`` explain modelling choices that touched this model (dilation, groups, batch).
    """

    network: Network
    unsupported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Unsupported(Exception):
    """A supported operator used in a way the importer does not model (counted as unsupported)."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


def read_onnx(path: str | Path, *, strict: bool = False,
              dims: Mapping[str, int] | None = None) -> tuple[Network, list[str]]:
    """The network of an ONNX model and its unsupported operators with counts (``["LSTM x2"]``).

    ``strict=True`` raises :class:`ParseError` if any operator is unsupported. ``dims`` gives sizes to
    symbolic dimensions. See :func:`import_onnx` for the skipped operators and notes.
    """
    result = import_onnx(path, strict=strict, dims=dims)
    return result.network, result.unsupported


def import_onnx(path: str | Path, *, strict: bool = False,
                dims: Mapping[str, int] | None = None) -> OnnxImport:
    """Import an ONNX model (see the module docstring): the network, and what was left out and why.

    Raises :class:`ParseError` for a file that is not a valid ONNX model (``"not a valid ONNX model:
    ..."``), a node whose shapes cannot be determined or modelled (naming the node), unsupported
    operators with ``strict=True``, or a model without any layer; :class:`SpecError` if ``onnx`` is not
    installed.
    """
    onnx = _onnx()
    p = Path(path)
    model = _load(onnx, p)
    notes: list[str] = []
    bindings = _bind_symbols(model.graph, dict(dims or {}), notes)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
                                                  data_prop=True)
    except Exception as exc:  # onnx raises several exception types for an inconsistent graph
        raise ParseError(f"ONNX shape inference failed: {_one_line(exc)}", file=str(p)) from None
    reader = _GraphReader(onnx, model.graph, str(p), bindings, notes)
    layers: list[Layer] = []
    unsupported: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for index, node in enumerate(model.graph.node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            unsupported[f"{node.domain}::{op}"] += 1
            continue
        handler = _HANDLERS.get(op)
        if handler is None:
            (skipped if op in NO_MACS else unsupported)[op] += 1
            continue
        try:
            layers += handler(reader, node, reader.layer_name(node, index))
        except _Unsupported as exc:
            unsupported[exc.label] += 1
    unsupported_list = [f"{op} x{n}" for op, n in unsupported.items()]
    if strict and unsupported_list:
        raise ParseError(f"unsupported operators: {', '.join(unsupported_list)} (without --strict they "
                         "are left out and listed)", file=str(p))
    if not layers:
        raise ParseError("the model has no Conv, ConvTranspose, Gemm or MatMul node to import"
                         + (f" (unsupported: {', '.join(unsupported_list)})" if unsupported_list else ""),
                         file=str(p))
    try:
        merged = _unique_names(unique_shapes(layers))
    except MappingError as exc:            # a merged repeat count beyond the limits
        raise ParseError(str(exc), file=str(p)) from None
    problem = network_problem([(layer.work, layer.count) for layer in merged])
    if problem:
        raise ParseError(problem, file=str(p))
    producer = " ".join(x for x in (model.producer_name, model.producer_version) if x)
    network = Network(name=_network_name(model.graph.name, p), layers=merged,
                      source=f"ONNX model {p.name}" + (f" (from {producer})" if producer else ""))
    return OnnxImport(network=network, unsupported=unsupported_list,
                      skipped=[f"{op} x{n}" for op, n in skipped.items()], notes=notes)


# ------------------------------------------------------------------------------------ loading
def _onnx():
    try:
        import onnx
    except ImportError:
        raise SpecError(f"reading ONNX models needs the onnx package: {INSTALL_HINT}") from None
    return onnx


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "") if text else type(exc).__name__


def _load(onnx, p: Path):
    data = read_limited(p, lambda reason: ParseError(reason, file=str(p)), limit=MAX_ONNX_BYTES, text=False)
    if not data:
        raise ParseError("not a valid ONNX model: the file is empty", file=str(p))
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ParseError(f"not a valid ONNX model: {_one_line(exc)} (truncated or not an ONNX file?)",
                         file=str(p)) from None
    try:  # by path, so that weights stored in external data files are found next to the model
        onnx.checker.check_model(str(p))
    except Exception as exc:
        raise ParseError(f"not a valid ONNX model: {_one_line(exc)}", file=str(p)) from None
    return model


def _bind_symbols(graph, dims: dict[str, int], notes: list[str]) -> dict[str, int]:
    """Give symbolic dimensions their sizes everywhere in the graph's declared shapes."""
    for name, value in dims.items():
        if not isinstance(value, int) or value < 1:
            raise SpecError(f"size of symbolic dimension '{name}' must be a positive integer, got {value}",
                            key="dims")
    initializers = {t.name for t in graph.initializer}
    for vi in graph.input:
        if vi.name in initializers or not vi.type.tensor_type.HasField("shape"):
            continue
        shape = vi.type.tensor_type.shape.dim
        if shape and shape[0].HasField("dim_param") and shape[0].dim_param not in dims:
            dims[shape[0].dim_param] = 1
            notes.append(f"symbolic batch dimension '{shape[0].dim_param}' of input '{vi.name}' taken "
                         "as 1")
    for vi in (*graph.input, *graph.value_info, *graph.output):
        if not vi.type.tensor_type.HasField("shape"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in dims:
                d.dim_value = dims[d.dim_param]
    return dims


def _network_name(graph_name: str, p: Path) -> str:
    for candidate in (graph_name, p.stem):
        name = _NAME_BAD.sub("_", candidate).strip("_")
        if name and not name[0].isdigit():
            return name
    return "onnx_model"


def _unique_names(layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    seen: set[str] = set()
    out = []
    for layer in layers:
        name, n = layer.name, 1
        while name in seen:
            n += 1
            name = f"{layer.name}_{n}"
        seen.add(name)
        out.append(layer if name == layer.name else replace(layer, name=name))
    return tuple(out)


# ------------------------------------------------------------------------------------ shapes
class _GraphReader:
    def __init__(self, onnx, graph, file: str, bindings: Mapping[str, int], notes: list[str]) -> None:
        self.onnx = onnx
        self.file = file
        self.notes = notes
        self.shapes: dict[str, list[int | str | None] | None] = {}
        for vi in (*graph.input, *graph.value_info, *graph.output):
            tt = vi.type.tensor_type
            if not tt.HasField("shape"):
                self.shapes.setdefault(vi.name, None)
                continue
            dims: list[int | str | None] = []
            for d in tt.shape.dim:
                if d.HasField("dim_value"):
                    dims.append(d.dim_value)
                elif d.HasField("dim_param"):
                    dims.append(bindings.get(d.dim_param, d.dim_param))
                else:
                    dims.append(None)
            self.shapes[vi.name] = dims
        for t in graph.initializer:
            self.shapes[t.name] = list(t.dims)
        self.bindings = bindings

    def layer_name(self, node, index: int) -> str:
        name = _NAME_BAD.sub("_", node.name).strip("_")
        if not name or name[0].isdigit():
            name = f"{node.op_type.lower()}_{index}" if not name else f"n{name}"
        return name

    def label(self, node) -> str:
        return f"node {node.name or '(unnamed)'} ({node.op_type})"

    def error(self, node, message: str) -> ParseError:
        return ParseError(f"{self.label(node)}: {message}", file=self.file)

    def shape(self, node, i: int) -> list[int]:
        if i >= len(node.input) or not node.input[i]:
            raise self.error(node, f"input {i} is missing")
        tensor = node.input[i]
        shape = self.shapes.get(tensor)
        if shape is None:
            raise self.error(node, f"the shape of '{tensor}' is unknown (shape inference could not derive "
                                   "it; are the model's input shapes given?)")
        for d in shape:
            if isinstance(d, str):
                raise self.error(node, f"'{tensor}' has the symbolic dimension '{d}': give its size "
                                       f"(dse import --dim {d}=N, or read_onnx(..., dims={{'{d}': N}}))")
            if d is None:
                raise self.error(node, f"'{tensor}' has a dimension of unknown size (shape {shape})")
            if d < 1:
                raise self.error(node, f"'{tensor}' has a dimension of size {d} (shape {shape}): every "
                                       "size must be a positive integer")
        return list(shape)  # type: ignore[arg-type]

    def output_shape(self, node) -> list[int] | None:
        shape = self.shapes.get(node.output[0]) if node.output else None
        if shape is None or any(not isinstance(d, int) for d in shape):
            return None
        return list(shape)  # type: ignore[arg-type]

    def attrs(self, node) -> dict:
        out = {}
        for a in node.attribute:
            v = self.onnx.helper.get_attribute_value(a)
            out[a.name] = v.decode() if isinstance(v, bytes) else v
        return out

    def layer(self, node, **kwargs) -> Layer:
        try:
            return Layer(**kwargs)
        except MappingError as exc:
            raise self.error(node, exc.reason) from None


# ------------------------------------------------------------------------------------ handlers
def _spatial_params(r: _GraphReader, node, a: dict, in_sizes: list[int], kernel: list[int]
                    ) -> tuple[list[int], list[int], list[int]]:
    """Per spatial axis: strides, dilations and the padded input size."""
    n = len(in_sizes)
    strides = list(a.get("strides") or [1] * n)
    dilations = list(a.get("dilations") or [1] * n)
    pads = list(a.get("pads") or [0] * (2 * n))
    if len(strides) != n or len(dilations) != n or len(pads) != 2 * n:
        raise r.error(node, f"strides/dilations/pads do not match the {n} spatial axes")
    for what, values, low in (("strides", strides, 1), ("dilations", dilations, 1), ("pads", pads, 0)):
        if any(v < low for v in values):
            raise r.error(node, f"{what} {values} must be {'positive' if low else 'non-negative'}")
    auto_pad = a.get("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise r.error(node, f"unknown auto_pad '{auto_pad}'")
    padded = []
    for i, size in enumerate(in_sizes):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-size // strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size, 0)
        elif auto_pad == "VALID":
            total = 0
        else:
            total = pads[i] + pads[i + n]
        padded.append(size + total)
        span = (kernel[i] - 1) * dilations[i] + 1
        if padded[-1] < span:
            raise r.error(node, f"the kernel spans {span} (kernel {kernel[i]}, dilation {dilations[i]}) but "
                                f"the padded input is only {padded[-1]}: the layer has no output")
    return strides, dilations, padded


def _phases(padded: int, k: int, d: int) -> Counter[int]:
    """Input sizes of the stride-1 phases of a dilated axis (size -> how many phases), see module doc."""
    sizes: Counter[int] = Counter()
    for p in range(d):
        rows = (padded - p + d - 1) // d
        if rows >= k:
            sizes[rows] += 1
    return sizes


def _conv(r: _GraphReader, node, name: str) -> list[Layer]:
    x, w = r.shape(node, 0), r.shape(node, 1)
    if len(x) not in (3, 4) or len(w) != len(x):
        raise _Unsupported(f"Conv ({len(x) - 2}-D)")
    a = r.attrs(node)
    if len(x) == 3:  # 1-D: a row of width L
        x, w = [x[0], x[1], 1, x[2]], [w[0], w[1], 1, w[2]]
        for key in ("strides", "dilations"):
            if a.get(key):
                a[key] = [1, *a[key]]
        if a.get("pads"):
            a["pads"] = [0, a["pads"][0], 0, a["pads"][1]]
    batch, c_in, h, wid = x
    m, c_per_group, kh, kw = w
    group = int(a.get("group", 1))
    if group < 1:
        raise r.error(node, f"group {group} must be positive")
    if c_in != c_per_group * group or m % group:
        raise r.error(node, f"input channels {c_in}, weight {w} and group {group} do not agree")
    (sy, sx), (dy, dx), (py, px) = _spatial_params(r, node, a, [h, wid], [kh, kw])
    out = r.output_shape(node)
    if out is not None and len(out) == 4:
        expect = ((py - (kh - 1) * dy - 1) // sy + 1, (px - (kw - 1) * dx - 1) // sx + 1)
        if tuple(out[2:]) != expect:
            raise r.error(node, f"output {out[2]}x{out[3]} does not follow from input {h}x{wid}, padding, "
                                f"stride and dilation ({expect[0]}x{expect[1]})")
    if group == 1:
        lt, chans = LayerType.CONV, [("K", m), ("C", c_in)]
    elif group == c_in and m == c_in:
        lt, chans = LayerType.DSCONV, [("K", 1), ("C", c_in)]
    else:
        lt, chans = LayerType.NGCONV, [("G", group), ("K", m // group), ("C", c_in // group)]
    lead = [("N", batch)] if batch > 1 else []
    strides = (("X", sx), ("Y", sy))
    for axis, d, s in (("rows", dy, sy), ("columns", dx, sx)):
        if d > 1 and s > 1:
            raise r.error(node, f"dilation {d} with stride {s} along the {axis} is not supported "
                                "(dilation is modelled for stride 1 only)")
    if dy == dx == 1:
        return [r.layer(node, name=name, layer_type=lt, dims=(*lead, *chans, ("R", kh), ("S", kw),
                                                              ("Y", py), ("X", px)), strides=strides)]
    rows = _phases(py, kh, dy) if dy > 1 else Counter({py: 1})
    cols = _phases(px, kw, dx) if dx > 1 else Counter({px: 1})
    phases = sum(rows.values()) * sum(cols.values())
    r.notes.append(f"{r.label(node)}: dilation {dy}x{dx} modelled as {phases} stride-1 phase convolutions")
    layers = []
    for i, ((ysz, ny), (xsz, nx)) in enumerate((yr, xc) for yr in rows.items() for xc in cols.items()):
        layers.append(r.layer(node, name=f"{name}.phase{i}", layer_type=lt, count=ny * nx,
                              dims=(*lead, *chans, ("R", kh), ("S", kw), ("Y", ysz), ("X", xsz)),
                              strides=strides))
    return layers


def _conv_transpose(r: _GraphReader, node, name: str) -> list[Layer]:
    x, w = r.shape(node, 0), r.shape(node, 1)
    if len(x) not in (3, 4) or len(w) != len(x):
        raise _Unsupported(f"ConvTranspose ({len(x) - 2}-D)")
    if len(x) == 3:
        x, w = [x[0], x[1], 1, x[2]], [w[0], w[1], 1, w[2]]
    batch, c_in, h, wid = x
    _, k_per_group, kh, kw = w
    a = r.attrs(node)
    group = int(a.get("group", 1))
    if group < 1:
        raise r.error(node, f"group {group} must be positive")
    if any(d != 1 for d in a.get("dilations") or []):
        raise r.error(node, f"dilations {list(a['dilations'])} are not supported for ConvTranspose")
    if c_in != w[0] or c_in % group:
        raise r.error(node, f"input channels {c_in}, weight {w} and group {group} do not agree")
    if group > 1:
        r.notes.append(f"{r.label(node)}: {group} groups modelled as a repeat count")
    lead = [("N", batch)] if batch > 1 else []
    dims = (*lead, ("K", k_per_group), ("C", c_in // group), ("R", kh), ("S", kw), ("Y", h + kh - 1),
            ("X", wid + kw - 1))
    return [r.layer(node, name=name, layer_type=LayerType.TRCONV, dims=dims,
                    strides=(("X", 1), ("Y", 1)), count=group)]


def _gemm(r: _GraphReader, node, name: str) -> list[Layer]:
    a_shape, b_shape = r.shape(node, 0), r.shape(node, 1)
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise r.error(node, f"Gemm needs 2-D inputs, got {a_shape} and {b_shape}")
    at = r.attrs(node)
    m, k = reversed(a_shape) if at.get("transA", 0) else a_shape
    k2, n = reversed(b_shape) if at.get("transB", 0) else b_shape
    if k != k2:
        raise r.error(node, f"inner dimensions differ: A {a_shape}, B {b_shape} "
                            f"(transA={at.get('transA', 0)}, transB={at.get('transB', 0)})")
    return [r.layer(node, name=name, layer_type=LayerType.GEMM, dims=(("M", m), ("N", n), ("K", k)))]


def _matmul(r: _GraphReader, node, name: str) -> list[Layer]:
    a_shape, b_shape = r.shape(node, 0), r.shape(node, 1)
    if not a_shape or not b_shape:
        raise r.error(node, "MatMul of a scalar")
    if len(a_shape) == 1:
        a_shape = [1, a_shape[0]]
    if len(b_shape) == 1:
        b_shape = [b_shape[0], 1]
    (m, k), (k2, n) = a_shape[-2:], b_shape[-2:]
    if k != k2:
        raise r.error(node, f"inner dimensions differ: {a_shape} times {b_shape}")
    batch_a, batch_b = a_shape[:-2], b_shape[:-2]
    try:
        batch = _broadcast(batch_a, batch_b)
    except ValueError:
        raise r.error(node, f"batch dimensions {batch_a} and {batch_b} do not broadcast") from None
    count = 1
    if math.prod(batch_b) == 1:  # B shared by every batch element (a projection): a taller A
        m *= math.prod(batch_a)
    elif math.prod(batch_a) == 1:  # A shared: a wider B
        n *= math.prod(batch_b)
    else:  # batched matrix products (attention): one GEMM per batch element
        count = math.prod(batch)
    return [r.layer(node, name=name, layer_type=LayerType.GEMM, dims=(("M", m), ("N", n), ("K", k)),
                    count=count)]


def _broadcast(a: list[int], b: list[int]) -> list[int]:
    out = []
    for x, y in zip(reversed([1] * (len(b) - len(a)) + a), reversed([1] * (len(a) - len(b)) + b),
                    strict=True):
        if x != y and 1 not in (x, y):
            raise ValueError
        out.append(max(x, y))
    return out[::-1]


_HANDLERS = {"Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul}

__all__ = ["INSTALL_HINT", "NO_MACS", "OnnxImport", "import_onnx", "read_onnx"]
