"""Reading and writing MAESTRO's ``.m`` files (semantics doc sections 2-3).

* Network/mapping files: ``Constant NAME VALUE;`` lines, then ``Network NAME { Layer NAME { Type: T
  Stride {...} Dimensions {...} Dataflow {...} } ... }``.
* Dataflow templates: a bare ``Dataflow { ... }`` block (as MAESTRO's frontend templates), applied to
  every layer of a network.
* Hardware files: ``key: value`` lines (``num_pes``, ``l1_size_cstr``, ``l2_size_cstr``, ``noc_bw_cstr``,
  ``offchip_bw_cstr``, ``NoC_NumHops``; our extension: ``num_simd_lanes``).

Tokens are separated by spaces, tabs and ``, - > ( ) : ;`` as in MAESTRO; ``//`` starts a comment.
Unlike MAESTRO, braces need no surrounding spaces, ``Sz()`` and holes (``?name``) are kept symbolic,
errors name file, line and column, and a syntax error inside one layer does not lose the others. A
``-`` right before a digit starts a negative number (MAESTRO reads ``-32`` as ``32``), which is then
refused: every size is a positive integer within :mod:`costmodel.limits`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import limits
from .accelerator import Accelerator
from .dataflow import Dataflow, DimSize, Directive, DirectiveKind, Hole, Size
from .errors import MappingError, ParseError, SpecError
from .layer import Layer, LayerType

_SEPARATORS = set(" \t,->():;")
_STOP = _SEPARATORS | set("{}\r")
_UNSUPPORTED_TYPES = {"FC", "POOL", "LSTM", "RESIDUAL_IDENTITY"}
_REPEAT_RE = re.compile(r"//@repeat\s+(\S+)")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]]*'?$")
_DIM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*'?$")


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    line: int
    column: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        i, n = 0, len(raw)
        while i < n:
            ch = raw[i]
            # "-" before a digit starts a number (to refuse it as negative), else it separates.
            if (ch in _SEPARATORS and not (ch == "-" and raw[i + 1:i + 2].isdigit())) or ch == "\r":
                i += 1
                continue
            if raw.startswith("//", i):
                # Our extension, a comment to MAESTRO: "//@repeat N" gives a layer's repeat count.
                m = _REPEAT_RE.match(raw, i)
                if m:
                    tokens.append(Token("@repeat", lineno, i + 1))
                    tokens.append(Token(m.group(1), lineno, m.start(1) + 1))
                break
            if ch in "{}":
                tokens.append(Token(ch, lineno, i + 1))
                i += 1
                continue
            j = i + 1
            while j < n and raw[j] not in _STOP and not raw.startswith("//", j):
                j += 1
            tokens.append(Token(raw[i:j], lineno, i + 1))
            i = j
    return tokens


@dataclass(frozen=True, slots=True)
class MappedLayer:
    """A layer of a network file with its dataflow (``None`` if neither it nor an earlier layer has one),
    or the error that made it unreadable."""

    layer: Layer | None
    dataflow: Dataflow | None
    error: ParseError | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class NetworkFile:
    name: str
    layers: tuple[MappedLayer, ...]
    source: str | None = None
    constants: tuple[tuple[str, int], ...] = field(default=())

    @property
    def errors(self) -> list[ParseError]:
        return [m.error for m in self.layers if m.error is not None]


class _Stream:
    def __init__(self, tokens: list[Token], file: str | None) -> None:
        self.tokens = tokens
        self.i = 0
        self.file = file

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, expected: str) -> Token:
        tok = self.peek()
        if tok is None:
            last = self.tokens[-1] if self.tokens else Token("", 1, 1)
            raise ParseError("unexpected end of file", file=self.file, line=last.line,
                             column=last.column + len(last.text), expected=expected)
        self.i += 1
        return tok

    def expect(self, text: str) -> Token:
        tok = self.next(f"'{text}'")
        if tok.text != text:
            raise self.error(tok, f"unexpected '{_show(tok.text)}'", f"'{text}'")
        return tok

    def error(self, tok: Token, message: str, expected: str | None = None) -> ParseError:
        return ParseError(message, file=self.file, line=tok.line, column=tok.column, expected=expected)


_INT_RE = re.compile(r"-?[0-9]+")


def _int(tok: Token, stream: _Stream, constants: dict[str, int], what: str) -> int:
    if tok.text in constants:
        return constants[tok.text]
    if _INT_RE.fullmatch(tok.text):
        if len(tok.text.lstrip("-").lstrip("0")) > limits.MAX_NUMBER_DIGITS:
            raise stream.error(tok, f"{what}: the number {tok.text[:12]}... has more than "
                                    f"{limits.MAX_NUMBER_DIGITS} digits")
        return int(tok.text)
    raise stream.error(tok, f"'{_show(tok.text)}' is not an integer or a defined constant", what)


def _bounded(tok: Token, stream: _Stream, constants: dict[str, int], what: str, high: int) -> int:
    """A positive integer up to ``high`` (a limit of :mod:`costmodel.limits`)."""
    value = _int(tok, stream, constants, what)
    if value < 1:
        raise stream.error(tok, f"{what} must be a positive integer, got {value}")
    if value > high:
        raise stream.error(tok, f"{what} {value:,} is above the limit of {high:,}")
    return value


def _show(text: str) -> str:
    """A token as quoted in a message: printable and short."""
    shown = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _size(stream: _Stream, constants: dict[str, int], what: str, high: int = limits.MAX_DIM) -> Size:
    tok = stream.next(what)
    if tok.text == "Sz":
        dim = stream.next("a dimension name after Sz")
        return DimSize(dim.text)
    if tok.text.startswith("?") and len(tok.text) > 1:
        return Hole(tok.text[1:])
    return _bounded(tok, stream, constants, what, high)


def _parse_dataflow_body(stream: _Stream, constants: dict[str, int]) -> Dataflow:
    stream.expect("{")
    directives: list[Directive] = []
    while True:
        tok = stream.next("a directive or '}'")
        if tok.text == "}":
            break
        if tok.text in ("SpatialMap", "TemporalMap"):
            size = _size(stream, constants, "a map size")
            offset = _size(stream, constants, "a map offset")
            dim = stream.next("a dimension name")
            if dim.text in "{}":
                raise stream.error(dim, f"unexpected '{_show(dim.text)}'", "a dimension name")
            kind = DirectiveKind.SPATIAL if tok.text == "SpatialMap" else DirectiveKind.TEMPORAL
            directives.append(Directive(kind=kind, size=size, offset=offset, dim=dim.text, line=tok.line))
        elif tok.text == "Cluster":
            size = _size(stream, constants, "a cluster size", limits.MAX_PES)
            ctype = "P"
            nxt = stream.peek()
            if nxt is not None and nxt.text in ("P", "L"):
                ctype = stream.next("P or L").text
            directives.append(Directive(kind=DirectiveKind.CLUSTER, size=size, cluster_type=ctype,
                                        line=tok.line))
        else:
            raise stream.error(tok, f"unknown directive '{_show(tok.text)}'",
                               "SpatialMap, TemporalMap, Cluster or '}'")
    if not directives:
        raise stream.error(tok, "empty Dataflow block", "at least one directive")
    if directives[-1].is_cluster:
        raise stream.error(tok, "a Dataflow cannot end with a Cluster directive", "a map after Cluster")
    return Dataflow(directives=tuple(directives))


def _parse_pairs(stream: _Stream, constants: dict[str, int], what: str) -> list[tuple[Token, int]]:
    stream.expect("{")
    out = []
    while True:
        tok = stream.next(f"a dimension name or '}}' in {what}")
        if tok.text == "}":
            return out
        if tok.text == "{":
            raise stream.error(tok, "unexpected '{'", "a dimension name")
        if not _DIM_RE.match(tok.text):
            raise stream.error(tok, f"'{_show(tok.text)}' is not a dimension name",
                               f"a dimension name in {what}")
        value_tok = stream.next(f"a value for {tok.text}")
        out.append((tok, _bounded(value_tok, stream, constants, f"{what} {tok.text}", limits.MAX_DIM)))


def _parse_layer(stream: _Stream, constants: dict[str, int], previous: Dataflow | None
                 ) -> tuple[Layer, Dataflow | None, bool]:
    name_tok = stream.next("a layer name")
    if name_tok.text == "{":
        raise stream.error(name_tok, "a layer needs a name", "a layer name")
    stream.expect("{")
    layer_type: LayerType | None = None
    strides: list[tuple[str, int]] = []
    dims: list[tuple[str, int]] = []
    dataflow: Dataflow | None = None
    count = 1
    while True:
        tok = stream.next("Type, Stride, Dimensions, Dataflow or '}'")
        if tok.text == "}":
            break
        if tok.text == "Type":
            t = stream.next("a layer type")
            if t.text in _UNSUPPORTED_TYPES:
                raise stream.error(t, f"layer type {_show(t.text)} is not supported (MAESTRO cannot "
                                      "evaluate it)", "CONV, DSCONV, NGCONV, TRCONV or GEMM")
            try:
                layer_type = LayerType(t.text)
            except ValueError:
                raise stream.error(t, f"unknown layer type '{_show(t.text)}'",
                                   "CONV, DSCONV, NGCONV, TRCONV or GEMM") from None
        elif tok.text == "Stride":
            for dim_tok, v in _parse_pairs(stream, constants, "stride"):
                if any(n == dim_tok.text for n, _ in strides):
                    raise stream.error(dim_tok, f"stride {dim_tok.text} given twice")
                strides.append((dim_tok.text, v))
        elif tok.text == "Dimensions":
            for dim_tok, v in _parse_pairs(stream, constants, "dimension"):
                if any(n == dim_tok.text for n, _ in dims):
                    raise stream.error(dim_tok, f"dimension {dim_tok.text} given twice")
                dims.append((dim_tok.text, v))
        elif tok.text == "Dataflow":
            dataflow = _parse_dataflow_body(stream, constants)
        elif tok.text == "@repeat":
            count = _bounded(stream.next("a repeat count"), stream, constants, "repeat count",
                             limits.MAX_REPEAT)
        else:
            raise stream.error(tok, f"unexpected '{_show(tok.text)}' in layer {_show(name_tok.text)}",
                               "Type, Stride, Dimensions, Dataflow or '}'")
    if layer_type is None:
        raise stream.error(name_tok, f"layer {_show(name_tok.text)} has no Type",
                           "Type: CONV|DSCONV|NGCONV|TRCONV|GEMM")
    if not dims:
        raise stream.error(name_tok, f"layer {_show(name_tok.text)} has no Dimensions", "a Dimensions block")
    try:
        layer = Layer(name=name_tok.text, layer_type=layer_type, dims=tuple(dims), strides=tuple(strides),
                      count=count)
    except MappingError as exc:
        raise stream.error(name_tok, exc.reason) from None
    inherited = dataflow is None
    effective = dataflow if dataflow is not None else previous
    problem = limits.mapping_problem(layer.full_dims(), effective) if effective is not None else None
    if problem:
        raise stream.error(name_tok, problem)
    return layer, effective, inherited


def _skip_block(stream: _Stream, start: int) -> None:
    """After an error inside a layer, resume after the layer's closing brace."""
    stream.i = start
    depth = 0
    while (tok := stream.peek()) is not None:
        stream.i += 1
        if tok.text == "{":
            depth += 1
        elif tok.text == "}":
            depth -= 1
            if depth == 0:
                return


