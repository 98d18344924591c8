"""Cluster levels: how a dataflow is split and completed level by level (semantics doc 4.1-4.2).

The *structure* (which directives each level holds, in which order, on which dimensions) is fixed by the
dataflow; the *sizes* are numpy arrays over a batch, so one construction serves a whole batch of tile
sizes and PE counts. Per level, in MAESTRO's order:

1. ``Y'``/``X'`` directives become ``Y``/``X`` directives with ``size + R - 1`` (``S - 1``);
2. dimensions mapped at the level above but not here inherit ``TemporalMap(upper size, upper offset)``
   (each inserted at the front);
3. input/weight dimensions still unmapped get ``TemporalMap(D, D)`` (alphabetical order);
4. ``Y``/``X`` maps at least as large as the filter are rewritten for the stride;
5. the level below sees each input/weight dimension as ``min(size of its first directive here, size here)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .dataflow import Dataflow, DimSize, Directive, DirectiveKind, Hole
from .deviations import maps_within_share
from .errors import MappingError
from .layer import OVERLAP_PAIRS, Layer

SPATIAL = "S"
TEMPORAL = "T"


@dataclass(slots=True)
class Entry:
    """A map directive as analysed at one level; ``size``/``ofs`` are int64 arrays over the batch."""

    kind: str                 # SPATIAL or TEMPORAL
    var: str
    size: np.ndarray
    ofs: np.ndarray
    origin: str               # "own", "inherited" or "unrolled"
    directive: Directive | None = None

    def label(self) -> str:
        kind = "SpatialMap" if self.kind == SPATIAL else "TemporalMap"
        if self.directive is not None:
            return str(self.directive)
        return f"{kind} {self.var} ({self.origin})"


@dataclass(slots=True)
class Level:
    """One cluster level: its completed directives, its dimension sizes and its sub-cluster count."""

    index: int                # 0 = top (next to L2)
    entries: list[Entry]
    dims: dict[str, np.ndarray]
    num_sub: np.ndarray       # sub-clusters (PEs at the innermost level) under this level
    strides: dict[str, int] = field(default_factory=dict)

    def first_entry(self, var: str) -> int | None:
        for i, e in enumerate(self.entries):
            if e.var == var:
                return i
        return None

    def owner_entry(self, var: str) -> int | None:
        """The last directive on ``var``: MAESTRO's per-dimension tables keep the last one."""
        found = None
        for i, e in enumerate(self.entries):
            if e.var == var:
                found = i
        return found


@dataclass(slots=True)
class LevelStack:
    levels: list[Level]
    used_pes: np.ndarray
    cluster_product: np.ndarray
    bad_cluster: np.ndarray   # cluster sizes multiply past the PE count (MAESTRO: SIGFPE, Q3)
    bad_size: np.ndarray      # some directive size or offset is not a positive integer
    bad_rs: np.ndarray        # maestro_exact: a TemporalMap on R/S does not span the whole filter
    skipped_inheritance: bool = False   # an uncoupled dimension (K of DSCONV) not carried down, or
                                        # walked with size 1 where a lower level maps it
    within_share: bool = False          # a later map covering an earlier one's tile was dropped
    tail_held: np.ndarray | bool = False    # a strided map kept the rows past its last window


def _value(sym, layer_dims: dict[str, int], holes: dict[str, np.ndarray], batch: int, directive):
    """A directive's size or offset as an array over the batch (``directive`` names it in errors)."""
    if isinstance(sym, bool):
        raise MappingError(f"size must be an integer, got {sym!r}", directive=str(directive))
    if isinstance(sym, int):
        return np.full(batch, sym, dtype=np.int64)
    if isinstance(sym, DimSize):
        if sym.dim not in layer_dims:
            raise MappingError(f"Sz({sym.dim}) refers to a dimension the layer does not have",
                               directive=str(directive))
        return np.full(batch, layer_dims[sym.dim], dtype=np.int64)
    if isinstance(sym, Hole):
        if sym.name not in holes:
            raise MappingError(f"no value given for hole ?{sym.name}", directive=str(directive))
        return np.broadcast_to(np.asarray(holes[sym.name], dtype=np.int64), (batch,)).copy()
    raise MappingError(f"unsupported size {sym!r}", directive=str(directive))


