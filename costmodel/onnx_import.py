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
* ``LSTM``, ``GRU`` and ``RNN`` are their gate GEMMs, one per time step as GNMT's cells are written for
  MAESTRO: the step's input and previous hidden state, B x (I + H), times the stacked gate weights,
  (I + H) x G·H, with G = 4 (LSTM), 3 (GRU) or 1 (RNN) gates; count = time steps x directions. So the
  MACs are exactly T·D·B·G·H·(I + H); the gates' element-wise work (sigmoids, tanh, products,
  peepholes) has no MACs in MAESTRO's sense.
* A batch N > 1 of a convolution is kept as MAESTRO's N dimension.

Operators without multiply-accumulates (element-wise arithmetic and activations, normalisation,
softmax, pooling, reductions, shape and data-movement operators) are skipped and listed; any other
operator (Einsum, quantised convolutions, 3-D convolutions, custom domains ...) is *unsupported*: left
out and listed with its count and the MACs it held where its shapes tell (``"Einsum x2 (8,192 MACs,
12 % of the model)"``), or an error with ``strict=True``. Layers of identical shape are merged into one,
named after the first, with the summed count.

Layer names are short and unique: a node named by its module path, as PyTorch's exporter writes it
(``/features/features.18/features.18.0/Conv``), is named after the module (``features.18.0``), with no
more of the path than it takes to tell it from every other node's.

Weights are not needed, only their shapes: a model whose weights lie in an external data file that is
absent (as shape-only models are shipped) imports from the shapes its tensors declare, with a note.

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

    ``unsupported`` and ``skipped`` are ``"OpType xN"`` strings in order of first appearance, an
    unsupported one followed by the MACs it held (``"Einsum x2 (8,192 MACs, 12 % of the model)"``, or
    ``"(MACs unknown)"``); ``left_out_macs`` sums the known ones; ``notes`` explain modelling choices that
    touched this model (dilation, groups, batch, recurrent cells, absent weights).
    """

    network: Network
    unsupported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left_out_macs: int = 0


class _Unsupported(Exception):
    """A supported operator used in a way the importer does not model (counted as unsupported)."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