def parse_network(text: str, *, file: str | None = None) -> NetworkFile:
    """Parse a MAESTRO network/mapping file. Errors inside a layer are kept in that layer's entry."""
    stream = _Stream(tokenize(text), file)
    constants: dict[str, int] = {}
    name = ""
    layers: list[MappedLayer] = []
    seen_network = False
    while (tok := stream.peek()) is not None:
        stream.i += 1
        if tok.text == "Constant":
            cname = stream.next("a constant name")
            constants[cname.text] = _int(stream.next(f"a value for {_show(cname.text)}"), stream, constants,
                                         f"a value for {_show(cname.text)}")
        elif tok.text == "Network":
            if seen_network:
                raise stream.error(tok, "a second Network block", "one Network per file")
            seen_network = True
            nxt = stream.next("a network name or '{'")
            if nxt.text != "{":
                name = nxt.text
                stream.expect("{")
            previous: Dataflow | None = None
            while True:
                t = stream.next("Layer or '}'")
                if t.text == "}":
                    break
                if t.text != "Layer":
                    raise stream.error(t, f"unexpected '{_show(t.text)}' in network", "Layer or '}'")
                start = stream.i
                try:
                    layer, dataflow, _ = _parse_layer(stream, constants, previous)
                except ParseError as exc:
                    lname = _show(stream.tokens[start].text) if start < len(stream.tokens) else "?"
                    _skip_block(stream, start)
                    layers.append(MappedLayer(None, None, exc, lname))
                    continue
                previous = dataflow
                layers.append(MappedLayer(layer, dataflow, None, layer.name))
        elif tok.text == "Dataflow":
            raise stream.error(tok, "a Dataflow block outside a layer (is this a dataflow template? "
                                    "use it with --dataflow)", "Constant or Network")
        else:
            raise stream.error(tok, f"unexpected '{_show(tok.text)}'", "Constant or Network")
    if not seen_network:
        last = stream.tokens[-1] if stream.tokens else Token("", 1, 1)
        raise ParseError("no Network block", file=file, line=last.line, expected="Network NAME { ... }")
    problem = limits.network_problem([(m.layer.work, m.layer.count) for m in layers if m.layer])
    if problem:
        raise ParseError(problem, file=file)
    return NetworkFile(name=name, layers=tuple(layers), source=file, constants=tuple(constants.items()))