def build_levels(layer: Layer, dataflow: Dataflow, num_pes: np.ndarray,
                 holes: dict[str, np.ndarray], batch: int, *, maestro_exact: bool = False) -> LevelStack:
    """Split ``dataflow`` into completed levels for ``layer`` (structure errors raise ``MappingError``)."""
    full = layer.full_dims()
    layer_dims = {k: int(v) for k, v in full.items()}
    input_side = layer.tensors.input_side_dims
    uncoupled = layer.tensors.uncoupled_dims(full)
    conv = layer.layer_type.is_conv_family
    per_level = dataflow.levels
    clusters = dataflow.clusters
    if len(clusters) > 3:
        raise MappingError(f"{len(clusters)} Cluster directives: at most 3 (4 levels) are supported",
                           layer=layer.name)

    bad_size = np.zeros(batch, dtype=bool)
    bad_rs = np.zeros(batch, dtype=bool)
    cluster_sizes = []
    for c in clusters:
        v = _value(c.size, layer_dims, holes, batch, c)
        bad_size |= v < 1
        cluster_sizes.append(np.maximum(v, 1))
    product = np.ones(batch, dtype=np.int64)
    for v in cluster_sizes:
        product = product * v
    num_pes = np.broadcast_to(np.asarray(num_pes, dtype=np.int64), (batch,))
    top_sub = num_pes // product
    bad_cluster = top_sub < 1
    top_sub = np.maximum(top_sub, 1)
    used_pes = product * top_sub

    strides = layer.row_strides()

    levels: list[Level] = []
    skipped = False
    dims = {k: np.full(batch, v, dtype=np.int64) for k, v in layer_dims.items()}
    upper: Level | None = None
    within_share = False
    tail_held = np.zeros(batch, dtype=bool)
    for index, own in enumerate(per_level):
        entries: list[Entry] = []
        dropped = maps_within_share(own, layer_dims, maestro_exact)
        within_share |= bool(dropped)
        for d in (d for i, d in enumerate(own) if i not in dropped):
            size = _value(d.size, layer_dims, holes, batch, d)
            ofs = _value(d.offset, layer_dims, holes, batch, d)
            # A size without holes is the same over the batch: one element tells.
            holed = isinstance(d.size, Hole) or isinstance(d.offset, Hole)
            if holed or (batch and (size[0] < 1 or ofs[0] < 1)):
                bad_size |= (size < 1) | (ofs < 1)
                size, ofs = np.maximum(size, 1), np.maximum(ofs, 1)
            # MAESTRO's parser rule, kept under maestro_exact only (rule partial-filter-rows).
            filter_map = d.kind is DirectiveKind.TEMPORAL and d.dim in ("R", "S") and d.dim in layer_dims
            if maestro_exact and filter_map:
                bad_rs |= (size != layer_dims[d.dim]) | (ofs != layer_dims[d.dim])
            kind = SPATIAL if d.kind is DirectiveKind.SPATIAL else TEMPORAL
            entries.append(Entry(kind, d.dim, size, ofs, "own", d))
        if conv:
            _to_input_centric(entries, dims, layer, index)
        if upper is not None:
            for u in upper.entries:
                # A dimension no input or weight is coupled to (K of DSCONV) has no extent below the
                # top; MAESTRO inherits it anyway and stops ("Dimension K not found"), we skip it.
                if any(e.var == u.var for e in entries):
                    continue
                if u.var not in dims:
                    skipped = True
                    continue
                # A dimension no level above maps stays unmapped (whole) here too.
                origin = "unrolled" if u.origin == "unrolled" else "inherited"
                entries.insert(0, Entry(TEMPORAL, u.var, u.size.copy(), u.ofs.copy(), origin))
        for var in input_side:
            if var in dims and not any(e.var == var for e in entries):
                entries.append(Entry(TEMPORAL, var, dims[var].copy(), dims[var].copy(), "unrolled"))
        for e in entries:
            # Below the top a dimension no tensor is coupled to (K of DSCONV) has nothing to walk:
            # a map on it takes one iteration (MAESTRO stops with "Dimension K not found").
            if e.origin == "own" and e.var in uncoupled and e.var not in dims:
                dims = {**dims, e.var: np.ones(batch, dtype=np.int64)}
                skipped = True
            if e.var not in dims:
                raise MappingError(f"{e.var} is not a dimension of this layer at this level",
                                   layer=layer.name, level=index, directive=e.label())
        if conv:
            tail_held = tail_held | _apply_stride(entries, strides, layer_dims, dims, is_top=index == 0,
                                                  maestro_exact=maestro_exact)
        n_spatial = sum(e.kind == SPATIAL for e in entries)
        if n_spatial == 0:
            raise MappingError("no SpatialMap at this level (each level needs one or two)",
                               layer=layer.name, level=index)
        if n_spatial > 2:
            raise MappingError(f"{n_spatial} SpatialMaps at this level (at most two are supported)",
                               layer=layer.name, level=index)
        num_sub = top_sub if index == 0 else cluster_sizes[index - 1]
        level = Level(index, entries, dims, num_sub, dict(strides))
        levels.append(level)
        # Dimensions seen by the level below.
        lower = {}
        for var in input_side:
            i = level.first_entry(var)
            if i is not None:
                lower[var] = np.minimum(entries[i].size, dims[var])
        dims = lower
        upper = level
    return LevelStack(levels, used_pes, product, bad_cluster, bad_size, bad_rs, skipped, within_share,
                      tail_held)