@dataclass
class _LeftOut:
    """Nodes of one kind the import leaves out, and the MACs they held (None: not known)."""

    count: int = 0
    macs: int | None = 0

    def add(self, macs: int | None) -> None:
        self.count += 1
        self.macs = None if macs is None or self.macs is None else self.macs + macs


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
    notes: list[str] = []
    model = _load(onnx, p, notes)
    bindings = _bind_symbols(model.graph, dict(dims or {}), notes)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
                                                  data_prop=True)
    except Exception as exc:  # onnx raises several exception types for an inconsistent graph
        raise ParseError(f"ONNX shape inference failed: {_one_line(exc)}", file=str(p)) from None
    reader = _GraphReader(onnx, model.graph, str(p), bindings, notes)
    layers: list[Layer] = []
    unsupported: dict[str, _LeftOut] = {}
    skipped: Counter[str] = Counter()
    for index, node in enumerate(model.graph.node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            unsupported.setdefault(f"{node.domain}::{op}", _LeftOut()).add(None)
            continue
        handler = _HANDLERS.get(op)
        if handler is None:
            if op in NO_MACS:
                skipped[op] += 1
            else:
                unsupported.setdefault(op, _LeftOut()).add(_macs_of(reader, node))
            continue
        try:
            layers += handler(reader, node, reader.layer_name(node, index))
        except _Unsupported as exc:
            unsupported.setdefault(exc.label, _LeftOut()).add(_macs_of(reader, node))
    imported = sum(layer.true_macs * layer.count for layer in layers)
    left_out = sum(v.macs for v in unsupported.values() if v.macs is not None)
    unsupported_list = [_left_out_text(op, v, imported + left_out) for op, v in unsupported.items()]
    if strict and unsupported_list:
        raise ParseError(f"unsupported operators: {', '.join(unsupported_list)} (without --strict they "
                         "are left out and listed)", file=str(p))
    if not layers:
        raise ParseError("the model has no Conv, ConvTranspose, Gemm, MatMul or recurrent node to import"
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
                      skipped=[f"{op} x{n}" for op, n in skipped.items()], notes=notes,
                      left_out_macs=left_out)


def _left_out_text(op: str, left: _LeftOut, total_macs: int) -> str:
    if left.macs is None:
        return f"{op} x{left.count} (MACs unknown)"
    share = 100 * left.macs / total_macs if total_macs else 0.0
    shown = "< 0.1" if 0 < share < 0.1 else "> 99.9" if 99.9 < share < 100 else f"{share:.1f}"
    return f"{op} x{left.count} ({left.macs:,} MACs, {shown} % of the model)"


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


def _load(onnx, p: Path, notes: list[str]):
    data = read_limited(p, lambda reason: ParseError(reason, file=str(p)), limit=MAX_ONNX_BYTES, text=False)
    if not data:
        raise ParseError("not a valid ONNX model: the file is empty", file=str(p))
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ParseError(f"not a valid ONNX model: {_one_line(exc)} (truncated or not an ONNX file?)",
                         file=str(p)) from None
    absent = _absent_external_data(onnx, model, p)
    try:  # by path, so that weights stored in external data files are found next to the model
        onnx.checker.check_model(model if absent else str(p))
    except Exception as exc:
        raise ParseError(f"not a valid ONNX model: {_one_line(exc)}", file=str(p)) from None
    if absent:
        notes.append(f"the weights of {absent[0]} tensor(s) lie in {', '.join(absent[1])}, which is not "
                     "there: imported from their shapes alone (the cost model needs no weights)")
    return model


def _absent_external_data(onnx, model, p: Path) -> tuple[int, list[str]] | None:
    """If some weights lie in external data files that are absent, declare every externally stored
    initializer as a graph input of its shape (the model then checks and infers shapes without the
    data); returns (how many tensors, which files), or None if nothing is absent."""
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    files = []
    for t in external:
        location = next((e.value for e in t.external_data if e.key == "location"), "")
        if location not in files and not (p.parent / location).is_file():
            files.append(location)
    if not files:
        return None
    names = {t.name for t in external}
    inputs = {vi.name for vi in model.graph.input}
    kept = [t for t in model.graph.initializer if t.name not in names]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    for t in external:
        if t.name not in inputs:
            model.graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return len(external), files


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


# ------------------------------------------------------------------------------------ names
def _module_path(name: str, op: str) -> list[str]:
    """A node name as its module path: ``/layer1/layer1.0/conv1/Conv`` -> ``[layer1.0, conv1]`` (the
    operator's own name at the end dropped, and each scope that only repeats the start of the next)."""
    parts = [q for q in re.split(r"[/:]+", name) if q]
    if len(parts) > 1 and re.fullmatch(rf"{re.escape(op)}(_\d+)?", parts[-1]):
        parts.pop()
    return [q for i, q in enumerate(parts) if i + 1 == len(parts) or not parts[i + 1].startswith(q + ".")]


def short_names(nodes: list[tuple[str, str]]) -> list[str]:
    """Layer names for nodes given as (name, op type): each node's module path cut to the shortest
    tail that no other node's path shares, made a MAESTRO identifier; unnamed nodes are ``op_index``."""
    paths = [tuple(_module_path(name, op)) for name, op in nodes]
    tails: Counter[tuple[str, ...]] = Counter()
    for path in set(paths):
        for k in range(1, len(path) + 1):
            tails[path[-k:]] += 1
    out = []
    for index, ((_, op), path) in enumerate(zip(nodes, paths, strict=True)):
        k = next((k for k in range(1, len(path)) if tails[path[-k:]] == 1), len(path))
        text = _NAME_BAD.sub("_", ".".join(path[-k:])).strip("_.") if path else ""
        if not text:
            text = f"{op.lower()}_{index}"
        out.append(text if not text[0].isdigit() else f"{op.lower()}.{text}")
    return out


# ------------------------------------------------------------------------------------ shapes
class _GraphReader:
    def __init__(self, onnx, graph, file: str, bindings: Mapping[str, int], notes: list[str]) -> None:
        self.onnx = onnx
        self.file = file
        self.notes = notes
        # Only the nodes that become layers need names that tell them apart.
        self.names = dict(zip(
            (i for i, n in enumerate(graph.node) if n.op_type in _HANDLERS),
            short_names([(n.name, n.op_type) for n in graph.node if n.op_type in _HANDLERS]), strict=True))
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
        return self.names[index]

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


_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _recurrent(r: _GraphReader, node, name: str) -> list[Layer]:
    """An LSTM, GRU or RNN as one gate GEMM per time step and direction (module docstring)."""
    x, w = r.shape(node, 0), r.shape(node, 1)
    a = r.attrs(node)
    gates = _GATES[node.op_type]
    if len(x) != 3 or len(w) != 3:
        raise r.error(node, f"expected a 3-D input and weight, got {x} and {w}")
    steps, batch, inputs = (x[1], x[0], x[2]) if a.get("layout", 0) == 1 else x
    directions, rows, cols = w
    hidden = int(a.get("hidden_size") or rows // gates)
    expected = 2 if a.get("direction", "forward") == "bidirectional" else 1
    if rows != gates * hidden or cols != inputs or directions != expected:
        raise r.error(node, f"weight {w} does not match input {x}, hidden_size {hidden} and direction "
                            f"'{a.get('direction', 'forward')}'")
    r.notes.append(f"{r.label(node)}: {steps} time step(s) x {directions} direction(s) as GEMMs of the "
                   f"{gates} gate(s), {batch} x {inputs + hidden} times {inputs + hidden} x {gates * hidden}")
    return [r.layer(node, name=name, layer_type=LayerType.GEMM,
                    dims=(("M", batch), ("N", gates * hidden), ("K", inputs + hidden)),
                    count=steps * directions)]


_HANDLERS = {"Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul,
             "LSTM": _recurrent, "GRU": _recurrent, "RNN": _recurrent}


# ------------------------------------------------------------------------------------ left out
# Where the weight is among the inputs of quantised forms of supported operators.
_WEIGHT_INPUT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "ConvTranspose": 1, "MatMul": 1,
                 "MatMulInteger": 1, "QLinearMatMul": 3, "Gemm": 1}


def _macs_of(r: _GraphReader, node) -> int | None:
    """The MACs of a node the import leaves out, where its shapes tell them (None otherwise)."""
    try:
        return _estimate(r, node)
    except (ParseError, ValueError, KeyError, IndexError, TypeError):
        return None


def _known(r: _GraphReader, name: str) -> list[int] | None:
    shape = r.shapes.get(name)
    return list(shape) if shape and all(isinstance(d, int) and d > 0 for d in shape) else None


def _estimate(r: _GraphReader, node) -> int | None:
    op = node.op_type
    out = _known(r, node.output[0]) if node.output else None
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        w = _known(r, node.input[_WEIGHT_INPUT[op]])
        # every output element: C/group inputs x the kernel
        return math.prod(out) * math.prod(w[1:]) if out and w else None
    if op == "ConvTranspose":
        x, w = _known(r, node.input[0]), _known(r, node.input[1])
        return math.prod(x) * math.prod(w[1:]) if x and w else None
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        a = _known(r, node.input[0])
        return math.prod(out) * a[-1] if out and a else None
    if op == "Einsum":
        return _einsum_macs(r, node)
    return None


def _einsum_macs(r: _GraphReader, node) -> int | None:
    """One MAC per point of the joint index space of the operands (two-operand contractions)."""
    equation = str(r.attrs(node).get("equation", "")).replace(" ", "")
    lhs = equation.split("->")[0].split(",")
    if "..." in equation or len(lhs) != len(node.input):
        return None
    sizes: dict[str, int] = {}
    for letters, tensor in zip(lhs, node.input, strict=True):
        shape = _known(r, tensor)
        if shape is None or len(shape) != len(letters):
            return None
        for letter, size in zip(letters, shape, strict=True):
            sizes[letter] = max(sizes.get(letter, 1), size)
    return math.prod(sizes.values())

__all__ = ["INSTALL_HINT", "NO_MACS", "OnnxImport", "import_onnx", "read_onnx"]