def parse_dataflow(text: str, *, file: str | None = None) -> Dataflow:
    """Parse a dataflow template: an optional ``Constant`` list and one ``Dataflow { ... }`` block."""
    stream = _Stream(tokenize(text), file)
    constants: dict[str, int] = {}
    dataflow: Dataflow | None = None
    while (tok := stream.peek()) is not None:
        stream.i += 1
        if tok.text == "Constant":
            cname = stream.next("a constant name")
            constants[cname.text] = _int(stream.next(f"a value for {_show(cname.text)}"), stream, constants,
                                         f"a value for {_show(cname.text)}")
        elif tok.text == "Dataflow" and dataflow is None:
            dataflow = _parse_dataflow_body(stream, constants)
        else:
            raise stream.error(tok, f"unexpected '{_show(tok.text)}'", "one Dataflow { ... } block")
    if dataflow is None:
        raise ParseError("no Dataflow block", file=file, line=1, expected="Dataflow { ... }")
    return dataflow


def read_network(path: str | Path) -> NetworkFile:
    p = Path(path)
    return parse_network(_read(p), file=str(p))


def read_dataflow(path: str | Path) -> Dataflow:
    p = Path(path)
    return parse_dataflow(_read(p), file=str(p))


def _read(p: Path) -> str:
    return limits.read_limited(p, lambda reason: ParseError(reason, file=str(p)))


