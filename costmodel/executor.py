"""A reference executor: a layer's dataflow played out literally, step by step, PE by PE.

This is the independent ground truth the analytical model is checked against (``dse validate``). It
shares no code with the engine's analysis (``engine.py``, ``program.py``, ``kernel.py``,
``levels.py``): it reads only the directives' definitions and walks them.

Definitions (semantics doc sections 3 and 4.1-4.2, read literally):

* A map ``(size m, offset f)`` on dimension D walks D's extent at its level: windows
  ``[lo + k f, lo + k f + m)``, clipped to the extent, for k = 0, 1, ... until a window reaches the end
  of the extent (the last one is the *edge tile*: what is left of D). A window starting past the end
  does not exist.
* ``TemporalMap``: every sub-cluster gets the same window; one loop level per map.
* ``SpatialMap``: window number ``j N + i`` goes to sub-cluster ``i`` in fold ``j`` (N sub-clusters); a
  fold with fewer windows leaves sub-clusters idle. A second ``SpatialMap`` on a level has its own loop
  over its own folds, and sub-cluster ``i`` gets window ``j' N + i`` of it: within a fold the two move in
  lockstep (as MAESTRO runs them), so sub-cluster i never sees window pairs of different indices mod N.
* Directive order is loop order, outermost first. A dimension a level does not map is held whole.
* ``Cluster(n)`` ends a level: each sub-cluster's tile is the extent its level below walks. The top
  level has ``num_pes // (n1 x n2 ...)`` sub-clusters.
* CONV family: ``Y``/``X`` are input rows/columns; a map on ``Y'``/``X'`` is one on ``Y``/``X`` of size
  ``m + R - 1`` (R: this level's R directive size, else the R extent); with a stride s != 1, a ``Y``
  map of size m >= R is MAESTRO's strided map: ``o = (m + s - R) // s`` output rows per window, the
  rows ``(o - 1) s + R`` they read (MAESTRO's ``o min(s, R) + max(R - s, 0)`` when R >= s), offset
  ``o s``.
* A PE computes, for its tile, every MAC whose filter row is in its R window and whose output row's
  whole window of that R window lies inside its Y window (likewise X/S): output row y' with
  ``y' s + r_lo >= y_lo`` and ``y' s + r_hi <= y_hi``. A tile smaller than its filter window
  computes nothing.

What is recorded, per level step, for the sub-clusters that execute some MAC in it (one that
computes nothing in a step receives nothing and keeps what it held; a step in which no sub-cluster
computes takes no time): each sub-cluster's tile of each
tensor (occupancy, hence the L1 and L2 requirements, double-buffered: 2 x the largest tile); the input
and weight elements it must receive because it did not hold them at its previous step of the same
walk (temporal reuse), read once from the level above however many sub-clusters receive them
(multicast), hence L2 reads and NoC traffic; the output elements each sub-cluster produces in the
step, sent up once however many sub-clusters reduce into them (hence output L2 writes, MAESTRO's
convention of partial sums leaving every step); and every MAC each PE executes, marked in a coverage
array over the layer's iteration space.

Timing follows the model's rules: a NoC transfer of V > 0 elements takes ``latency + ceil(V/bw) - 1``
cycles (0 for V = 0); a PE step takes ``ceil(MACs / lanes)``; a sub-cluster step's compute is the
slowest sub-cluster's runtime for its tile (each walk of a level starts with nothing held); the first
step of a walk costs compute + ingress (pipeline fill), every other ``max(ingress, compute, egress)``
(double buffering); at the top, ``max(that, in_offchip // 2, out_offchip // 2)`` where the off-chip
delays are the L2 requirements over the off-chip bandwidth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .accelerator import Accelerator
from .dataflow import Dataflow
from .errors import MappingError, SpecError
from .layer import Layer, LayerType

MAX_MACS = 10**7        # the layer's iteration space (coverage array)
MAX_STEPS = 10**6       # level steps, summed over every walk of every level

Range = tuple[int, int]   # half-open [lo, hi)
Tile = dict[str, Range]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Map:
    spatial: bool
    dim: str
    size: int
    offset: int
    text: str


@dataclass(slots=True, kw_only=True)
class ExecutionReport:
    """What a literal execution of one layer's dataflow did. Counts in elements, times in cycles."""

    layer: str
    steps: int = 0                      # level steps executed, all walks of all levels
    top_steps: int = 0
    macs_layer: int = 0                 # MACs of the layer's iteration space
    macs_executed: int = 0              # MAC executions, repeats included
    macs_distinct: int = 0              # distinct MACs executed at least once
    outputs_total: int = 0
    outputs_never_written: int = 0      # output elements no MAC contributes to
    l1_req: dict[str, int] = field(default_factory=dict)    # per tensor, per PE, double-buffered
    l1_output_window: int = 0           # output L1 measured over its input window (MAESTRO's convention)
    l2_req: dict[str, int] = field(default_factory=dict)    # per tensor, double-buffered
    input_l2_reads: int = 0
    weight_l2_reads: int = 0
    output_l2_writes: int = 0
    input_deliveries: int = 0           # element-deliveries to top-level sub-clusters (multicast counted)
    weight_deliveries: int = 0
    runtime_cycles: int = 0
    pe_peak_cycles: int = 0             # ceil(layer MACs / (used PEs x lanes))
    used_pes: int = 0

    @property
    def macs_repeated(self) -> int:
        return self.macs_executed - self.macs_distinct

    @property
    def macs_skipped(self) -> int:
        return self.macs_layer - self.macs_distinct

    @property
    def l1_size_req(self) -> int:
        return sum(self.l1_req.values())

    @property
    def l2_size_req(self) -> int:
        return sum(self.l2_req.values())

    @property
    def exact_cover(self) -> bool:
        """Every MAC of the layer executed exactly once."""
        return self.macs_repeated == 0 and self.macs_skipped == 0

    def figures(self) -> dict[str, int]:
        return {"num_macs": self.macs_executed, "l1_size_req": self.l1_size_req,
                "l2_size_req": self.l2_size_req, "input_l2_reads": self.input_l2_reads,
                "weight_l2_reads": self.weight_l2_reads, "output_l2_writes": self.output_l2_writes,
                "runtime_cycles": self.runtime_cycles}

    def coverage_problem(self) -> str | None:
        """Why the mapping does not compute the layer, or None if every MAC runs exactly once."""
        parts = []
        if self.outputs_never_written:
            parts.append(f"{self.outputs_never_written:,} of {self.outputs_total:,} outputs are never "
                         "written")
        if self.macs_skipped:
            parts.append(f"{self.macs_skipped:,} of {self.macs_layer:,} MACs never executed")
        if self.macs_repeated:
            parts.append(f"{self.macs_repeated:,} MAC executions repeat one already done")
        return "; ".join(parts) or None