def _to_input_centric(entries: list[Entry], dims: dict[str, np.ndarray], layer: Layer,
                      index: int) -> None:
    """``Y'``/``X'`` tiles become input-row/column tiles: size + R - 1 (S - 1)."""
    for primed, plain, filt in (("Y'", "Y", "R"), ("X'", "X", "S")):
        primed_idx = [i for i, e in enumerate(entries) if e.var == primed]
        if not primed_idx:
            continue
        if any(e.var == plain for e in entries):
            raise MappingError(f"both {plain} and {primed} are mapped at this level", layer=layer.name,
                               level=index)
        if len(primed_idx) > 1:
            raise MappingError(f"{primed} is mapped twice at this level", layer=layer.name, level=index)
        filt_idx = [i for i, e in enumerate(entries) if e.var == filt]
        # MAESTRO takes the filter tile from this level's own R/S directive; with none it reads an
        # uninitialised value, so we use the filter size at this level instead.
        filt_size = entries[filt_idx[-1]].size if filt_idx else dims.get(filt)
        if filt_size is None:
            raise MappingError(f"{primed} needs a filter dimension {filt}", layer=layer.name, level=index)
        e = entries[primed_idx[0]]
        e.var = plain
        e.size = e.size + filt_size - 1


def _apply_stride(entries: list[Entry], strides: dict[str, int], layer_dims: dict[str, int],
                  dims: dict[str, np.ndarray], is_top: bool, maestro_exact: bool) -> np.ndarray:
    """Rewrite Y/X maps for a stride s (semantics doc 4.1, ``ApplyOuterStride``). For a filter
    shorter than the stride MAESTRO's window is the o·R rows the filter uses, walked by o·s rows at
    the top and o·R below; the default model keeps the rows between them in the window, (o-1)·s + R
    rows walked by o·s at every level, so window, offset and dimension share one row numbering (rule
    strided-output-rows). Returns where a map kept its dimension's tail (strided-tail-held)."""
    grew = np.zeros_like(next(iter(dims.values())), dtype=bool)
    for ref, sliding in OVERLAP_PAIRS:
        s = strides.get(ref, 1)
        if s == 1 or sliding not in layer_dims:
            continue
        r = layer_dims[sliding]
        first = next((i for i, e in enumerate(entries) if e.var == ref), None)
        for e in list(entries):
            if e.var != ref:
                continue
            m = e.size
            apply = m >= r
            out = (m + s - r) // s
            if maestro_exact or r >= s:
                new_size = out * min(s, r) + max(r - s, 0)
                new_ofs = out * (r if (not is_top and r < s) else s)
            else:
                new_size, new_ofs = (out - 1) * s + r, out * s
            if not maestro_exact:
                # A dimension the level does not map is held whole, the rows past the last
                # output's window too (rule strided-tail-held; MAESTRO's rewrite of the map it
                # inserts cuts them off). A map the dataflow gives keeps MAESTRO's rewrite.
                keep = (e.origin == "unrolled") & (m >= dims[ref]) & (new_size < dims[ref])
                grew = grew | (apply & keep)
                new_size = np.where(keep, dims[ref], new_size)
            target = entries[first]
            target.size = np.where(apply, new_size, target.size)
            target.ofs = np.where(apply, new_ofs, target.ofs)
    return grew