# ------------------------------------------------------------------------------ hardware files
_HW_FIELDS = {"num_pes": "num_pes", "l1_size_cstr": "l1_size", "l2_size_cstr": "l2_size",
              "noc_bw_cstr": "noc_bw", "offchip_bw_cstr": "offchip_bw", "NoC_NumHops": "noc_hop_latency",
              "num_simd_lanes": "simd_lanes"}
_HW_KEYS = set(_HW_FIELDS)


def parse_hw(text: str, *, file: str | None = None) -> Accelerator:
    """Parse a MAESTRO hardware file. As in MAESTRO, absent fields take the file defaults (1 PE,
    unlimited capacities and bandwidths) and ``NoC_NumHops`` (default 1) is the NoC head latency."""
    stream = _Stream(tokenize(text), file)
    values: dict[str, int] = {}
    while (tok := stream.peek()) is not None:
        stream.i += 1
        if tok.text not in _HW_KEYS:
            raise stream.error(tok, f"unknown hardware key '{_show(tok.text)}'", ", ".join(sorted(_HW_KEYS)))
        vtok = stream.next(f"a value for {tok.text}")
        if not _INT_RE.fullmatch(vtok.text):
            raise stream.error(vtok, f"{tok.text} must be a positive integer, got '{_show(vtok.text)}'")
        high = limits.ACCELERATOR_LIMITS[_HW_FIELDS[tok.text]][1]
        values[tok.text] = _bounded(vtok, stream, {}, tok.text, high)
    try:
        return Accelerator(num_pes=values.get("num_pes", 1), simd_lanes=values.get("num_simd_lanes", 1),
                       l1_size=values.get("l1_size_cstr"), l2_size=values.get("l2_size_cstr"),
                       noc_bw=values.get("noc_bw_cstr"), offchip_bw=values.get("offchip_bw_cstr"),
                       noc_hop_latency=values.get("NoC_NumHops", 1), noc_hops=1)
    except SpecError as exc:  # a combination beyond the limits (each value was checked above)
        raise ParseError(f"{exc.key}: {exc.reason}", file=file) from None