# ------------------------------------------------------------------------------------- the layer
@dataclass(frozen=True, slots=True)
class _Space:
    """The layer as the executor sees it: mapping dimensions, tensors, the iteration space."""

    dims: dict[str, int]                 # mapping dimension -> extent (Y, X: input rows/columns)
    tensors: dict[str, tuple[str, ...]]  # input/weight: mapping dims; output: with Y, X as outputs
    iteration: tuple[str, ...]           # coverage axes (Y, X: output rows/columns)
    out_size: dict[str, int]             # Y, X -> output rows/columns
    stride: dict[str, int]
    conv: bool

    @property
    def iteration_dims(self) -> tuple[str, ...]:
        return tuple(self.dims)

    @property
    def iteration_axes_dims(self) -> tuple[str, ...]:
        return self.iteration


def _space(layer: Layer) -> _Space:
    given = layer.dim_map
    full = layer.full_dims()
    lt = layer.layer_type
    if lt is LayerType.GEMM:
        dims = {d: full[d] for d in ("M", "N", "K")}
        return _Space(dims, {"input": ("M", "K"), "weight": ("K", "N"), "output": ("M", "N")},
                      ("M", "N", "K"), {}, {}, False)
    dims = {d: v for d, v in full.items() if d not in ("Y'", "X'")}
    dims.setdefault("R", 1)
    dims.setdefault("S", 1)
    stride = {p: layer.stride(p if p in given else p + "'") for p in ("Y", "X")}
    out_size = {p: (dims[p] - dims[f]) // stride[p] + 1 for p, f in (("Y", "R"), ("X", "S"))}
    batch = ("N",) if "N" in dims else ()
    if lt is LayerType.DSCONV:
        t = {"input": (*batch, "C", "Y", "X"), "weight": ("C", "R", "S"), "output": (*batch, "C", "Y", "X")}
        it = (*batch, "C", "R", "S", "Y", "X")
    elif lt is LayerType.NGCONV:
        t = {"input": (*batch, "G", "C", "Y", "X"), "weight": ("G", "K", "C", "R", "S"),
             "output": (*batch, "G", "K", "Y", "X")}
        it = (*batch, "G", "K", "C", "R", "S", "Y", "X")
    else:
        t = {"input": (*batch, "C", "Y", "X"), "weight": ("K", "C", "R", "S"),
             "output": (*batch, "K", "Y", "X")}
        it = (*batch, "K", "C", "R", "S", "Y", "X")
    return _Space(dims, t, it, out_size, stride, True)


def _windows(lo: int, hi: int, size: int, offset: int) -> list[Range]:
    """The windows a map walks over ``[lo, hi)``: until one reaches the end; none past it."""
    out = []
    start = lo
    while start < hi:
        out.append((start, min(start + size, hi)))
        if start + size >= hi:
            break
        start += offset
    return out


def _out_range(space: _Space, tile: Tile, plain: str, filt: str) -> Range:
    """Output rows (columns) whose whole window of the tile's filter rows lies in its input rows."""
    (y0, y1), (r0, r1), s = tile[plain], tile[filt], space.stride[plain]
    lo = max(0, -((r0 - y0) // s))           # ceil((y0 - r0) / s)
    hi = min(space.out_size[plain], (y1 - r1) // s + 1)
    return lo, max(lo, hi)


def _box(space: _Space, tile: Tile, tensor: str) -> tuple[Range, ...]:
    """The tile of ``tensor`` a (sub-)cluster with this tile holds (outputs in output coordinates)."""
    if tensor == "output" and space.conv:
        out = {"Y": _out_range(space, tile, "Y", "R"), "X": _out_range(space, tile, "X", "S")}
        return tuple(out[d] if d in out else tile[d] for d in space.tensors["output"])
    return tuple(tile[d] for d in space.tensors[tensor])


class _Held:
    """What each sub-cluster of a walk held of one tensor at its previous step."""

    def __init__(self, n: int, k: int) -> None:
        self.lo = np.zeros((n, k), dtype=np.int64)
        self.hi = np.zeros((n, k), dtype=np.int64)
        self.valid = np.zeros(n, dtype=bool)


def _volumes(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Volumes of boxes given as rows of bounds."""
    return np.prod(np.maximum(hi - lo, 0), axis=-1)


def _varying(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.flatnonzero((lo != lo[0]).any(axis=0) | (hi != hi[0]).any(axis=0))


def _disjoint(lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether boxes that differ along one axis only are pairwise disjoint (False if unsure)."""
    varying = _varying(lo, hi)
    if len(varying) != 1:
        return False
    k = varying[0]
    order = np.argsort(lo[:, k], kind="stable")
    a, b = lo[order, k], hi[order, k]
    return bool((a[1:] >= b[:-1]).all())


def _merged(lo: np.ndarray, hi: np.ndarray) -> list[tuple[Range, ...]]:
    """The boxes, with neighbours that differ along one axis and touch end to start joined."""
    varying = _varying(lo, hi) if len(lo) > 1 else []
    if len(varying) == 1:
        k = varying[0]
        order = np.argsort(lo[:, k], kind="stable")
        lo, hi = lo[order], hi[order]
        cut = np.flatnonzero(lo[1:, k] != hi[:-1, k]) + 1
        starts = np.concatenate(([0], cut))
        ends = np.concatenate((cut, [len(lo)])) - 1
        base_lo, base_hi = lo[0].tolist(), hi[0].tolist()
        out = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            blo, bhi = list(base_lo), list(base_hi)
            blo[k], bhi[k] = int(lo[a, k]), int(hi[b, k])
            out.append(tuple(zip(blo, bhi, strict=True)))
        return out
    return [tuple(zip(r_lo, r_hi, strict=True)) for r_lo, r_hi in zip(lo.tolist(), hi.tolist(), strict=True)]


def _volume(box: tuple[Range, ...]) -> int:
    v = 1
    for lo, hi in box:
        v *= max(0, hi - lo)
    return v


# --------------------------------------------------------------------------------- the executor
class _Run:
    def __init__(self, layer: Layer, dataflow: Dataflow, acc: Accelerator,
                 conventions: frozenset[str] = frozenset()) -> None:
        self.conventions = conventions
        self._edge_ext: tuple[int, int] | None = None
        if dataflow.holes:
            raise SpecError(f"the dataflow has holes ({', '.join('?' + h for h in dataflow.holes)}): "
                            "the executor needs concrete sizes", key="dataflow")
        self.layer = layer
        self.space = _space(layer)
        self.acc = acc
        flow = dataflow.resolve_dim_sizes(layer.full_dims())
        self.levels = flow.levels
        sizes = [_int(c.size, str(c)) for c in flow.clusters]
        product = math.prod(sizes)
        if product > acc.num_pes:
            raise MappingError(f"cluster sizes multiply to {product} but the accelerator has "
                               f"{acc.num_pes} PEs", layer=layer.name)
        self.num_sub = [acc.num_pes // product, *sizes]
        self.used_pes = product * (acc.num_pes // product)
        sp = self.space
        shape = []
        for d in sp.iteration:
            shape.append(sp.out_size[d] if d in sp.out_size else sp.dims[d])
        self.macs_layer = math.prod(shape)
        if self.macs_layer > MAX_MACS:
            raise SpecError(f"layer {layer.name} has {self.macs_layer:,} MACs; the executor runs layers "
                            f"of at most {MAX_MACS:,}", key="executor.max_macs")
        self.coverage = np.zeros(shape, dtype=np.int32)
        self.report = ExecutionReport(layer=layer.name, macs_layer=self.macs_layer, used_pes=self.used_pes)
        # One stamp array per (level, tensor): marks elements already counted in the current step.
        self._stamp_id = 0
        self._stamps: dict[tuple[int, str], np.ndarray] = {}
        self.dim_names = tuple(sp.dims)
        self.col = {d: j for j, d in enumerate(self.dim_names)}
        self.tensor_cols = {t: [self.col[d] for d in dims] for t, dims in sp.tensors.items()}
        self.tensor_cols["iteration"] = [self.col[d] for d in sp.iteration]
        # Axes measured in output rows/columns: position -> (input column, filter column, axis name).
        self.out_axes: dict[str, dict[int, tuple[int, int, str]]] = {}
        if sp.conv:
            for t in ("output", "iteration"):
                names = sp.tensors[t] if t == "output" else sp.iteration
                self.out_axes[t] = {k: (self.col[d], self.col["R" if d == "Y" else "S"], d)
                                    for k, d in enumerate(names) if d in ("Y", "X")}
        self._cache: dict[tuple, tuple[int, int, list]] = {}
        self._recorders: list[list] = []
        # Y, X: how close to the layer's edge a tile's walk may depend on its position, and the stride.
        self._edge_cap = {} if not sp.conv else {
            p: (sp.dims[f] + sp.stride[p], sp.stride[p]) for p, f in (("Y", "R"), ("X", "S"))}
        self.l1 = {"input": 0, "weight": 0, "output": 0}
        self.l1_window = 0
        self.l2 = {"input": 0, "weight": 0, "output": 0}

    # ------------------------------------------------------------------------------ directives
    def maps(self, li: int, tile: Tile) -> list[_Map]:
        """The level's maps on this tile: Y'/X' and stride rewritten, dimensions checked."""
        sp = self.space
        own = self.levels[li]
        out: list[_Map] = []
        for d in own:
            size, ofs = _int(d.size, str(d)), _int(d.offset, str(d))
            dim = d.dim
            if sp.conv and dim in ("Y'", "X'"):
                plain, filt = dim[0], ("R" if dim == "Y'" else "S")
                filt_maps = [e for e in own if e.dim == filt]
                if filt_maps:
                    r = _int(filt_maps[-1].size, str(filt_maps[-1]))
                else:
                    r = tile[filt][1] - tile[filt][0]
                size, dim = size + r - 1, plain
            if dim not in sp.dims:
                if sp.conv and dim == "K" and self.layer.layer_type is LayerType.DSCONV:
                    continue                      # DSCONV has no K to walk (files set K 1)
                raise MappingError(f"{dim} is not a dimension of this layer", layer=self.layer.name,
                                   level=li, directive=str(d))
            if sp.conv and dim in ("Y", "X"):
                s = sp.stride[dim]
                r = sp.dims["R" if dim == "Y" else "S"]
                if s != 1 and size >= r:
                    # o output rows per window, the next window starting at the next output's row.
                    # MAESTRO's size o min(s, R) + max(R - s, 0) is the same rows for R >= s; for
                    # R < s it counts only the o R rows used, which are not contiguous: the
                    # executor holds the rows between them too.
                    o = (size + s - r) // s
                    size = (o - 1) * s + r
                    ofs = o * s
            out.append(_Map(spatial=d.kind.value == "SpatialMap", dim=dim, size=size, offset=ofs,
                            text=str(d)))
        n_spatial = sum(m.spatial for m in out)
        if n_spatial == 0:
            raise MappingError("no SpatialMap at this level: the executor cannot tell how to share the "
                               "tile among sub-clusters", layer=self.layer.name, level=li)
        if n_spatial > 2:
            raise MappingError(f"{n_spatial} SpatialMaps at this level (at most two)",
                               layer=self.layer.name, level=li)
        return out

    # -------------------------------------------------------------------------------- walking
    def walk(self, li: int, tile: Tile) -> int:
        """Execute level ``li`` on ``tile``; returns its runtime in cycles.

        Per step, the sub-clusters' tiles are rows of two arrays (lower and upper bounds, one
        column per dimension): they differ only in the spatially mapped dimensions.
        """
        sp = self.space
        maps = self.maps(li, tile)
        n = self.num_sub[li]
        innermost = li == len(self.levels) - 1
        top = li == 0
        loops: list[tuple[_Map, list[Range]]] = [(m, _windows(*tile[m.dim], m.size, m.offset)) for m in maps]
        # A spatial map's loop runs over its folds; sub-cluster i gets window fold x n + i of each.
        folds = [(self.col[m.dim], np.array(w, dtype=np.int64).reshape(-1, 2)) for m, w in loops if m.spatial]
        counts = [-(-len(w) // n) if m.spatial else len(w) for m, w in loops]
        held = {t: _Held(n, len(sp.tensors[t])) for t in ("input", "weight")}
        lo0 = np.array([tile[d][0] for d in self.dim_names], dtype=np.int64)
        hi0 = np.array([tile[d][1] for d in self.dim_names], dtype=np.int64)
        all_ids = np.arange(n)
        steps = []   # per step: (ingress, egress, compute)
        prev_index = None
        spatial_pos = min(k for k, (m, _) in enumerate(loops) if m.spatial)
        for index in np.ndindex(*counts):
            self.report.steps += 1
            if self.report.steps > MAX_STEPS:
                self._too_many_steps()
            blo, bhi = lo0.copy(), hi0.copy()
            fold_of = []
            for (m, wins), k in zip(loops, index, strict=True):
                if m.spatial:
                    fold_of.append(k)
                else:
                    c = self.col[m.dim]
                    blo[c], bhi[c] = wins[k]
            ok = np.ones(n, dtype=bool)
            for (_, w), f in zip(folds, fold_of, strict=True):
                ok &= f * n + all_ids < len(w)
            ids = all_ids[ok]
            tlo = np.repeat(blo[None, :], len(ids), axis=0)
            thi = np.repeat(bhi[None, :], len(ids), axis=0)
            for (c, w), f in zip(folds, fold_of, strict=True):
                g = f * n + ids
                tlo[:, c], thi[:, c] = w[g, 0], w[g, 1]
            # Compute first: a sub-cluster that executes no MAC in this step receives nothing.
            if innermost:
                compute, busy = self._pes(tlo, thi)
            else:
                compute, busy = 0, np.zeros(len(ids), dtype=bool)
                for j, (rlo, rhi) in enumerate(zip(tlo.tolist(), thi.tolist(), strict=True)):
                    before = self.report.macs_executed
                    sub = {d: (rlo[k], rhi[k]) for k, d in enumerate(self.dim_names)}
                    compute = max(compute, self.sub_walk(li + 1, sub))
                    busy[j] = self.report.macs_executed > before
            if not busy.any():
                continue        # nobody computes: nothing moves, no time passes
            tlo, thi, ids = tlo[busy], thi[busy], ids[busy]
            changing = None if prev_index is None else next(
                k for k, (a, b) in enumerate(zip(index, prev_index, strict=True)) if a != b)
            prev_index = index
            ingress = 0
            for tensor in ("input", "weight"):
                xlo, xhi = self._boxes(tlo, thi, tensor)
                mode = self._convention(tensor, loops, counts, index, changing, spatial_pos)
                union, total = self._deliver(li, tensor, xlo, xhi, ids, held[tensor], mode)
                ingress += union
                if top:
                    rep = self.report
                    setattr(rep, f"{tensor}_l2_reads", getattr(rep, f"{tensor}_l2_reads") + union)
                    setattr(rep, f"{tensor}_deliveries", getattr(rep, f"{tensor}_deliveries") + total)
                    self.l2[tensor] = max(self.l2[tensor], self._occupancy(li, tensor, xlo, xhi))
            olo, ohi = self._boxes(tlo, thi, "output")
            egress = self._union(li, "output", olo, ohi)
            if top:
                self.report.output_l2_writes += egress
                self.l2["output"] = max(self.l2["output"], egress)
            steps.append((ingress, egress, compute))
        if top:
            self.report.top_steps = len(steps)
        return self._runtime(steps, top)

    def _boxes(self, tlo: np.ndarray, thi: np.ndarray, tensor: str) -> tuple[np.ndarray, np.ndarray]:
        """Each sub-cluster's tile of ``tensor`` (outputs, and ``"iteration"``, in output rows)."""
        cols = self.tensor_cols[tensor]
        xlo, xhi = tlo[:, cols], thi[:, cols]
        for k, (y, r, axis) in self.out_axes.get(tensor, {}).items():
            s = self.space.stride[axis]
            lo = np.maximum(0, -((tlo[:, r] - tlo[:, y]) // s))
            hi = np.minimum(self.space.out_size[axis], (thi[:, y] - thi[:, r]) // s + 1)
            xlo[:, k], xhi[:, k] = lo, np.maximum(lo, hi)
        return xlo, xhi

    def _pes(self, tlo: np.ndarray, thi: np.ndarray) -> tuple[int, np.ndarray]:
        """One step of the active PEs: mark their MACs, record the L1 tiles of those that compute;
        returns the compute cycles and which PEs compute."""
        alo, ahi = self._boxes(tlo, thi, "iteration")
        macs = _volumes(alo, ahi)
        busy = macs > 0
        if not busy.any():
            return 0, busy
        for box in _merged(alo[busy], ahi[busy]):
            self._mark(box)
        blo, bhi = tlo[busy], thi[busy]
        for tensor in ("input", "weight", "output"):
            xlo, xhi = self._boxes(blo, bhi, tensor)
            self.l1[tensor] = max(self.l1[tensor], int(_volumes(xlo, xhi).max()))
        if self.space.conv:
            cols = self.tensor_cols["output"]
            self.l1_window = max(self.l1_window, int(_volumes(blo[:, cols], bhi[:, cols]).max()))
        return int(-(-macs.max() // self.acc.simd_lanes)), busy

    def sub_walk(self, li: int, tile: Tile) -> int:
        """``walk`` below the top, replayed from an earlier walk on a tile of the same shape.

        A walk depends on its tile only through the tile's extents, except near the layer's edges
        and, with a stride, through the rows' phase; the key keeps exactly that, and a replay shifts
        the recorded MAC boxes (coverage is still marked for every PE step).
        """
        sp = self.space
        key = [li]
        shift = []
        for d in sp.iteration_dims:
            lo, hi = tile[d]
            if d in self._edge_cap:
                cap, s = self._edge_cap[d]
                near = lo < cap or sp.dims[d] - hi < cap
                key.append((hi - lo, lo % s, lo if near else -1, hi if near else -1))
                shift.append(0 if near else (lo - lo % s) // s)
            elif d in ("R", "S") and sp.conv:
                key.append((lo, hi))
                shift.append(0)
            else:
                key.append(hi - lo)
                shift.append(lo)
        key_t = tuple(key)
        hit = self._cache.get(key_t)
        if hit is None:
            self._recorders.append([])
            steps0 = self.report.steps
            runtime = self.walk(li, tile)
            boxes = self._recorders.pop()
            base = self._base_of(shift)
            rel = [tuple((a - b, c - b) for (a, c), b in zip(box, base, strict=True)) for box in boxes]
            self._cache[key_t] = (runtime, self.report.steps - steps0, rel)
            return runtime
        runtime, steps, rel = hit
        self.report.steps += steps
        if self.report.steps > MAX_STEPS:
            self._too_many_steps()
        base = self._base_of(shift)
        for r in rel:
            box = tuple((a + b, c + b) for (a, c), b in zip(r, base, strict=True))
            self._mark(box)
        return runtime

    def _base_of(self, shift: list[int]) -> list[int]:
        """Per iteration axis, the offset a cached walk's boxes move by."""
        sp = self.space
        by_dim = dict(zip(sp.iteration_dims, shift, strict=True))
        return [by_dim[d] for d in sp.iteration_axes_dims]

    def _mark(self, axes: tuple[Range, ...]) -> None:
        lo_hi = tuple(slice(lo, hi) for lo, hi in axes)
        self.coverage[lo_hi] += 1
        self.report.macs_executed += _volume(axes)
        for rec in self._recorders:
            rec.append(axes)

    def _too_many_steps(self) -> None:
        raise SpecError(f"the mapping takes more than {MAX_STEPS:,} level steps on layer "
                        f"{self.layer.name}; the executor runs at most that many", key="executor.max_steps")

    def _stamp(self, li: int, tensor: str) -> np.ndarray:
        key = (li, tensor)
        if key not in self._stamps:
            sp = self.space
            shape = tuple(sp.out_size[d] if tensor == "output" and d in sp.out_size and sp.conv
                          else sp.dims[d] for d in sp.tensors[tensor])
            self._stamps[key] = np.zeros(shape, dtype=np.int64)
        return self._stamps[key]

    def _convention(self, tensor: str, loops, counts, index, changing, spatial_pos) -> str:
        """Which of MAESTRO's counting conventions (``execute(..., conventions=...)``) applies to
        ``tensor`` at this step: "stationary", "reinit", "sum" (no multicast of halos), or ""."""
        conv = self.conventions
        if not conv:
            return ""
        coupled = set(self.space.tensors[tensor])
        mode = ""
        self._edge_ext = None
        if changing is not None:
            m, wins = loops[changing]
            dim = m.dim
            restarts = "reinit" in conv and any(
                loops[q][0].dim in coupled and counts[q] > 1 and index[q] == 0
                for q in range(changing + 1, len(loops)))
            if dim not in coupled:
                if "stationary" in conv:
                    return "stationary"
                if restarts:
                    mode = "reinit"
            elif "edge-offset" in conv and not m.spatial and wins[index[changing]][1] - \
                    wins[index[changing]][0] < m.size:
                self._edge_ext = (self.space.tensors[tensor].index(dim), m.size)
                mode = "edge"
            elif restarts:
                mode = "reinit"
        if "no-halo" in conv and (changing is None or changing > spatial_pos):
            mode += "sum"
        return mode

    def _deliver(self, li: int, tensor: str, xlo: np.ndarray, xhi: np.ndarray, ids: np.ndarray,
                 held: _Held, mode: str = "") -> tuple[int, int]:
        """Elements sub-clusters ``ids`` must receive (not held at their previous step): distinct, total.

        Updates ``held``; a sub-cluster idle this step keeps what it held. ``mode`` applies one of
        MAESTRO's counting conventions instead (see ``_convention``).
        """
        vol = _volumes(xlo, xhi)
        plo, phi, pv = held.lo[ids], held.hi[ids], held.valid[ids]
        if "reinit" in mode:
            pv = np.zeros_like(pv)
        inter = _volumes(np.maximum(xlo, plo), np.minimum(xhi, phi)) * pv
        held.lo[ids], held.hi[ids], held.valid[ids] = xlo, xhi, vol > 0
        if "edge" in mode and self._edge_ext is not None:
            k, size = self._edge_ext        # the edge window counted at the map's full size
            ext = xhi.copy()
            ext[:, k] = xlo[:, k] + size
            vol = _volumes(xlo, ext)
        new = vol - inter
        if mode == "stationary":
            return 0, 0
        total = int(new.sum())
        need = new > 0
        if not need.any():
            return 0, total
        rlo, rhi = xlo[need], xhi[need]
        if (rlo == rlo[0]).all() and (rhi == rhi[0]).all():
            # One tile for all receivers (multicast): what some lacks is the tile minus what all held.
            if not pv[need].all():
                return int(vol[need][0]), total
            clo = np.maximum(rlo[0], plo[need].max(axis=0))
            chi = np.minimum(rhi[0], phi[need].min(axis=0))
            return int(vol[need][0]) - int(_volumes(clo[None], chi[None])[0]), total
        if _disjoint(rlo, rhi) or "sum" in mode:
            return total, total
        stamp = self._stamp(li, tensor)
        self._stamp_id += 1
        sid = self._stamp_id
        union = 0
        rows = zip(rlo.tolist(), rhi.tolist(), plo[need].tolist(), phi[need].tolist(), pv[need].tolist(),
                   strict=True)
        for box_lo, box_hi, prev_lo, prev_hi, prev_ok in rows:
            fresh = np.ones([h - lo for lo, h in zip(box_lo, box_hi, strict=True)], dtype=bool)
            if prev_ok:
                inter_s = tuple(slice(max(a0, b0) - a0, min(a1, b1) - a0)
                                for a0, a1, b0, b1 in zip(box_lo, box_hi, prev_lo, prev_hi, strict=True))
                if all(x.stop > x.start for x in inter_s):
                    fresh[inter_s] = False
            view = stamp[tuple(slice(lo, h) for lo, h in zip(box_lo, box_hi, strict=True))]
            fresh &= view != sid
            union += int(fresh.sum())
            view[fresh] = sid
        return union, total

    def _occupancy(self, li: int, tensor: str, xlo: np.ndarray, xhi: np.ndarray) -> int:
        """What L2 holds of ``tensor`` for this step: the union of the tiles (with the "no-halo"
        convention, each sub-cluster's tile counted apart unless all are the same)."""
        if "no-halo" in self.conventions:
            vol = _volumes(xlo, xhi)
            same = len(xlo) and (xlo == xlo[0]).all() and (xhi == xhi[0]).all()
            return int(vol[0]) if same else int(vol.sum())
        return self._union(li, tensor, xlo, xhi)

    def _union(self, li: int, tensor: str, xlo: np.ndarray, xhi: np.ndarray) -> int:
        """Distinct elements over the sub-clusters' tiles."""
        vol = _volumes(xlo, xhi)
        live = vol > 0
        if not live.any():
            return 0
        rlo, rhi = xlo[live], xhi[live]
        if (rlo == rlo[0]).all() and (rhi == rhi[0]).all():
            return int(vol[live][0])
        if _disjoint(rlo, rhi):
            return int(vol.sum())
        stamp = self._stamp(li, tensor)
        self._stamp_id += 1
        sid = self._stamp_id
        count = 0
        for box_lo, box_hi in zip(rlo.tolist(), rhi.tolist(), strict=True):
            view = stamp[tuple(slice(lo, h) for lo, h in zip(box_lo, box_hi, strict=True))]
            fresh = view != sid
            count += int(fresh.sum())
            view[fresh] = sid
        return count

    def _noc(self, volume: int) -> int:
        if volume <= 0:
            return 0
        bw = self.acc.noc_bw
        serial = 0 if bw is None else -(-volume // bw) - 1
        return self.acc.noc_latency + serial

    def _runtime(self, steps: list[tuple[int, int, int]], top: bool) -> int:
        off_in = off_out = 0
        if top and self.acc.offchip_bw is not None:
            off_in = 2 * (self.l2["input"] + self.l2["weight"]) // self.acc.offchip_bw
            off_out = 2 * self.l2["output"] // self.acc.offchip_bw
        total = 0
        for k, (ingress, egress, compute) in enumerate(steps):
            in_d, out_d = self._noc(ingress), self._noc(egress)
            delay = compute + in_d if k == 0 else max(in_d, compute, out_d)
            if top:
                delay = max(delay, off_in // 2, off_out // 2)
            total += delay
        return total

    # --------------------------------------------------------------------------------- result
    def run(self) -> ExecutionReport:
        sp = self.space
        tile = {d: (0, v) for d, v in sp.dims.items()}
        rep = self.report
        rep.runtime_cycles = self.walk(0, tile)
        cov = self.coverage
        rep.macs_distinct = int(np.count_nonzero(cov))
        out_axes = [i for i, d in enumerate(sp.iteration) if d in sp.tensors["output"]]
        red_axes = tuple(i for i in range(cov.ndim) if i not in out_axes)
        written = cov.any(axis=red_axes) if red_axes else cov > 0
        rep.outputs_total = int(written.size)
        rep.outputs_never_written = int(written.size - np.count_nonzero(written))
        rep.l1_req = {k: 2 * v for k, v in self.l1.items()}
        rep.l1_output_window = 2 * self.l1_window if sp.conv else 2 * self.l1["output"]
        rep.l2_req = {k: 2 * v for k, v in self.l2.items()}
        rep.pe_peak_cycles = -(-self.macs_layer // (self.used_pes * self.acc.simd_lanes))
        return rep


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MappingError(f"size must be a positive integer, got {value!r}", directive=what)
    return value


CONVENTIONS = frozenset({"stationary", "reinit", "no-halo", "edge-offset"})


def execute(layer: Layer, dataflow: Dataflow, accelerator: Accelerator, *,
            conventions: frozenset[str] | set[str] = frozenset()) -> ExecutionReport:
    """Play ``dataflow`` out on ``layer`` and ``accelerator`` literally; see the module docstring.

    ``conventions`` (diagnostics only: they make the execution less literal) switches on MAESTRO's
    counting conventions for input and weight deliveries, to tell which one explains a difference:

    * ``"stationary"``: at a step whose advancing loop is on a dimension the tensor does not depend
      on, nothing is delivered, even when loops inside it that it does depend on start over;
    * ``"reinit"``: when such an inner loop starts over (without ``"stationary"``, also at a step
      whose advancing loop the tensor does not depend on), the whole tile is delivered, even the
      part still held;
    * ``"no-halo"``: at the first step and at steps whose advancing loop is inside the spatial fold
      loop, elements several sub-clusters need are counted once per sub-cluster (no multicast of the
      overlap between neighbours' tiles), and so are the L2 tiles;
    * ``"edge-offset"``: at a step where a temporal map the tensor depends on advances to its edge
      tile, the delivery is counted as if that tile had the map's full size.

    Raises :class:`SpecError` for a layer beyond :data:`MAX_MACS` MACs or a mapping beyond
    :data:`MAX_STEPS` level steps, :class:`MappingError` for a dataflow the directives cannot define
    (no SpatialMap on a level, cluster sizes past the PE count, a map on a dimension the layer lacks).
    """
    unknown = set(conventions) - CONVENTIONS
    if unknown:
        raise SpecError(f"unknown conventions {sorted(unknown)} (known: {sorted(CONVENTIONS)})",
                        key="conventions")
    return _Run(layer, dataflow, accelerator, frozenset(conventions)).run()
