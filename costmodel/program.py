"""A dataflow structure compiled for the kernel: what ``levels.build_levels`` does, once, symbolically.

``build_levels`` completes a dataflow level by level (input-centric rows and columns, inherited and
unrolled maps, strides) on numpy arrays over a batch. Here the same steps run once per (layer,
dataflow) on *registers*: every directive size, offset and level dimension becomes a register, and
the arithmetic between them becomes a short list of operations that the kernel replays per design
from the design's hole values. Everything else the analysis needs (directive kinds, dimensions,
which directive owns a dimension's tables, tensor couplings) becomes flat integer tables.

A structure's program is one int64 array laid out as described by the ``H_*``, ``L_*`` and ``E_*``
offsets below; programs of many structures are concatenated for one mixed batch (:class:`ProgramSet`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import diagnostics as dx
from .dataflow import Dataflow, DimSize, DirectiveKind, Hole
from .deviations import (
    executed_macs_applies,
    fold_output_applies,
    maps_filter_spatially,
    maps_within_share,
    output_row_strides,
    strided_window_rewritten,
)
from .errors import MappingError
from .layer import OUTPUT_NAME, OVERLAP_PAIRS, Layer, LayerType

# Register operations: (op, dst, a, b, c, d).
OP_CONST, OP_HOLE, OP_COPY, OP_WINDOW, OP_MIN, OP_POSITIVE, OP_SPAN, OP_STRIDE, OP_WHOLE = range(9)
OP_WIDTH = 6
REG_TOP_SUB = 0             # sub-clusters of the top level: the kernel writes it (needs num_pes)
REG_TAIL = 1                # set by OP_WHOLE where it keeps a strided tail (rule strided-tail-held)

# Header fields.
(H_LEVELS, H_REGS, H_HOLES, H_VARS, H_CONV, H_EXACT, H_OPS, H_NOPS, H_LEVEL_TAB, H_CLUSTERS,
 H_TENSORS, H_L1, H_TRUE_MACS, H_SIZE_IN, H_SIZE_W, H_SIZE_OUT, H_STATIC_ERR, H_DEV, H_VY, H_VX,
 H_VYP, H_VXP, H_VR, H_VS, H_MAX_ENTRIES, H_SY, H_SX, H_EXECUTED_MACS, H_OUT_Y, H_OUT_X, H_FULL_R,
 H_FULL_S, H_FULL_Y, H_FULL_X) = range(34)
HEADER = 34

# Level record fields.
(L_NENT, L_ENT, L_NUMSUB, L_DIMS, L_FIRST, L_SPFIRST, L_OWNERS, L_BELOW, L_TENSOR, L_PSUM, L_OUTF,
 L_SPALL, L_FOLD_OUTPUT) = range(13)
LEVEL_WIDTH = 13
# Per tensor (input, weight, output), L_TENSOR points to: [n, temporal coupled directives...],
# [n, spatial coupled directives...], the directive whose spatial state the tensor follows (-1: none),
# [n, its dimensions' first directives that are spatial...]. L_PSUM: [n, temporal directives not
# coupled to the output...], [n, spatial ones...]; L_OUTF: per output dimension (first directive,
# dimension, table dimension), temporal ones [n, triples...] then spatial ones; L_SPALL: [n, spatial
# directives...]; L_FOLD_OUTPUT: 1 where deviation edge-fold-output may apply at the level.

# Entry record fields.
E_KIND, E_VAR, E_OWNER, E_SIZE, E_OFS, E_TENSORS = range(6)
ENTRY_WIDTH = 6
T_INPUT, T_WEIGHT, T_OUTPUT = 1, 2, 4     # E_TENSORS bits: the tensors a directive's dimension couples
SPATIAL, TEMPORAL = 1, 0
STATIC_BAD_SIZE, STATIC_BAD_RS = 1, 2      # H_STATIC_ERR bits: errors every design has


@dataclass(slots=True)
class _Entry:
    kind: int
    var: str
    size: int               # register
    ofs: int
    origin: str
    label: str


class _Registers:
    """Allocates registers and records the operations between them; constants are known here."""

    def __init__(self) -> None:
        self.count = 2                     # registers 0 and 1 are REG_TOP_SUB and REG_TAIL
        self.ops: list[tuple[int, ...]] = []
        self.known: dict[int, int] = {}

    def new(self) -> int:
        self.count += 1
        return self.count - 1

    def op(self, *fields: int) -> None:
        self.ops.append(tuple(fields) + (0,) * (OP_WIDTH - len(fields)))

    def const(self, value: int) -> int:
        r = self.new()
        self.op(OP_CONST, r, value)
        self.known[r] = value
        return r

    def copy(self, src: int) -> int:
        r = self.new()
        self.op(OP_COPY, r, src)
        if src in self.known:
            self.known[r] = self.known[src]
        return r


@dataclass(frozen=True, slots=True, eq=False)
class Program:
    """One structure compiled: the flat program and what the Python side needs around it (compared
    and hashed by identity: ``compile_structure`` returns one object per structure)."""

    code: np.ndarray                    # int64, the layout above
    holes: tuple[str, ...]              # hole names in register order
    hole_directives: dict[str, str]     # hole -> the first directive that uses it (for errors)
    width: int                          # scratch row width the kernel needs (variables, entries)


def compile_structure(layer: Layer, dataflow: Dataflow, *, maestro_exact: bool,
                      ngconv_output_with_c: bool) -> Program:
    """The program of ``dataflow`` on ``layer`` (structure errors raise :class:`MappingError`, exactly as
    ``build_levels`` does). Cached per (layer, dataflow, options)."""
    return _compile(layer, dataflow, bool(maestro_exact), bool(ngconv_output_with_c))


@functools.lru_cache(maxsize=65536)
def _compile(layer: Layer, dataflow: Dataflow, maestro_exact: bool, ngconv_output_with_c: bool) -> Program:
    return _Compiler(layer, dataflow, maestro_exact, ngconv_output_with_c).build()


class _Compiler:
    def __init__(self, layer: Layer, dataflow: Dataflow, maestro_exact: bool, ngconv_with_c: bool):
        self.layer = layer
        self.dataflow = dataflow
        self.exact = maestro_exact
        self.tensors = layer.tensor_dims(ngconv_output_with_c=ngconv_with_c)
        self.full = {k: int(v) for k, v in layer.full_dims().items()}
        self.conv = layer.layer_type.is_conv_family
        self.regs = _Registers()
        # Holes in order of first appearance (``Dataflow.holes``): callers give values in that order.
        self.holes = {name: i for i, name in enumerate(dataflow.holes)}
        self.hole_directives: dict[str, str] = {}
        self.bad_size = False
        self.bad_rs = False

    # ---------------------------------------------------------------------------- values
    def value(self, sym, directive) -> int:
        """The register of a directive's size or offset."""
        if isinstance(sym, bool):
            raise MappingError(f"size must be an integer, got {sym!r}", directive=str(directive))
        if isinstance(sym, int):
            return self.regs.const(sym)
        if isinstance(sym, DimSize):
            if sym.dim not in self.full:
                raise MappingError(f"Sz({sym.dim}) refers to a dimension the layer does not have",
                                   directive=str(directive))
            return self.regs.const(self.full[sym.dim])
        if isinstance(sym, Hole):
            self.hole_directives.setdefault(sym.name, str(directive))
            r = self.regs.new()
            self.regs.op(OP_HOLE, r, self.holes[sym.name])
            return r
        raise MappingError(f"unsupported size {sym!r}", directive=str(directive))

    def positive(self, *regs: int) -> None:
        """Sizes below 1 are an error of the design, and analysed as 1 (as ``build_levels`` does)."""
        known = self.regs.known
        if all(r in known for r in regs):
            if any(known[r] < 1 for r in regs):
                self.bad_size = True
                for r in regs:
                    known[r] = max(known[r], 1)
                    self.regs.op(OP_CONST, r, known[r])
            return
        self.regs.op(OP_POSITIVE, regs[0], regs[-1])
        for r in regs:
            known.pop(r, None)

    # ---------------------------------------------------------------------------- levels
    def build(self) -> Program:
        layer, regs = self.layer, self.regs
        clusters = self.dataflow.clusters
        if len(clusters) > 3:
            raise MappingError(f"{len(clusters)} Cluster directives: at most 3 (4 levels) are supported",
                               layer=layer.name)
        cluster_regs = []
        for c in clusters:
            r = self.value(c.size, c)
            self.positive(r)
            cluster_regs.append(r)
        strides = layer.row_strides()
        input_side = layer.tensors.input_side_dims
        uncoupled = layer.tensors.uncoupled_dims(self.full)
        dims = {k: regs.const(v) for k, v in self.full.items()}
        levels: list[tuple[list[_Entry], dict[str, int], int]] = []
        upper: list[_Entry] | None = None
        skipped = False
        within_share = False
        for index, own in enumerate(self.dataflow.levels):
            entries: list[_Entry] = []
            dropped = maps_within_share(own, self.full, self.exact)
            within_share |= bool(dropped)
            for d in (d for i, d in enumerate(own) if i not in dropped):
                size = self.value(d.size, d)
                ofs = self.value(d.offset, d)
                self.positive(size, ofs)
                if d.kind is DirectiveKind.TEMPORAL and d.dim in ("R", "S") and d.dim in self.full:
                    self.span(size, ofs, self.full[d.dim])
                kind = SPATIAL if d.kind is DirectiveKind.SPATIAL else TEMPORAL
                entries.append(_Entry(kind, d.dim, size, ofs, "own", str(d)))
            if self.conv:
                self.input_centric(entries, dims, index)
            if upper is not None:
                for u in upper:
                    if any(e.var == u.var for e in entries):
                        continue
                    if u.var not in dims:
                        skipped = True
                        continue
                    origin = "unrolled" if u.origin == "unrolled" else "inherited"   # levels.py
                    entries.insert(0, _Entry(TEMPORAL, u.var, regs.copy(u.size), regs.copy(u.ofs),
                                             origin, f"TemporalMap {u.var} ({origin})"))
            for var in input_side:
                if var in dims and not any(e.var == var for e in entries):
                    entries.append(_Entry(TEMPORAL, var, regs.copy(dims[var]), regs.copy(dims[var]),
                                          "unrolled", f"TemporalMap {var} (unrolled)"))
            for e in entries:
                if e.origin == "own" and e.var in uncoupled and e.var not in dims:
                    dims = {**dims, e.var: regs.const(1)}   # nothing to walk: one iteration
                    skipped = True
                if e.var not in dims:
                    raise MappingError(f"{e.var} is not a dimension of this layer at this level",
                                       layer=layer.name, level=index, directive=e.label)
            if self.conv:
                self.stride(entries, strides, dims, index == 0)
            n_spatial = sum(e.kind == SPATIAL for e in entries)
            if n_spatial == 0:
                raise MappingError("no SpatialMap at this level (each level needs one or two)",
                                   layer=layer.name, level=index)
            if n_spatial > 2:
                raise MappingError(f"{n_spatial} SpatialMaps at this level (at most two are supported)",
                                   layer=layer.name, level=index)
            num_sub = REG_TOP_SUB if index == 0 else cluster_regs[index - 1]
            levels.append((entries, dims, num_sub))
            lower = {}
            for var in input_side:
                i = next((i for i, e in enumerate(entries) if e.var == var), None)
                if i is not None:
                    r = regs.new()
                    regs.op(OP_MIN, r, entries[i].size, dims[var])
                    lower[var] = r
            dims = lower
            upper = entries
        return self.layout(levels, cluster_regs, skipped, within_share)

    def span(self, size: int, ofs: int, full: int) -> None:
        """A TemporalMap on R or S must cover the whole filter (MAESTRO's rule, kept under
        ``maestro_exact`` only: the model counts partial filter maps, rule partial-filter-rows)."""
        if not self.exact:
            return
        known = self.regs.known
        if size in known and ofs in known:
            self.bad_rs |= known[size] != full or known[ofs] != full
        else:
            self.regs.op(OP_SPAN, size, ofs, full)

    def input_centric(self, entries: list[_Entry], dims: dict[str, int], index: int) -> None:
        for primed, plain, filt in (("Y'", "Y", "R"), ("X'", "X", "S")):
            primed_idx = [i for i, e in enumerate(entries) if e.var == primed]
            if not primed_idx:
                continue
            if any(e.var == plain for e in entries):
                raise MappingError(f"both {plain} and {primed} are mapped at this level",
                                   layer=self.layer.name, level=index)
            if len(primed_idx) > 1:
                raise MappingError(f"{primed} is mapped twice at this level", layer=self.layer.name,
                                   level=index)
            filt_idx = [i for i, e in enumerate(entries) if e.var == filt]
            filt_size = entries[filt_idx[-1]].size if filt_idx else dims.get(filt)
            if filt_size is None:
                raise MappingError(f"{primed} needs a filter dimension {filt}", layer=self.layer.name,
                                   level=index)
            e = entries[primed_idx[0]]
            e.var = plain
            r = self.regs.new()
            self.regs.op(OP_WINDOW, r, e.size, filt_size)
            e.size = r

    def stride(self, entries: list[_Entry], strides: dict[str, int], dims: dict[str, int],
               is_top: bool) -> None:
        for ref, sliding in OVERLAP_PAIRS:
            s = strides.get(ref, 1)
            if s == 1 or sliding not in self.full:
                continue
            r = self.full[sliding]
            first = next((e for e in entries if e.var == ref), None)
            for e in entries:
                if e.var == ref:
                    whole = not self.exact and e.origin == "unrolled"
                    mapped = self.regs.copy(e.size) if whole else None
                    self.regs.op(OP_STRIDE, first.size, first.ofs, e.size, s,
                                 r * 4 + 2 * int(self.exact) + int(is_top))
                    if mapped is not None:          # levels._apply_stride: rule strided-tail-held
                        self.regs.op(OP_WHOLE, first.size, mapped, dims[ref])

    # ---------------------------------------------------------------------------- layout
    def layout(self, levels, cluster_regs: list[int], skipped: bool, within_share: bool) -> Program:
        layer, t = self.layer, self.tensors
        names = list(self.full)
        for extra in ("Y'", "X'"):
            if self.conv and extra not in names:
                names.append(extra)
        var = {n: i for i, n in enumerate(names)}
        V = len(names)
        out: list[int] = [0] * HEADER

        def section(values) -> int:
            start = len(out)
            out.extend(int(v) for v in values)
            return start

        level_tab = section([0] * (LEVEL_WIDTH * len(levels)))
        for li, (entries, dims, num_sub) in enumerate(levels):
            owner = {e.var: i for i, e in enumerate(entries)}
            tensor_dims = (t.input, t.weight, t.output)
            rows = []
            for e in entries:
                bits = sum(bit for bit, dims in zip((T_INPUT, T_WEIGHT, T_OUTPUT), tensor_dims, strict=True)
                           if e.var in dims)
                rows += [e.kind, var[e.var], owner[e.var], e.size, e.ofs, bits]
            first: dict[str, int] = {}
            for i, e in enumerate(entries):
                first.setdefault(e.var, i)
            spatial = [i for i, e in enumerate(entries) if e.kind == SPATIAL]
            per_tensor = []
            for coupled_dims in tensor_dims:
                coupled = [i for i, e in enumerate(entries) if e.var in coupled_dims]
                firsts = [first[v] for v in coupled_dims if first[v] in spatial]
                per_tensor += [*_split(coupled, spatial), firsts[-1] if firsts else -1, len(firsts), *firsts]
            psum = _split([i for i, e in enumerate(entries) if e.var not in t.output], spatial)
            outf = {True: [], False: []}
            for v in t.output:
                a = OUTPUT_NAME[v] if (self.conv and v in OUTPUT_NAME) else v
                outf[first[v] in spatial] += [first[v], var[v], var[a]]
            # The sub-cluster tile: the dimensions below this level tiles (one mapped only below, K of
            # DSCONV, keeps its own size there).
            below = [v for v in levels[li + 1][1] if v in first] if li + 1 < len(levels) else []
            rec = level_tab + LEVEL_WIDTH * li
            out[rec + L_NENT] = len(entries)
            out[rec + L_ENT] = section(rows)
            out[rec + L_NUMSUB] = num_sub
            out[rec + L_DIMS] = section(dims.get(n, -1) for n in names)
            out[rec + L_FIRST] = section(first.get(n, -1) for n in names)
            out[rec + L_SPFIRST] = next(i for i, e in enumerate(entries) if e.kind == SPATIAL)
            owners = sorted(set(owner.values()))
            out[rec + L_OWNERS] = section([len(owners), *owners])
            out[rec + L_BELOW] = section([len(below), *(var[v] for v in below)])
            out[rec + L_TENSOR] = section(per_tensor)
            out[rec + L_PSUM] = section(psum)
            out[rec + L_OUTF] = section([len(outf[False]) // 3, *outf[False],
                                         len(outf[True]) // 3, *outf[True]])
            out[rec + L_SPALL] = section([len(spatial), *spatial])
            out[rec + L_FOLD_OUTPUT] = int(fold_output_applies(layer, self.exact,
                                                               maps_filter_spatially(entries, SPATIAL)))
        tensors = section([x for dims in (t.input, t.weight, t.output)
                           for x in (len(dims), *(var[v] for v in dims))])
        # Per tensor: its innermost map sizes, each with the dimension it maps there (-1: none), as
        # the held tile is the smaller (deviation l1-held-tile).
        inner_entries, inner_dims, _ = levels[-1]
        inner = {e.var: e.size for e in inner_entries}
        l1 = section([x for dims in (t.input, t.weight, t.output)
                      for x in (sum(v in inner for v in dims),
                                *(r for v in dims if v in inner for r in (inner[v], inner_dims.get(v, -1))))])
        clusters = section([len(cluster_regs), *cluster_regs])
        # Constants and holes write fresh registers (a constant corrected to 1 is rewritten right
        # after it is made), so they can run first; runs of one kind keep the kernel's dispatch
        # predictable. The other operations keep their order.
        first = {OP_CONST: 0, OP_HOLE: 1}
        ordered = sorted(self.regs.ops, key=lambda op: first.get(op[0], 2))
        ops = section([x for op in ordered for x in op])
        sizes = layer.tensor_sizes()
        dev = 0
        if self.conv and any(layer.stride(d) != 1 for d in ("Y", "X", "Y'", "X'")):
            dev |= dx.DEV_BIT["stride-output-reads"]
        if skipped:
            dev |= dx.DEV_BIT["uncoupled-dim-inherited"]
        if within_share:
            dev |= dx.DEV_BIT["map-within-share"]
        if strided_window_rewritten(layer, self.exact):
            dev |= dx.DEV_BIT["strided-output-rows"]
        if layer.layer_type is LayerType.NGCONV:
            dev |= dx.DEV_BIT["ngconv-output-reads" if "C" in t.output else "ngconv-output"]
        static_err = STATIC_BAD_SIZE * self.bad_size | STATIC_BAD_RS * self.bad_rs
        header = {H_LEVELS: len(levels), H_REGS: self.regs.count, H_HOLES: len(self.holes), H_VARS: V,
                  H_CONV: int(self.conv), H_EXACT: int(self.exact), H_OPS: ops, H_NOPS: len(self.regs.ops),
                  H_LEVEL_TAB: level_tab, H_CLUSTERS: clusters, H_TENSORS: tensors, H_L1: l1,
                  H_TRUE_MACS: layer.true_macs, H_SIZE_IN: sizes["input"], H_SIZE_W: sizes["weight"],
                  H_SIZE_OUT: sizes["output"], H_STATIC_ERR: static_err, H_DEV: dev,
                  H_MAX_ENTRIES: max(len(e) for e, _, _ in levels),
                  H_EXECUTED_MACS: int(executed_macs_applies(
                      layer, self.exact, any(maps_filter_spatially(e, SPATIAL) for e, _, _ in levels)))}
        rows = output_row_strides(layer, self.exact)
        header[H_SY], header[H_SX] = rows["Y"], rows["X"]
        # The layer's output rows, filter and input rows (rules partial-filter-rows and
        # partial-filter-shift, which the kernel applies outside maestro_exact).
        if self.conv:
            header[H_OUT_Y], header[H_OUT_X] = layer.output_size("Y"), layer.output_size("X")
            header[H_FULL_R], header[H_FULL_S] = self.full.get("R", 1), self.full.get("S", 1)
            header[H_FULL_Y], header[H_FULL_X] = self.full["Y"], self.full["X"]
        for field, name in ((H_VY, "Y"), (H_VX, "X"), (H_VYP, "Y'"), (H_VXP, "X'"), (H_VR, "R"),
                            (H_VS, "S")):
            header[field] = var.get(name, -1) if self.conv else -1
        for k, v in header.items():
            out[k] = v
        code = np.array(out, dtype=np.int64)
        code.setflags(write=False)
        width = max(int(code[H_VARS]), int(code[H_MAX_ENTRIES]), 2)
        return Program(code, tuple(self.holes), dict(self.hole_directives), width)


def _split(entries: list[int], spatial: list[int]) -> list[int]:
    """[n, temporal entries..., n, spatial entries...]"""
    temporal = [i for i in entries if i not in spatial]
    maps = [i for i in entries if i in spatial]
    return [len(temporal), *temporal, len(maps), *maps]


class ProgramSet:
    """Programs of several structures in one array, for one (mixed) batch: ``starts[s]`` is where
    structure ``s``'s program begins."""

    def __init__(self, programs: list[Program]) -> None:
        self.programs = programs
        codes = [p.code for p in programs]
        lengths = np.fromiter((len(c) for c in codes), dtype=np.int64, count=len(codes))
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.code = np.concatenate(codes) if programs else np.zeros(0, np.int64)
        self.max_regs = int(self.code[self.starts + H_REGS].max())
        self.width = max(p.width for p in programs)              # of the kernel's scratch rows