def read_hw(path: str | Path) -> Accelerator:
    p = Path(path)
    return parse_hw(_read(p), file=str(p))


def format_hw(acc: Accelerator) -> str:
    lines = [f"num_pes: {acc.num_pes}"]
    if acc.simd_lanes != 1:
        lines.append(f"num_simd_lanes: {acc.simd_lanes}")
    for key, value in (("l1_size_cstr", acc.l1_size), ("l2_size_cstr", acc.l2_size),
                       ("noc_bw_cstr", acc.noc_bw), ("offchip_bw_cstr", acc.offchip_bw)):
        if value is not None:
            lines.append(f"{key}: {value}")
    lines.append(f"NoC_NumHops: {acc.noc_latency}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ writing
def _check_name(name: str, what: str) -> str:
    if not _NAME_RE.match(name):
        raise MappingError(f"{what} name '{name}' cannot be written to a MAESTRO file "
                           "(letters, digits, _ . [ ] only)")
    return name


def format_dataflow(dataflow: Dataflow, indent: str = "\t\t\t") -> str:
    lines = []
    for d in dataflow.directives:
        if d.is_cluster:
            lines.append(f"{indent}Cluster({d.size}, {d.cluster_type});")
        else:
            lines.append(f"{indent}{d.kind.value}({d.size},{d.offset}) {d.dim};")
    return "\n".join(lines)


def format_layer(layer: Layer, dataflow: Dataflow | None) -> str:
    out = [f"\tLayer {_check_name(layer.name, 'layer')} {{", f"\t\tType: {layer.layer_type.value}"]
    if layer.count != 1:
        out.append(f"\t\t//@repeat {layer.count}")
    if layer.strides:
        out.append("\t\tStride { " + ", ".join(f"{n}: {v}" for n, v in layer.strides) + " }")
    out.append("\t\tDimensions { " + ", ".join(f"{n}: {v}" for n, v in layer.dims) + " }")
    if dataflow is not None:
        out += ["\t\tDataflow {", format_dataflow(dataflow), "\t\t}"]
    out.append("\t}")
    return "\n".join(out)


def format_network(name: str, layers: list[tuple[Layer, Dataflow | None]], header: str = "") -> str:
    """A MAESTRO network file; every layer carries its own Dataflow block (none is inherited).

    ``header`` lines are written as ``//`` comments at the top.
    """
    body = "\n".join(format_layer(layer, df) for layer, df in layers)
    comments = "".join(f"// {line}\n" if line else "//\n" for line in header.splitlines())
    return f"{comments}Network {_check_name(name or 'network', 'network')} {{\n{body}\n}}\n"


def format_dataflow_template(dataflow: Dataflow) -> str:
    return "Dataflow {\n" + format_dataflow(dataflow, indent="\t") + "\n}\n"


def iter_layers(net: NetworkFile) -> Iterator[MappedLayer]:
    yield from net.layers
