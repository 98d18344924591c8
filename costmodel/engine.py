"""The vectorised analysis of one layer's cluster levels (semantics doc 4.3-4.10).

Every quantity is an int64 array over a batch ``B`` of designs (tile sizes, PE counts, bandwidths)
that share one dataflow structure. MAESTRO enumerates *iteration cases*: one position (Init, Steady,
Edge) per directive. Here cases are grouped into *classes* that provably cost the same:

* the changing directive ``c`` is the innermost one not at Init, so every directive inside it is at
  Init (with or without MAESTRO's "init-edge" flag, a per-design property);
* a directive outside ``c`` contributes the same factors whether it is at Init or Steady, so those two
  positions merge into one variant (``NONEDGE``); only its edge positions stay apart.

A class is (c, one variant per directive); its occurrence count is the product of the variants'
counts, an array over the batch that is zero where the class does not exist. Class quantities are
``(K, B)`` arrays. The only figure that depends on the split of a class back into MAESTRO's cases is
the average NoC bandwidth (MAESTRO floors each case's share), which is recomputed from that split.

Levels below the top are analysed once per distinct sub-cluster tile (a class's tile depends only on
which directives sit at an edge), on a batch of ``tiles x B`` designs.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numpy as np

from . import diagnostics as dx
from .deviations import executed_macs_applies, fold_output_applies, maps_filter_spatially, output_row_strides
from .layer import OUTPUT_NAME, Layer, TensorDims
from .levels import SPATIAL, TEMPORAL, Level, LevelStack

INIT, INIT_IE, STEADY, EDGE, NONEDGE = range(5)
POS_INIT, POS_STEADY, POS_EDGE = range(3)
_POSITION = {INIT: POS_INIT, INIT_IE: POS_INIT, STEADY: POS_STEADY, NONEDGE: POS_STEADY, EDGE: POS_EDGE}

TENSORS = ("input", "weight", "output")


@dataclass(slots=True)
class Hardware:
    """Per-design hardware parameters (int64 arrays over the batch)."""

    lanes: np.ndarray
    noc_bw: np.ndarray
    noc_latency: np.ndarray
    offchip_bw: np.ndarray
    offchip_limited: np.ndarray

    def take(self, index: np.ndarray) -> Hardware:
        return Hardware(*(a[index] for a in (self.lanes, self.noc_bw, self.noc_latency,
                                             self.offchip_bw, self.offchip_limited)))


@dataclass(slots=True)
class ErrorLog:
    """Per-design error codes (0 = fine): each code stands for an error record ``(kind, a, b, c)``
    (``diagnostics``), registered in the order the batch meets them."""

    records: list[tuple[int, int, int, int]] = field(default_factory=lambda: [(0, 0, 0, 0)])

    def code(self, kind: int, a: int = 0, b: int = 0, c: int = 0) -> int:
        record = (kind, a, b, c)
        try:
            return self.records.index(record)
        except ValueError:
            self.records.append(record)
            return len(self.records) - 1

    def codes(self, mask: np.ndarray, kind: int, *keys: np.ndarray) -> np.ndarray:
        """Per design, the code of ``(kind, *key values of that design)`` where ``mask`` holds, else 0."""
        out = np.zeros(mask.shape[0], dtype=np.int64)
        idx = np.nonzero(mask)[0]
        if len(idx):
            table = np.stack([np.broadcast_to(k, mask.shape)[idx] for k in keys], axis=1)
            uniq, inverse = np.unique(table, axis=0, return_inverse=True)
            codes = np.array([self.code(kind, *map(int, row)) for row in uniq])
            out[idx] = codes[inverse.ravel()]
        return out

    def smallest(self, codes: np.ndarray, mask: np.ndarray | bool = True) -> np.ndarray:
        """Per column of ``codes`` (n, B), the code of the smallest record among the rows where
        ``mask`` holds and there is an error (0 if none): the winner does not depend on the batch."""
        rank = np.empty(len(self.records), dtype=np.int64)
        rank[sorted(range(len(self.records)), key=self.records.__getitem__)] = np.arange(len(self.records))
        big = len(self.records)
        ranked = np.where(mask & (codes > 0), rank[codes], big).min(axis=0)
        order = np.argsort(rank)
        return np.where(ranked < big, order[np.minimum(ranked, big - 1)], 0)

    def kinds(self, codes: np.ndarray) -> np.ndarray:
        """The error kind of each code in ``codes``."""
        return np.array([r[0] for r in self.records])[codes]

    @property
    def messages(self) -> list[str]:
        return [dx.message(*r) for r in self.records]


@dataclass(slots=True)
class LevelResult:
    runtime: np.ndarray
    num_macs: np.ndarray
    avg_active: np.ndarray
    err: np.ndarray
    counts: dict[str, np.ndarray] = field(default_factory=dict)   # e.g. "input_l2_read"
    l2_req: dict[str, np.ndarray] = field(default_factory=dict)
    peak_bw: np.ndarray | None = None
    avg_bw: np.ndarray | None = None
    offchip_bw: np.ndarray | None = None
    delays: dict[str, np.ndarray] = field(default_factory=dict)   # e.g. "ingress_min"
    skipped: np.ndarray | None = None                              # cases with no MACs (MAESTRO skips)
    flags: dict[str, np.ndarray] = field(default_factory=dict)     # deviation rules that apply
    empty: np.ndarray | None = None       # error code explaining why no case computes (0 = some does)


@dataclass(slots=True)
class _Context:
    """What every level of one evaluation shares."""

    layer: Layer
    stack: LevelStack
    tensors: TensorDims
    log: ErrorLog
    maestro_exact: bool
    executed_macs: bool            # deviation executed-macs may apply (deviations.executed_macs_applies)


@dataclass(slots=True)
class _Tables:
    """Per-dimension mapping sizes of one level (MAESTRO's ReuseAnalysis tables), keyed by name."""

    M: dict[str, np.ndarray]
    U: dict[str, np.ndarray]
    EM: dict[str, np.ndarray]
    EU: dict[str, np.ndarray]

    def get(self, table: str, var: str) -> np.ndarray | int:
        # MAESTRO reads these maps with operator[], which yields 0 for a missing key.
        return getattr(self, table).get(var, 0)


def _sizes(level: Level) -> tuple[np.ndarray, np.ndarray]:
    """(m, f): size and offset of every directive of the level as (n, B) arrays."""
    B = level.num_sub.shape[0]
    return _stack([e.size for e in level.entries], B), _stack([e.ofs for e in level.entries], B)


def _bcast(x, B: int) -> np.ndarray:
    """``x`` as a (B,) array; no copy, and no numpy call when it already is one."""
    if isinstance(x, np.ndarray) and x.shape == (B,):
        return x
    return np.broadcast_to(x, (B,))


def _mapping_tables(level: Level, dims: dict[str, np.ndarray], conv: bool, maestro_exact: bool,
                    sizes: tuple[np.ndarray, np.ndarray], row_stride: dict[str, int],
                    whole: dict[str, tuple[int, int, int]] | None) -> tuple[_Tables, dict[str, np.ndarray]]:
    """Mapping, unique and edge sizes per dimension (MAESTRO's tables keep the last directive on a
    dimension), and per deviation rule the designs its tables show it for: a map larger than its
    dimension getting a different edge size than MAESTRO gives it (``oversized-map-edge``), a strided
    tile's output rows differing from MAESTRO's stride-1 count (``strided-output-rows``), a filter
    map larger than the filter rows it holds, or a filter tile smaller than the filter leaving more
    output rows than the layer has (``partial-filter-rows``), and such a tile beside a Y or X tile
    smaller than the layer's, not in lockstep with it (``partial-filter-shift``). ``whole`` gives,
    for ``Y`` and ``X``, the layer's output rows, filter size and input rows (None: MAESTRO's
    tables)."""
    m, f = sizes
    d = _stack([dims[e.var] for e in level.entries], m.shape[1])
    t = np.maximum((d - m) // f, 0)
    has_edge = (t * f + m < d) | (m > d)
    uniq = np.minimum(m, f)
    temporal = np.array([e.kind == TEMPORAL for e in level.entries])[:, None]
    uniq = np.where(temporal & (d <= m), 0, uniq)
    em = d - (t + 1) * f
    # A map larger than its dimension covers all of it at once; MAESTRO's formula gives d - f there
    # when f <= d, which turns into empty tiles once edge tiles are analysed with their own sizes.
    wrong = (m > d) & (em >= 0)
    em = np.where((em < 0) | (wrong & (not maestro_exact)), d, em)
    edge_mapped = np.where(has_edge, em, m)
    edge_unique = np.maximum(f - (m - em), 0)
    M, U, EM, EU = {}, {}, {}, {}
    none = np.zeros(m.shape[1], dtype=bool)
    strided, clipped, shifted = none, none, none
    for i, e in enumerate(level.entries):
        M[e.var], U[e.var], EM[e.var], EU[e.var] = m[i], uniq[i], edge_mapped[i], edge_unique[i]
    if conv:
        for i, e in enumerate(level.entries):
            if e.var in OUTPUT_NAME:
                sliding = "R" if e.var == "Y" else "S"
                out = OUTPUT_NAME[e.var]
                s = row_stride[e.var]
                filt_m = M.get(sliding, 0)
                if whole is not None and sliding in M:
                    held = np.minimum(filt_m, dims[sliding])         # the filter rows it holds
                    clipped = clipped | (held != filt_m)
                    filt_m = held
                span, edge_span = M[e.var] - filt_m, EM[e.var] - EM.get(sliding, 0)
                M[out] = _output_rows(span, s)
                # A strided window's new rows: every s-th of its offset (at most its rows).
                U[out] = np.minimum(f[i], m[i]) if s == 1 else np.minimum(f[i] // s, M[out])
                EM[out] = _output_rows(edge_span, s)
                EU[out] = np.minimum(f[i] // s, EM[out])
                if s > 1:                  # where MAESTRO's stride-1 rows give other sizes
                    strided = (strided | (M[out] != span + 1) | (EM[out] != edge_span + 1)
                               | (U[out] != np.minimum(f[i], m[i]))
                               | (EU[out] != np.minimum(f[i], edge_span + 1)))
                if whole is not None:
                    # A filter tile smaller than the filter leaves more window positions than the
                    # layer has output rows; a tile holds at most those (MAESTRO counts them all).
                    # Which rows a tile smaller than the layer's computes shifts with the filter
                    # position, which the case analysis does not follow.
                    most, filt, rows = whole[e.var]
                    partial = np.asarray(filt_m if sliding in M else filt) < filt
                    if partial.any():
                        cut = partial & ((M[out] > most) | (EM[out] > most))
                        clipped = clipped | cut
                        # Not where a SpatialMap on the filter moves in lockstep with this one
                        # (Eyeriss's row stationary): each sub-cluster's rows then stay aligned.
                        lockstep = none
                        if e.kind == SPATIAL:
                            for j, other in enumerate(level.entries):
                                if other.kind == SPATIAL and other.var == sliding:
                                    lockstep = lockstep | ((m[j] == m[i]) & (f[j] == f[i]))
                        shifted = shifted | (partial & (np.minimum(m[i], d[i]) < rows) & ~lockstep)
                        M[out] = np.where(partial, np.minimum(M[out], most), M[out])
                        EM[out] = np.where(partial, np.minimum(EM[out], most), EM[out])
                        EU[out] = np.minimum(EU[out], EM[out])
    flags = {"oversized-map-edge": wrong.any(axis=0), "strided-output-rows": np.asarray(strided),
             "partial-filter-rows": np.asarray(clipped), "partial-filter-shift": np.asarray(shifted)}
    return _Tables(M, U, EM, EU), flags


def _output_rows(span: np.ndarray, s: int) -> np.ndarray:
    """Output rows of a tile whose input rows exceed its filter rows by ``span``: every s-th window
    position; a negative span (tile smaller than the filter) stays negative, as at stride 1."""
    if s == 1:
        return span + 1
    return np.where(span >= 0, span // s + 1, span + 1)


def _tables_differ(a: _Tables, b: _Tables) -> np.ndarray:
    out = False
    for name in ("U", "EM", "EU"):
        ta, tb = getattr(a, name), getattr(b, name)
        for var, arr in ta.items():
            out = out | (arr != tb[var])
    return np.asarray(out)


@dataclass(slots=True)
class _States:
    """Iteration positions of one level's directives (semantics doc 4.4): (n, B) arrays."""

    init_edge: np.ndarray
    unrolled: np.ndarray      # at Init
    steady: np.ndarray        # occurrences of Steady
    edge: np.ndarray          # occurrences of Edge (0 or 1)
    sp_edge_edge: np.ndarray  # the spatial edge fold has a partial last sub-cluster


def _states(level: Level, dims: dict[str, np.ndarray], n: np.ndarray,
            sizes: tuple[np.ndarray, np.ndarray]) -> _States:
    m, f = sizes
    d = _stack([dims[e.var] for e in level.entries], m.shape[1])
    # Temporal maps.
    ie = d < m
    unrolled = d <= m
    t = (d - m) // f
    steady = np.where((m < d) & (t > 0), t, 0)
    edge = ~ie & (t * f + m < d)
    ee = np.zeros_like(ie)
    spatial = [i for i, e in enumerate(level.entries) if e.kind == SPATIAL]
    if spatial:                        # spatial maps fold over the n sub-clusters
        d, m, f = d[spatial], m[spatial], f[spatial]
        cov = m + f * (n - 1)
        s_ie = d < cov
        s_unrolled = d <= cov
        ts = np.where(d >= m, ((d - m) // f + 1) // n - 1, -1)
        fold = f * n
        s_edge = ~s_unrolled & ((ts + 1) * fold + cov > d) & (ts * fold + cov != d)
        rem = d - (ts + 1) * fold
        active = np.where(rem < m, 1, (rem - m) // f + 1)
        ie[spatial], unrolled[spatial] = s_ie, s_unrolled
        steady[spatial] = np.where((cov < d) & (ts > 0), ts, 0)
        edge[spatial] = ~s_ie & s_edge
        ee[spatial] = (active - 1) * f + m < rem
    return _States(ie, unrolled, steady, edge.astype(np.int64), ee)


def _edge_clusters(level: Level, dims: dict[str, np.ndarray], n: np.ndarray,
                   maestro_exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sub-clusters active in a spatial edge fold (``ClusterUnit::AnalyzeSpatialEdgeCase``), and
    where that differs from MAESTRO's count: after a full fold MAESTRO counts only the whole tiles
    and takes the last of them for the partial one; we count the partial tile beside them
    (deviation edge-fold-partial)."""
    e = next(e for e in level.entries if e.kind == SPATIAL)
    d, m, f = dims[e.var], e.size, e.ofs
    full = f * (n - 1) + m
    t = np.where(d >= m, ((d - m) // f + 1) // n - 1, 0)
    rem = d - (t + 1) * f * n
    beyond = np.where(rem < m, 1, (rem - m) // np.maximum(f, 1) + 1)
    partial = np.zeros_like(beyond) if maestro_exact else (rem >= m) & ((beyond - 1) * f + m < rem)
    within = np.where(d > m, (d - m) // f + 1, 1)
    within = within + ((d > m) & (f * (within - 1) + m < d))
    after_fold = (d > full) & (d > m)
    out = np.where(after_fold, beyond + partial, np.where(d <= m, 1, within))
    return out.astype(np.int64), after_fold & (partial > 0)


# Dimension pairs whose lockstep windows slide together (row stationary); any other pair of
# SpatialMaps on a level distributes two independent dimensions.
_SLIDING_PAIRS = ({"Y", "R"}, {"X", "S"})


def _lockstep_skips(level: Level, dims: dict[str, np.ndarray], n: np.ndarray):
    """Designs in which the level's two SpatialMaps, on independent dimensions, skip window pairs:
    sub-cluster i gets window i of each in every fold, so a pair of windows of different indices is
    never computed at this level; one exists once there are two sub-clusters and a map has two
    windows (it is smaller than its dimension's tile). False where the rule cannot apply."""
    spatial = [e for e in level.entries if e.kind == SPATIAL]
    if len(spatial) != 2 or {spatial[0].var, spatial[1].var} in _SLIDING_PAIRS:
        return False
    several = (spatial[0].size < dims[spatial[0].var]) | (spatial[1].size < dims[spatial[1].var])
    return np.asarray((n >= 2) & several)


def _noc_delay(volume: np.ndarray, bw: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """Head latency plus serialisation; never negative (MAESTRO gives latency - 1 for no data)."""
    sends = -(-volume // bw)
    return np.maximum(latency + sends - 1, 0)


@dataclass(frozen=True, slots=True)
class _Structure:
    """The part of a level's case classes fixed by which variants occur: the same for every batch
    with that pattern, so it is built once (``_structure``) and shared."""

    rows: tuple[tuple[int, ...], ...]   # per class, a variant code per directive
    c: tuple[int, ...]                  # per class, the changing directive (-1 = all at Init)
    owners: tuple[int, ...]
    codes: np.ndarray                   # (K, owners): the rows restricted to the owners
    all_init: np.ndarray                # (K, 1) bool
    signatures: tuple                   # see _signatures
    out_groups: _Grouping               # classes grouped by output signature
    in_groups: _Grouping                # ... and by input signature


@functools.lru_cache(maxsize=4096)
def _structure(kinds: tuple[str, ...], owner_of: tuple[int, ...],
               present: tuple[tuple[bool, ...], ...]) -> _Structure:
    """Enumerate the classes of a level whose directive ``o`` (an owner) has the variants with
    ``present[j][v]`` set (``j`` = the owner's rank)."""
    owners = tuple(sorted(set(owner_of)))
    has = dict(zip(owners, present, strict=True))
    inside = {o: [v for v in (INIT, INIT_IE) if has[o][v]] for o in owners}
    changing_here = {o: [v for v in (STEADY, EDGE) if has[o][v]] for o in owners}
    outside = {o: [v for v in (NONEDGE, INIT_IE, EDGE) if has[o][v]] for o in owners}
    rows: list[tuple[int, ...]] = []
    changing: list[int] = []
    for c in [-1, *owners]:
        choices = [outside[o] if o < c else (changing_here[o] if o == c else inside[o]) for o in owners]
        for combo in itertools.product(*choices):
            per_owner = dict(zip(owners, combo, strict=True))
            rows.append(tuple(per_owner[owner_of[i]] for i in range(len(owner_of))))
            changing.append(c)
    codes = np.array([[row[o] for o in owners] for row in rows], dtype=np.intp).reshape(len(rows),
                                                                                         len(owners))
    all_init = np.array([c == -1 for c in changing])[:, None]
    for arr in (codes, all_init):
        arr.setflags(write=False)        # shared between evaluations
    signatures = _signatures(kinds, rows, changing)
    out_idx, out_rows, in_idx, in_rows = signatures
    return _Structure(tuple(rows), tuple(changing), owners, codes, all_init, signatures,
                      _Grouping.of(out_idx, len(out_rows)), _Grouping.of(in_idx, len(in_rows)))


class _Classes:
    """The case classes of one level: a variant code per directive, the changing directive, counts.

    ``rows[k][i]`` is the variant of directive ``i``'s state in class ``k`` (MAESTRO looks states up by
    dimension name, so a directive that is not the last one on its dimension sees the last one's).
    """

    def __init__(self, level: Level, states: _States) -> None:
        entries = level.entries
        owner = {e.var: i for i, e in enumerate(entries)}           # last directive on a dim
        owner_of = tuple(owner[e.var] for e in entries)
        owners = sorted(set(owner_of))
        ie = states.init_edge.astype(np.int64)
        # Occurrences of each variant, per directive: (5, n, B).
        occ = np.stack([1 - ie, ie, states.steady, states.edge, 1 - ie + states.steady])
        any_ie, all_ie = states.init_edge.any(axis=1), states.init_edge.all(axis=1)
        any_st, any_ed = states.steady.any(axis=1), states.edge.any(axis=1)
        # Variants present per owner: INIT, INIT_IE, STEADY, EDGE, NONEDGE (in code order).
        present = tuple((not all_ie[o], bool(any_ie[o]), bool(any_st[o]), bool(any_ed[o]), not all_ie[o])
                        for o in owners)
        st = _structure(tuple(e.kind for e in entries), owner_of, present)
        self.structure = st
        self.rows = st.rows
        self.c = st.c
        self.owners = st.owners
        self.owner_of = owner_of
        self.occ_states = {o: {v: occ[v, o] for v in range(5)} for o in owners}
        # Directives other than a dimension's last one multiply every class's occurrences.
        self.extra_splits = []
        mult = np.ones(ie.shape[1], dtype=np.int64)
        for i in range(len(entries)):
            if owner_of[i] != i:           # not the last directive on its dimension
                st_i, ed_i = states.steady[i], states.edge[i]
                mult = mult * (1 + st_i + ed_i)
                self.extra_splits.append([np.ones_like(st_i), st_i, ed_i])
        self.occ = np.prod(occ[st.codes, np.array(owners)], axis=1) * mult    # (K, B)
        self.all_init = st.all_init


def _is_edge(code: int) -> bool:
    return code in (INIT_IE, EDGE)


class _LevelAnalysis:
    """One level call: tables, states, classes, and the volumes of each distinct kind of case.

    Volumes are computed with plain Python branching on a class's variant codes, once per distinct
    signature (edge pattern for outputs and MACs; changing directive for inputs), then gathered.
    """

    def __init__(self, ctx: _Context, level: Level, dims_iter: dict[str, np.ndarray],
                 dims_map: dict[str, np.ndarray], dims_static: dict[str, np.ndarray]) -> None:
        layer = ctx.layer
        self.level = level
        self.entries = level.entries
        self.n = level.num_sub
        self.conv = layer.layer_type.is_conv_family
        self.tensors = ctx.tensors
        sizes = _sizes(level)
        rows = output_row_strides(layer, ctx.maestro_exact)
        self.maestro_fold = not fold_output_applies(layer, ctx.maestro_exact,
                                                    maps_filter_spatially(level.entries, SPATIAL))
        full = layer.full_dims()
        whole = None if ctx.maestro_exact or not self.conv else {
            v: (layer.output_size(v), full.get(f, 1), full[v]) for v, f in (("Y", "R"), ("X", "S"))}
        self.tables, self.flags = _mapping_tables(level, dims_map, self.conv, ctx.maestro_exact, sizes, rows,
                                                  whole)
        if dims_map is not dims_static and any((dims_map[v] != d).any() for v, d in dims_static.items()):
            static_tables = _mapping_tables(level, dims_static, self.conv, ctx.maestro_exact, sizes, rows,
                                            whole)[0]
            self.flags["subtile-edges"] = _tables_differ(self.tables, static_tables)
        self.states = _states(level, dims_iter, self.n, sizes)
        # How far a spatial map's tiles move when it advances a fold: sub-clusters x offset.
        self.fold_step = {i: self.n * sizes[1][i] for i, e in enumerate(self.entries) if e.kind == SPATIAL}
        self.offsets = sizes[1]
        # Busy sub-clusters of an edge fold from the tile itself too (MAESTRO: the steady tile).
        self.nedge, partial = _edge_clusters(level, dims_map, self.n, ctx.maestro_exact)
        self.flags["edge-fold-partial"] = partial
        if dims_map is not dims_static:
            static_nedge, _ = _edge_clusters(level, dims_static, self.n, ctx.maestro_exact)
            differs = static_nedge != self.nedge
            self.flags["subtile-edges"] = self.flags.get("subtile-edges", False) | differs
        self.nact1 = self.nedge == 1
        # The one busy sub-cluster of an edge fold holding less than a tile: its steps read that
        # tile (MAESTRO: a whole tile; deviation edge-fold-reads; where the first fold is the edge
        # fold, pe_ingress names it).
        partial_edge = False
        for i, e in enumerate(level.entries):
            if e.kind == SPATIAL:
                partial_edge = partial_edge | ((self.states.edge[i] > 0)
                                               & (self.tables.EM[e.var] != self.tables.M[e.var]))
        self.flags["edge-fold-reads"] = (not ctx.maestro_exact) & self.nact1 & partial_edge
        if not ctx.maestro_exact:
            self.flags["lockstep-skips"] = _lockstep_skips(level, dims_map, self.n)
        self.cls = _Classes(level, self.states)
        self.first: dict[str, int] = {}
        for i, e in enumerate(self.entries):
            self.first.setdefault(e.var, i)
        t = self.tables
        self.u1 = {v: np.where(u != 0, u, 1) for v, u in t.U.items()}
        self.umax1 = {v: np.maximum(u, 1) for v, u in t.U.items()}
        self.sp_first = next(i for i, e in enumerate(self.entries) if e.kind == SPATIAL)
        self.terminate = False          # set by pe_ingress for the signature being computed
        self.edge_reads = False         # set by pe_ingress: a temporal edge step counted its own window
        self.halo = False               # set by pe_ingress: a neighbour's shared elements counted once
        self.fold_reuse = False         # set by pe_ingress: a fold advance kept its tile's overlap
        self.first_fold_edge = False    # set by pe_ingress: a first fold's edge tile held (edge-fold-reads)
        self.restart_kept = False       # set by pe_ingress: a restarted tile kept its overlap
        # An under-filled spatial fold ("init-edge") whose last busy sub-cluster holds a whole tile:
        # MAESTRO still takes that sub-cluster as a partial one and counts only its edge-unique share
        # of the data (0 when the tiles divide the dimension), so data it needs is never delivered.
        # We count it whole (deviation ``whole-last-tile``).
        self.exact = ctx.maestro_exact
        # The part of its dimension a map holds: a map larger than the dimension holds the dimension
        # (deviation oversized-map-held for a spatial map's first sub-cluster; MAESTRO: the map).
        self.held = {e.var: t.M[e.var] if self.exact else np.minimum(t.M[e.var], dims_map[e.var])
                     for e in self.entries}
        if not self.exact:
            self.flags["oversized-map-held"] = np.logical_or.reduce(
                [np.asarray(t.M[e.var] > dims_map[e.var]) for e in self.entries if e.kind == SPATIAL])
        self.whole_last = {i: t.EM[e.var] == t.M[e.var] for i, e in enumerate(self.entries)
                           if e.kind == SPATIAL}
        if not self.exact:
            ie = self.states.init_edge
            self.flags["whole-last-tile"] = np.logical_or.reduce(
                [ie[self.cls.owner_of[i]] & whole for i, whole in self.whole_last.items()])
        # The partial last sub-cluster of a sliding spatial map (Y, X) whose tile is shorter than the
        # filter computes nothing, so it receives nothing (deviation idle-edge-subcluster); MAESTRO
        # delivers its tile.
        self.spatial = [i for i, e in enumerate(self.entries) if e.kind == SPATIAL]
        sole = self.entries[self.spatial[0]].var if len(self.spatial) == 1 else None
        self.ee_idle = False if sole is None else self._edge_idle(sole)
        if self.ee_idle is not False:
            self.flags["idle-edge-subcluster"] = self.ee_idle

    def _edge_idle(self, var: str):
        """Whether the edge tile of a map on Y or X is shorter than the filter, so computes nothing
        (not under maestro_exact; False for other dimensions)."""
        if self.exact or not self.conv or var not in OUTPUT_NAME:
            return False
        return self.tables.EM[OUTPUT_NAME[var]] <= 0

    # --------------------------------------------------------------------------- look-ups
    def _get(self, table: str, var: str):
        # MAESTRO reads its per-dimension maps with operator[]: a missing key reads as 0.
        return getattr(self.tables, table).get(var, 0)

    def has_ee(self, i: int, codes: tuple[int, ...]):
        """Whether the spatial edge fold of directive ``i`` ends in a partial sub-cluster."""
        code = codes[i]
        if code == INIT_IE:
            return True if self.exact else ~self.whole_last[i]
        if code == EDGE and self.entries[self.cls.owner_of[i]].kind == SPATIAL:
            return self.states.sp_edge_edge[self.cls.owner_of[i]]
        return False

    # ----------------------------------------------------------------- per-PE input volumes
    def _mapped_volume(self, dims, first: bool, ee: bool, codes):
        t, vol = self.tables, 1
        for i, e in enumerate(self.entries):
            if e.var not in dims:
                continue
            v, edge = e.var, _is_edge(codes[i])
            if e.kind == TEMPORAL:
                f = t.EM[v] if edge else t.M[v]
            elif edge:
                f = np.where(self.nact1, t.EM[v] if (first or ee) else 1, t.EM[v] if ee else t.M[v])
                if self._halo_applies(dims, first):
                    share = np.minimum(t.EU[v], t.EM[v]) if ee else t.U[v]
                    f = self._halo_once(f, np.where(self.nact1, f, share))
            else:
                f = self._halo_once(t.M[v], t.U[v]) if self._halo_applies(dims, first) else t.M[v]
            vol = vol * f
        return self._idle_edge(vol, first, ee)

    def _idle_edge(self, vol, first: bool, ee: bool):
        """No delivery to a partial last sub-cluster that computes nothing (``ee_idle``)."""
        return np.where(self.ee_idle, 0, vol) if (ee and not first) else vol

    def _restart_overlap(self, i: int, size):
        """How much of a restarted temporal map's first window (``size`` along its dimension) its
        last window still covers: the last starts at (steady + edge steps) x offset (a single
        window, unrolled, does not restart). An edge window on Y or X shorter than the filter
        computes nothing, so the sub-clusters still hold the steady window before it."""
        t, v = self.tables, self.entries[i].var
        edge = (self.states.edge[i] > 0) & ~np.asarray(self._edge_idle(v))
        start = (self.states.steady[i] + np.where(edge, self.states.edge[i], 0)) * self.offsets[i]
        last = np.where(edge, t.EM[v], t.M[v])
        overlap = np.maximum(np.minimum(size - start, last), 0)
        return np.where(self.states.unrolled[i], size, overlap)

    def _halo_applies(self, dims, first: bool) -> bool:
        """Deviation shared-halo-once applies to a sub-cluster after the first, for a tensor one
        SpatialMap of the level distributes (the shares of two maps in lockstep are not a product)."""
        return not (first or self.exact) and sum(e.kind == SPATIAL and e.var in dims
                                                 for e in self.entries) == 1

    def _halo_once(self, maestro, share):
        """A sub-cluster after the first of a spatial map receives only its share of the elements
        its neighbour does not also need (the overlap is multicast once; never more than its tile),
        where MAESTRO counts its whole tile at the first step and whenever a loop inside the spatial
        one advances (deviation shared-halo-once)."""
        self.halo = self.halo | (np.asarray(share) != np.asarray(maestro))
        return share

    def _inited(self, dims, codes, c: int):
        """``IsTensorInited``: a coupled, not fully unrolled directive inside the changing one is at Init."""
        out = False
        for j in range(c + 1, len(self.entries)):
            if self.entries[j].var in dims and codes[j] == INIT:
                out = out | ~self.states.unrolled[self.cls.owner_of[j]]
        return out

    def pe_ingress(self, dims, first: bool, ee: bool, codes, c: int, inited):
        if c == -1:
            return self._mapped_volume(dims, first, ee, codes)
        uncoupled = self.entries[c].var not in dims
        if uncoupled and (self.exact or not np.any(inited)):
            return 0                       # no coupled map inside restarts in any design
        # An advance of a map the tensor does not depend on leaves it where it is (MAESTRO: 0), unless
        # a coupled map inside restarts: then the sub-clusters hold its last window and need its first
        # again, the whole tile as when a coupled map advances (deviation ``uncoupled-reread``).
        t, t_prod, s_prod = self.tables, 1, 1
        held, countable, stay = 1, not self.exact, True    # restart-overlap: the previous tile's share
        for i, e in enumerate(self.entries):
            if e.var not in dims:
                continue
            v, code = e.var, codes[i]
            at_init = code in (INIT, INIT_IE)
            countable = countable and self.cls.owner_of[i] == i      # one map per dimension
            if e.kind == TEMPORAL:
                if at_init:
                    f = t.EM[v] if code == INIT_IE else t.M[v]
                    held = held * (self._restart_overlap(i, f) if (i > c and code == INIT) else f)
                elif i == c:
                    self.terminate = self.terminate | (~inited & (t.U[v] == 0))
                    f = np.where(inited, t.M[v], self.umax1[v])
                    if code == EDGE and not self.exact:
                        # The edge step's window is the edge tile: its new elements, or all of it
                        # after a restart, where MAESTRO counts an offset's worth or a whole tile
                        # (deviation temporal-edge-reads).
                        edge_f = np.where(inited, t.EM[v], np.minimum(t.EU[v], t.EM[v]))
                        self.edge_reads = self.edge_reads | (edge_f != f)
                        f = edge_f
                    held = held * np.maximum(np.minimum(t.M[v] - self.offsets[i], f), 0)
                elif code == EDGE and not self.exact:
                    # Steps inside a map that stands at its edge tile deliver along that map's
                    # edge window, where MAESTRO counts its steady tile (temporal-edge-reads).
                    f = t.EM[v]
                    self.edge_reads = self.edge_reads | (f != t.M[v])
                    held = held * f
                else:
                    f = t.M[v]
                    held = held * f
                t_prod = t_prod * f
                continue
            # A sub-cluster keeps its place along a spatial map unless that map moves or restarts
            # (a map in one fold stays: nothing to restart).
            if i == c:
                countable = False
            elif i > c and code == INIT:
                stay = np.logical_and(stay, self.states.unrolled[i])
            mapped = t.EM[v] if ee else t.M[v]
            if first and _is_edge(code) and not self.exact:
                # The edge fold's one busy sub-cluster holds only what is left of the dimension,
                # at every step as at the first (deviation edge-fold-reads; MAESTRO: a whole tile),
                # also where the first fold is the edge fold (a map larger than its dimension).
                held_edge = np.where(self.nact1, t.EM[v], mapped)
                if code == INIT_IE:
                    self.first_fold_edge = self.first_fold_edge | (held_edge != mapped)
                mapped = held_edge
            if first:
                f = mapped
                if i == c and not self.exact:
                    # A fold advance shorter than the tile: the first sub-cluster keeps the
                    # overlap with its own previous tile and receives what its new tile (the edge
                    # tile at the edge fold) reaches beyond it (deviation fold-overlap-reuse).
                    step = self.fold_step[i]
                    kept = np.where(inited | (step >= t.M[v]), mapped,
                                    np.maximum(step + mapped - t.M[v], 0))
                    self.fold_reuse = self.fold_reuse | (kept != mapped)
                    f = kept
            else:
                uniq = t.EU[v] if ee else t.U[v]
                if at_init:
                    f = mapped if i < c else uniq
                elif i == c:
                    f = np.where(inited, mapped, uniq)
                else:
                    f = mapped
                if self._halo_applies(dims, first):
                    f = self._halo_once(f, np.minimum(uniq, mapped))
            s_prod = s_prod * f
        self.temporal_held = held         # the same for every sub-cluster variant
        if countable:
            # After a restart inside, the part of the tile the sub-cluster still holds from its
            # previous tile is not delivered again (deviation restart-overlap; MAESTRO: whole tile).
            restarted = inited & stay & (held > 0)
            self.restart_kept = self.restart_kept | restarted
            t_prod = np.where(restarted, t_prod - held, t_prod)
        prod = t_prod * s_prod
        prod = self._idle_edge(prod, first, ee)
        return np.where(inited, prod, 0) if uncoupled else prod

    # ---------------------------------------------------------------- per-PE output volumes
    def pe_egress(self, psum: bool, first: bool, ee: bool, codes, consider_reuse: bool = True):
        t, nact1, u1 = self.tables, self.nact1, self.u1
        out_dims = self.tensors.output
        vol = 1
        if psum:
            for i, e in enumerate(self.entries):
                v = e.var
                if v in out_dims:
                    continue
                code = codes[i]
                edge = _is_edge(code)
                if e.kind == TEMPORAL:
                    vol = vol * (t.EM[v] if edge else t.M[v])
                    continue
                plain = self.held[v] if first else u1[v]
                if code == EDGE:
                    f = np.where(nact1, t.EM[v] if (first or ee) else 1, t.EU[v] if ee else plain)
                elif code == INIT_IE and ee:
                    f = t.EM[v]
                else:
                    f = plain
                vol = vol * f
        for v in out_dims:
            i = self.first[v]
            a = OUTPUT_NAME[v] if (self.conv and v in OUTPUT_NAME) else v
            code = codes[i]
            if self.entries[i].kind == TEMPORAL:
                f = self._get("EM", a) if _is_edge(code) else self._get("M", a)
            else:
                plain = (self.held[v] if a == v else self._get("M", a)) if first else u1.get(a, 1)
                if code == EDGE:
                    f = np.where(nact1, self._edge_fold_size(v, a, self.maestro_fold) if (first or ee) else 1,
                                 self._get("EU", a) if ee else plain)
                elif code == INIT_IE and ee:
                    f = np.where(nact1, self._get("EM", a),
                                 self._get("EU" if consider_reuse else "EM", a))
                else:
                    f = plain
            vol = vol * f
        return vol

    def _edge_fold_size(self, v: str, a: str, maestro: bool):
        """Output size of the one busy sub-cluster of a spatial edge fold along dimension ``v``
        (table ``a``: Y', X' for Y, X): MAESTRO reads the edge size of the input dimension, the
        window's input rows; we the output rows it computes, none if the window is shorter than the
        filter (deviation edge-fold-output)."""
        return self._get("EM", v) if maestro else np.maximum(self._get("EM", a), 0)

    def edge_fold_differs(self, codes):
        """Whether this class has a one-sub-cluster spatial edge fold whose output size MAESTRO
        takes from the input rows (deviation edge-fold-output)."""
        out = False
        if self.maestro_fold:
            return np.asarray(out)
        for v in self.tensors.output:
            i = self.first[v]
            a = OUTPUT_NAME.get(v, v)
            if self.entries[i].kind == SPATIAL and codes[i] == EDGE and a != v:
                out = out | (self.nact1 & (self._edge_fold_size(v, a, True)
                                           != self._edge_fold_size(v, a, False)))
        return np.asarray(out)

    # --------------------------------------------------------------- spatial multiplication
    def _spatial_state(self, dims, codes, include_all_spatial: bool = False):
        """(spatially mapped?, at a spatial edge?, edge-edge sub-cluster?) for a tensor's dims."""
        state_entry, at_edge = None, False
        for v in dims:
            i = self.first[v]
            if self.entries[i].kind == SPATIAL:
                state_entry = i
                at_edge = at_edge or _is_edge(codes[i])
        if include_all_spatial:
            for i, e in enumerate(self.entries):
                if e.kind == SPATIAL:
                    state_entry = i
                    at_edge = at_edge or _is_edge(codes[i])
        if state_entry is None:
            return False, False, False
        return True, at_edge, self.has_ee(state_entry, codes)

    def _spread(self, dims, pe, codes, *, critical: bool = False, psum_map: bool = False):
        """Sum a per-PE volume over the active sub-clusters (MAESTRO's ``GetSpatial*`` functions)."""
        is_sp, at_edge, has_ee = self._spatial_state(dims, codes, include_all_spatial=psum_map)
        first = pe(True, False)
        if not is_sp:
            return first * self.n if psum_map else first
        if not at_edge:
            if critical:
                return first
            return self.n * first if psum_map else first + (self.n - 1) * pe(False, False)
        nedge = self.nedge
        if has_ee is False:
            edge_first, n_ee = first, 0
        else:
            edge_first = np.where(self.nact1 & has_ee, pe(True, True), first)
            n_ee = np.asarray(has_ee, dtype=np.int64)
        if critical:
            return edge_first
        n_full = np.maximum(nedge - n_ee - 1, 0)
        rest = first if psum_map else pe(False, False)
        extra = n_full * rest
        if has_ee is not False:
            extra = extra + n_ee * pe(False, True)
        return edge_first + np.where(nedge > 1, extra, 0)

    def output_volumes(self, codes):
        """(egress, MACs over the sub-clusters, critical-path MACs of one sub-cluster, whether some
        sub-cluster's MAC count is negative) of a class."""
        out = self.tensors.output
        negative = [False]
        psums: dict[tuple, object] = {}       # the MAC and critical-path spreads share PE volumes

        def pe_psum(first, ee, consider_reuse=True):
            key = (first, ee, consider_reuse)
            if key not in psums:
                psums[key] = self.pe_egress(True, first, ee, codes, consider_reuse)
            return psums[key]

        def pe_macs(first, ee):
            v = pe_psum(first, ee, not (ee and not first))
            negative[0] = negative[0] | (np.asarray(v) < 0)
            return v

        egress = self._spread(out, lambda f, e: self.pe_egress(False, f, e, codes), codes)
        macs = self._spread(out, pe_macs, codes, psum_map=True)
        crit = self._spread(out, pe_psum, codes, critical=True)
        return egress, macs, crit, negative[0]

    def ingress(self, dims, codes, c: int):
        """Input volume of a class, whether MAESTRO would abort on it (a changing temporal map
        with no new elements), whether the volume is a re-read MAESTRO counts as 0, whether it
        counts a temporal edge step's own window where MAESTRO counts a steady step's, and whether
        it counts neighbours' shared elements once where MAESTRO counts them per sub-cluster."""
        inited = self._inited(dims, codes, c) if c >= 0 else False
        self.terminate = False
        self.edge_reads = False
        self.halo = False
        kept, halo, held_edge = {}, {}, {}  # the spatial flags of each sub-cluster variant
        self.restart_kept = False
        self.fold_restart = False
        self.temporal_held = 0              # set by pe_ingress

        def pe(first: bool, ee: bool):
            self.fold_reuse = self.halo = self.first_fold_edge = False
            vol = self.pe_ingress(dims, first, ee, codes, c, inited)
            kept[first, ee], halo[first, ee] = self.fold_reuse, self.halo
            held_edge[first, ee] = self.first_fold_edge
            return vol

        vol = self._spread(dims, pe, codes)
        holders, extent = self._fold_restart_held(dims, codes, c)
        if holders is not None:
            # What they still hold is not delivered again (deviation fold-restart-held).
            kept_fold = holders * self.temporal_held * extent
            vol = vol - kept_fold
            self.fold_restart = np.asarray((kept_fold > 0) & (vol != 0))
        extent = self._fold_advance_held(dims, codes, c)
        if extent is not None:
            # A spatial map advances a fold shorter than its tile and a map inside restarts: the
            # sub-clusters keep their previous tiles' overlap (deviation restart-overlap).
            kept_step = np.where(inited, self.temporal_held * extent, 0)
            vol = vol - kept_step
            self.restart_kept = self.restart_kept | (kept_step > 0)
        reread = c >= 0 and not self.exact and self.entries[c].var not in dims
        nonzero = vol != 0
        fold_reuse, shared_once, first_fold_edge = self._used_variant_flags(dims, codes, kept, halo,
                                                                            held_edge)
        return (vol, self.terminate, np.asarray(reread & nonzero), np.asarray(self.edge_reads & nonzero),
                np.asarray(shared_once & nonzero), np.asarray(fold_reuse & nonzero),
                np.asarray(self.restart_kept & nonzero), np.asarray(self.fold_restart),
                np.asarray(first_fold_edge & nonzero))

    def _owned(self, dims) -> bool:
        """Each dimension of the tensor has one map at the level."""
        return all(self.cls.owner_of[i] == i for i, e in enumerate(self.entries) if e.var in dims)

    def _fold_advance_held(self, dims, codes, c: int):
        """Extent along the advancing spatial map ``c`` (the level's one, on a dimension of the
        tensor) of the fold's footprint its sub-clusters still hold from the fold before: each
        moves by sub-clusters x offset, so what the fold needs and they lack begins that far short
        of the first tile's end (its union is contiguous). None where there is no such map."""
        if (self.exact or c < 0 or self.spatial != [c] or self.entries[c].var not in dims
                or not self._owned(dims)):
            return None
        t, v = self.tables, self.entries[c].var
        mapped = np.where(self.nact1, t.EM[v], t.M[v]) if codes[c] == EDGE else t.M[v]
        return np.maximum(np.minimum(t.M[v] - self.fold_step[c], mapped), 0)

    def _fold_restart_held(self, dims, codes, c: int):
        """(sub-clusters, extent along the map) of the first fold's footprint that the sub-clusters
        needing it still hold where the level's one spatial map restarts inside the advancing map
        ``c``: each holds its tile of the last fold it was busy in. The only sub-cluster: its last
        fold's overlap with the first. Sub-clusters sharing nothing (offset at least the size):
        those idle in a two-fold map's edge fold hold their first tile whole. A sliding map: the
        footprint less the positions some sub-cluster needs and lacks (each lacks the start of its
        window up to where its held tile begins; a partial tile ends at the dimension's end, so it
        lacks nothing beyond). (None, None) where the rule cannot apply."""
        if self.exact or c < 0 or len(self.spatial) != 1:
            return None, None
        j = self.spatial[0]
        v = self.entries[j].var
        if v not in dims or j <= c or codes[j] != INIT or not self._owned(dims):
            return None, None
        t, st, n, nedge = self.tables, self.states, self.n, self.nedge
        m, o, edge = t.M[v], self.offsets[j], st.edge[j] > 0
        folds = 1 + st.steady[j] + st.edge[j]
        restarts = ~st.unrolled[j]
        # Sub-clusters computing in the last fold (an edge fold's partial last one shorter than the
        # filter does not: idle-edge-subcluster) hold its tiles, the others the fold before's.
        busy = np.where(edge, nedge - np.asarray(self.ee_idle, dtype=np.int64), n)
        last = np.where(edge, t.EM[v], m)
        alone = np.where(busy == 0, np.maximum(m - (folds - 2) * o, 0),
                         np.maximum(np.minimum(m - (folds - 1) * o, last), 0))
        apart_holders = np.where(edge & (folds == 2) & (busy < n), n - busy, 0)
        shift = (folds - 1) * n * o
        need = np.where(busy > 0, (busy - 1) * o + np.minimum(m, shift), 0)
        idle_need = (n - 1) * o + np.minimum(m, shift - n * o)     # idle ones: fold before the last
        need = np.where((busy < n) & (folds > 2), np.maximum(need, idle_need), need)
        holders = np.where((n == 1) | (o < m), 1, apart_holders)
        extent = np.where(n == 1, alone, np.where(o >= m, m, m + (n - 1) * o - need))
        return np.where(restarts, holders, 0), extent

    def _used_variant_flags(self, dims, codes, kept, halo, held_edge):
        """fold-overlap-reuse, shared-halo-once and a first fold's edge tile held (edge-fold-reads)
        raised only by the sub-cluster variants that ``_spread`` counts (it evaluates every variant
        over all designs and weights some by 0)."""
        is_sp, at_edge, has_ee = self._spatial_state(dims, codes)
        if not is_sp:
            return kept[True, False], False, held_edge[True, False]
        if not at_edge:
            return kept[True, False], halo[False, False] & (self.n > 1), held_edge[True, False]
        if has_ee is False:
            return kept[True, False], halo[False, False] & (self.nedge > 1), held_edge[True, False]
        first_ee = self.nact1 & has_ee           # the first sub-cluster counted is the edge-edge one
        fold_reuse = np.where(first_ee, kept[True, True], kept[True, False])
        first_edge = np.where(first_ee, held_edge[True, True], held_edge[True, False])
        n_full = self.nedge - has_ee - 1
        ee_busy = has_ee & np.logical_not(self.ee_idle)
        shared_once = (halo[False, False] & (n_full > 0)) | (halo[False, True] & ee_busy)
        return fold_reuse, shared_once & (self.nedge > 1), first_edge

    # ------------------------------------------------------------------ sub-cluster tiles
    def subtile_key(self, codes, ee: bool) -> tuple:
        """How each dimension of a class's sub-cluster tile is sized: 'M', 'EM' or 'SPE'."""
        key = []
        for i in self.first.values():
            edge = _is_edge(codes[i])
            if self.entries[i].kind == TEMPORAL:
                key.append("EM" if edge else "M")
            else:
                key.append(("EM" if ee else "SPE") if edge else "M")
        return tuple(key)

    def subtile_dims(self, key: tuple) -> dict[str, np.ndarray]:
        t, out = self.tables, {}
        for (v, _i), choice in zip(self.first.items(), key, strict=True):
            if choice == "M":
                out[v] = t.M[v]
            elif choice == "EM":
                out[v] = t.EM[v]
            else:
                out[v] = np.where(self.nact1, t.EM[v], t.M[v])
        return out


def _signatures(kinds: tuple[str, ...], rows: list[tuple[int, ...]], changing: list[int]):
    """Group classes by output/MAC signature and by input signature: (out_idx, out_rows, in_idx,
    in_rows), the class-to-group index arrays and each group's first class."""
    out_keys: dict[tuple, int] = {}
    in_keys: dict[tuple, int] = {}
    out_idx, in_idx = [], []
    for row, c in zip(rows, changing, strict=True):
        okey = tuple((code if kind == SPATIAL else _is_edge(code)) for kind, code in zip(kinds, row,
                                                                                         strict=True))
        # A temporal map outside the changing one matters only by the window it stands at: its
        # edge window (Init-edge, or its edge step: deviation temporal-edge-reads) or a steady one.
        ikey = (c, tuple(code if (kind == SPATIAL or i >= c or code in (INIT_IE, EDGE)) else INIT
                         for i, (kind, code) in enumerate(zip(kinds, row, strict=True))))
        out_idx.append(out_keys.setdefault(okey, len(out_keys)))
        in_idx.append(in_keys.setdefault(ikey, len(in_keys)))
    first_row_out = {v: k for k, v in reversed(list(enumerate(out_idx)))}
    first_row_in = {v: k for k, v in reversed(list(enumerate(in_idx)))}
    out_idx, in_idx = np.array(out_idx), np.array(in_idx)
    for arr in (out_idx, in_idx):
        arr.setflags(write=False)
    return (out_idx, [first_row_out[j] for j in range(len(out_keys))],
            in_idx, [first_row_in[j] for j in range(len(in_keys))])


def _rowsum(x: np.ndarray) -> np.ndarray:
    """Sum over axis 0, one row after another (the same rounding whatever the batch size)."""
    out = x[0].copy()
    for row in x[1:]:
        out += row
    return out


@dataclass(frozen=True, slots=True)
class _Grouping:
    """Classes sorted by group, and where each group starts: for ``_group_any``."""

    order: np.ndarray
    starts: np.ndarray

    @staticmethod
    def of(group: np.ndarray, n_groups: int) -> _Grouping:
        order = np.argsort(group, kind="stable")
        starts = np.searchsorted(group[order], np.arange(n_groups))
        for arr in (order, starts):
            arr.setflags(write=False)
        return _Grouping(order, starts)


def _group_any(mask: np.ndarray, grouping: _Grouping) -> np.ndarray:
    """(n_groups, B): whether any row of ``mask`` (K, B) in each group is true (no group is empty)."""
    return np.logical_or.reduceat(mask[grouping.order], grouping.starts, axis=0)


def _stack(values: list, B: int, dtype=np.int64) -> np.ndarray:
    """Rows of scalars or (B,) arrays as one (len(values), B) array."""
    out = np.empty((len(values), B), dtype=dtype)
    for i, v in enumerate(values):
        out[i] = v
    return out


def analyze(layer: Layer, stack: LevelStack, hw: Hardware, log: ErrorLog, *, tensors: TensorDims,
            maestro_exact: bool = False) -> LevelResult:
    """Analyse the top level (and, recursively, the levels below) for every design of the batch."""
    filter_spatial = any(maps_filter_spatially(lv.entries, SPATIAL) for lv in stack.levels)
    ctx = _Context(layer, stack, tensors, log, maestro_exact,
                   executed_macs_applies(layer, maestro_exact, filter_spatial))
    top = stack.levels[0]
    return _analyze_level(ctx, 0, top, top.dims, top.dims, hw, None)


def _take_level(level: Level, base: np.ndarray | None) -> Level:
    """The level's per-design arrays for the batch elements ``base`` (design indices)."""
    if base is None:
        return level
    entries = [type(e)(e.kind, e.var, e.size[base], e.ofs[base], e.origin, e.directive)
               for e in level.entries]
    return Level(level.index, entries, {k: v[base] for k, v in level.dims.items()}, level.num_sub[base],
                 level.strides)


def _analyze_level(ctx: _Context, li: int, level: Level, dims_iter, dims_static, hw: Hardware,
                   base: np.ndarray | None) -> LevelResult:
    """Analyse one level for a batch; ``base`` maps batch elements to designs (None = identity)."""
    log = ctx.log
    innermost = li == len(ctx.stack.levels) - 1
    is_top = li == 0
    # Mapping sizes come from the tile itself (Q11 fix); the count of active edge sub-clusters stays
    # MAESTRO's (from the level's steady tile), see docs/maestro-deviations.md.
    dims_map = dims_static if ctx.maestro_exact else dims_iter
    a = _LevelAnalysis(ctx, level, dims_iter, dims_map, dims_static)
    cls = a.cls
    B = level.num_sub.shape[0]
    t = ctx.tensors
    occ = cls.occ                                                       # (K, B)

    # Volumes per signature, then per class by gathering.
    st = cls.structure
    out_idx, out_rows, in_idx, in_rows = st.signatures
    eg_s, mac_s, crit_s, neg_s, fold_s = [], [], [], [], []
    for k in out_rows:
        eg, mac, crit, negative = a.output_volumes(cls.rows[k])
        eg_s.append(eg)
        mac_s.append(mac)
        crit_s.append(crit)
        neg_s.append(negative)
        fold_s.append(a.edge_fold_differs(cls.rows[k]))
    in_s, w_s, term_s, reread_s, edge_s, halo_s, keep_s, restart_s = [], [], [], [], [], [], [], []
    fold_restart_s, first_edge_s = [], []
    for k in in_rows:
        vi, ti, ri, ei, hi, ki, xi, fi, gi = a.ingress(t.input, cls.rows[k], cls.c[k])
        vw, tw, rw, ew, hw_, kw, xw, fw, gw = a.ingress(t.weight, cls.rows[k], cls.c[k])
        fold_restart_s.append(fi | fw)
        first_edge_s.append(gi | gw)
        in_s.append(vi)
        w_s.append(vw)
        term_s.append(ti | tw)
        reread_s.append(ri | rw)
        edge_s.append(ei | ew)
        halo_s.append(hi | hw_)
        keep_s.append(ki | kw)
        restart_s.append(xi | xw)
    eg_sig, crit_sig = _stack(eg_s, B), _stack(crit_s, B)
    in_sig, w_sig = _stack(in_s, B), _stack(w_s, B)
    valid = (crit_sig > 0)[out_idx]                                     # (K, B)
    w = occ * valid
    used = w > 0
    used_out = _group_any(used, st.out_groups)

    flags = dict(a.flags)
    idle_reason = None
    if innermost:
        compute_sig = -(-crit_sig // hw.lanes)
        sp_edge = np.array([_is_edge(cls.rows[k][a.sp_first]) for k in out_rows])[:, None]
        active_sig = np.where(sp_edge, a.nedge, a.n)
        err = np.zeros(B, dtype=np.int64)
        empty_sig = np.zeros_like(crit_sig)
    else:
        compute_sig, active_sig, err_sig, empty_sig, sub_flags, run_sig = _sub_clusters(
            ctx, li, a, hw, base, out_rows, used_out)
        err = log.smallest(err_sig, used_out)
        for name, f in sub_flags.items():
            flags[name] = flags.get(name, False) | f
        if not ctx.maestro_exact:
            # A case whose sub-cluster tiles are all smaller than the filter (the edge tile a strided
            # walk leaves) computes nothing: it is idle, not an error (deviation idle-below-filter).
            below = (compute_sig == 0) & np.isin(log.kinds(empty_sig),
                                                 (dx.TILE_BELOW_FILTER_X, dx.TILE_BELOW_FILTER_Y))
            flags["idle-below-filter"] = (flags.get("idle-below-filter", False)
                                          | (used_out & below).any(axis=0))
            idle_reason = log.smallest(empty_sig, used_out & below)     # if nothing else computes
            valid &= ~below[out_idx]
            w = occ * valid
            used = w > 0
            used_out = _group_any(used, st.out_groups)
        if ctx.executed_macs:
            # The MACs the sub-clusters execute, where a map below repeats work the tile holds once
            # (deviation executed-macs; MAESTRO multiplies out this level's tiles).
            tile_sig = _stack(mac_s, B)
            flags["executed-macs"] = (flags.get("executed-macs", False)
                                      | (used_out & (run_sig != tile_sig)).any(axis=0))
            mac_s = list(np.where(used_out, run_sig, tile_sig))
    for name, sig, cases in (("uncoupled-reread", reread_s, used), ("temporal-edge-reads", edge_s, used),
                             ("fold-overlap-reuse", keep_s, used), ("restart-overlap", restart_s, used),
                             ("fold-restart-held", fold_restart_s, used),
                             ("edge-fold-reads", first_edge_s, used),
                             # the all-Init case also sizes the L2 tiles, computing or not
                             ("shared-halo-once", halo_s, used | (cls.all_init & (occ > 0)))):
        flags[name] = flags.get(name, False) | (cases & _stack(sig, B, bool)[in_idx]).any(axis=0)
    # Also where the class computes nothing because of it.
    flags["edge-fold-output"] = (flags.get("edge-fold-output", False)
                                 | ((occ > 0) & _stack(fold_s, B, bool)[out_idx]).any(axis=0))
    in_d_sig = _noc_delay(in_sig + w_sig, hw.noc_bw, hw.noc_latency)
    eg_d_sig = _noc_delay(eg_sig, hw.noc_bw, hw.noc_latency)
    compute, in_d, eg_d = compute_sig[out_idx], in_d_sig[in_idx], eg_d_sig[out_idx]
    delay = np.where(cls.all_init, compute + in_d, np.maximum(np.maximum(eg_d, compute), in_d))

    result = LevelResult(runtime=None, num_macs=None, avg_active=None, err=err, flags=flags)
    total = w.sum(axis=0)
    safe_total = np.maximum(total, 1)
    result.num_macs = (w * _stack(mac_s, B)[out_idx]).sum(axis=0)      # at every level (executed-macs)
    if is_top:
        egress, macs = eg_sig[out_idx], _stack(mac_s, B)[out_idx]
        ing_in, ing_w = in_sig[in_idx], w_sig[in_idx]
        init_w = occ * cls.all_init                                     # the all-Init case
        l2_req = {"input": 2 * (init_w * ing_in).sum(axis=0),
                  "weight": 2 * (init_w * ing_w).sum(axis=0),
                  "output": 2 * (init_w * egress).sum(axis=0)}
        in_buf = (l2_req["input"] + l2_req["weight"]) // hw.offchip_bw
        out_buf = l2_req["output"] // hw.offchip_bw
        delay = np.maximum(np.maximum(in_buf // 2, delay), out_buf // 2)
        result.l2_req = l2_req
        result.counts = {
            "input_l2_read": (w * ing_in).sum(axis=0),
            "weight_l2_read": (w * ing_w).sum(axis=0),
            "output_l2_write": (occ * egress).sum(axis=0),
            "output_l1_write": (occ * macs).sum(axis=0),
        }
        comp_bw = np.maximum(compute, 1)
        traffic = np.maximum(ing_in + ing_w, egress)
        result.peak_bw = np.where(used, traffic // comp_bw, 0).max(axis=0)
        result.avg_bw = _avg_bw(cls, used, traffic, comp_bw) / safe_total
        need = np.maximum(l2_req["output"], l2_req["input"] + l2_req["weight"])
        result.offchip_bw = np.where(used, need // (2 * comp_bw), 0).max(axis=0)
        big = np.iinfo(np.int64).max
        for name, d in (("ingress", in_d), ("egress", eg_d), ("compute", compute)):
            result.delays[f"{name}_min"] = np.where(used, d, big).min(axis=0)
            result.delays[f"{name}_max"] = np.where(used, d, 0).max(axis=0)
            result.delays[f"{name}_avg"] = (w * d).sum(axis=0) // safe_total
    result.runtime = (w * delay).sum(axis=0)
    # Summed row by row: numpy's pairwise summation would round differently for a batch of one.
    result.avg_active = _rowsum(w * active_sig[out_idx]) / safe_total
    # MAESTRO takes buffer sizes from its first *computing* case, adding input/weight tiles of every
    # empty case before it, and its L1 size from the first level result it produces, which is not the
    # innermost level's when a sub-cluster tile computes nothing; we take the all-Init case of the
    # right level (deviation ``init-case-empty``).
    flags["init-case-empty"] = (flags.get("init-case-empty", False)
                                | ((occ > 0) & cls.all_init & ~valid).any(axis=0))

    # Errors of this level (the first error per design wins).
    def fail(mask, kind):
        nonlocal err
        if np.any(mask):
            err = np.where((err == 0) & mask, log.code(kind, li), err)

    # Negative volumes are garbage where they reach a delay (valid cases) or a reported count (top).
    exists = occ > 0
    bad_out = (_group_any(exists, st.out_groups) if is_top else used_out) & (eg_sig < 0)
    used_in = _group_any(used, st.in_groups)
    exists_in = _group_any(exists, st.in_groups)
    if is_top:   # a sub-cluster with negative MACs makes the reported MAC count garbage
        bad_out |= _group_any(exists, st.out_groups) & _stack(neg_s, B, bool)
    fail(bad_out.any(axis=0) | (used_in & ((in_sig < 0) | (w_sig < 0))).any(axis=0), dx.NEGATIVE_VOLUMES)
    # A level none of whose cases computes anything: an error at the top; below, an idle sub-cluster
    # (e.g. a partial edge PE) is fine unless every sub-cluster of a computing case is idle.
    empty = (occ > 0).any(axis=0) & ~used.any(axis=0)
    result.empty = _empty_codes(a, empty, li, log)
    if idle_reason is not None:
        result.empty = np.where(empty & (idle_reason > 0), idle_reason, result.empty)
    if is_top:
        err = np.where(err == 0, result.empty, err)
    idle = used_out & (compute_sig == 0)
    if idle.any():
        reason = log.smallest(empty_sig, idle)
        fail(idle.any(axis=0), dx.SUBCLUSTERS_IDLE)
        err = np.where(idle.any(axis=0) & (reason > 0), reason, err)
    fail((exists_in & _stack(term_s, B, bool)).any(axis=0), dx.NO_NEW_ELEMENTS)
    result.err = err
    return result


def _empty_codes(a: _LevelAnalysis, empty: np.ndarray, li: int, log: ErrorLog) -> np.ndarray:
    """Per design where no case of a level computes anything, the code of a message naming the tile."""
    codes = np.zeros(empty.shape[0], dtype=np.int64)
    if not empty.any():
        return codes
    t = a.tables
    left = empty.copy()
    for var, out, filt, kind in (("X", "X'", "S", dx.TILE_BELOW_FILTER_X),
                                 ("Y", "Y'", "R", dx.TILE_BELOW_FILTER_Y)):
        for table in ("M", "EM"):
            size = getattr(t, table).get(out)
            if size is None:
                continue
            hit = left & (size < 1)
            codes += log.codes(hit, kind, getattr(t, table)[var], t.M[filt], li)
            left &= ~hit
    if left.any():
        codes[left] = log.code(dx.NOTHING_COMPUTES, li)
    return codes


def _avg_bw(cls: _Classes, used: np.ndarray, traffic: np.ndarray, comp: np.ndarray) -> np.ndarray:
    """Sum over MAESTRO's cases of floor(occurrences x traffic / compute) (its per-case flooring).

    A class merges MAESTRO cases that differ in which outer directives are at Init or Steady; the
    merged counts multiply out to the class's, but the floors must be taken per case.
    """
    total = np.zeros(used.shape[1], dtype=np.int64)
    exact = ~(used & (traffic % comp != 0)).any(axis=1)
    if exact.any():       # classes whose cases all divide evenly need no split
        total += np.where(used[exact], cls.occ[exact] * traffic[exact] // comp[exact], 0).sum(axis=0)
    for k in np.nonzero(~exact)[0]:
        pieces = np.ones((1, used.shape[1]), dtype=np.int64)
        splits = list(cls.extra_splits)
        for o in cls.owners:
            code = cls.rows[k][o]
            if code == NONEDGE:
                parts = cls.occ_states[o]
                splits.append([p for p in (parts[INIT], parts[STEADY]) if np.any(p)])
            else:
                pieces = pieces * cls.occ_states[o][code]
        for options in splits:
            options = [q for q in options if np.any(q)]
            if len(options) == 1:
                pieces = pieces * options[0]
            elif options:
                pieces = np.concatenate([pieces * q for q in options])
        total += np.where(used[k], ((pieces * traffic[k]) // comp[k]).sum(axis=0), 0)
    return total


def _sub_clusters(ctx: _Context, li: int, a: _LevelAnalysis, hw: Hardware, base: np.ndarray | None,
                  out_rows: list[int], used_out: np.ndarray):
    """Analyse the level below for each distinct sub-cluster tile that some used case needs.

    Returns, per output signature: the compute delay (slowest sub-cluster), the active PEs, errors
    and deviation flags of the sub-cluster analyses, and the MACs the busy sub-clusters execute.
    """
    cls, B = a.cls, a.n.shape[0]
    below = ctx.stack.levels[li + 1]
    sp = a.sp_first
    keys: dict[tuple, int] = {}
    need: list[np.ndarray] = []
    per_sig = []                       # (normal tile, edge-edge tile or None, at edge, has_ee)
    for s, k in enumerate(out_rows):
        codes = cls.rows[k]
        at_edge = _is_edge(codes[sp])
        has_ee = a.has_ee(sp, codes) if at_edge else False
        kn = keys.setdefault(a.subtile_key(codes, ee=False), len(keys))
        ke = keys.setdefault(a.subtile_key(codes, ee=True), len(keys)) if has_ee is not False else None
        per_sig.append((kn, ke, at_edge, has_ee))
        while len(need) < len(keys):
            need.append(np.zeros(B, dtype=bool))
        need[kn] |= used_out[s]
        if ke is not None:
            need[ke] |= used_out[s] & has_ee
    # One batch of (tile, design) pairs that some used case needs.
    tiles = [a.subtile_dims(key) for key in keys]
    picks = [np.nonzero(n)[0] for n in need]
    pick = np.concatenate(picks)
    base_inner = pick if base is None else base[pick]
    level = _take_level(below, base_inner)
    # A dimension the level above does not tile (K of DSCONV, mapped only below) keeps its own size.
    dims_iter = {v: np.concatenate([_bcast(tile[v], B)[p] for tile, p in zip(tiles, picks, strict=True)])
                 if v in tiles[0] else level.dims[v] for v in below.dims}
    if len(pick):
        sub = _analyze_level(ctx, li + 1, level, dims_iter, level.dims, hw.take(pick), base_inner)
    else:                              # no case of this batch computes anything
        zero = np.zeros(0, dtype=np.int64)
        sub = LevelResult(runtime=zero, num_macs=zero, avg_active=zero.astype(float), err=zero, empty=zero)
    U = len(tiles)
    rt = np.zeros((U, B), dtype=np.int64)
    run = np.zeros((U, B), dtype=np.int64)
    act = np.zeros((U, B))
    serr = np.zeros((U, B), dtype=np.int64)
    sempty = np.zeros((U, B), dtype=np.int64)
    sflags = {name: np.zeros((U, B), dtype=bool) for name in sub.flags}
    start = 0
    for u, p in enumerate(picks):
        stop = start + len(p)
        rt[u, p] = sub.runtime[start:stop]
        run[u, p] = sub.num_macs[start:stop]
        act[u, p] = sub.avg_active[start:stop]
        serr[u, p] = sub.err[start:stop]
        sempty[u, p] = sub.empty[start:stop]
        for name, f in sub.flags.items():
            sflags[name][u, p] = _bcast(f, len(pick))[start:stop]
        start = stop
    comp_s, act_s, run_s, err_s, empty_s = [], [], [], [], []
    flag_s: dict[str, list] = {name: [] for name in sflags}
    rest = a.nedge - 1
    for kn, ke, at_edge, has_ee in per_sig:
        if ke is None:
            comp_s.append(rt[kn])
            act_s.append(act[kn] * (a.nedge if at_edge else a.n))
            run_s.append(run[kn] * (a.nedge if at_edge else a.n))
            err_s.append(serr[kn])
            empty_s.append(sempty[kn])
            for name, f in sflags.items():
                flag_s[name].append(f[kn])
            continue
        comp_s.append(np.where(has_ee, np.maximum(rt[ke], np.where(rest > 0, rt[kn], 0)), rt[kn]))
        act_s.append(np.where(has_ee, act[ke] + np.where(rest > 0, act[kn] * rest, 0), act[kn] * a.nedge))
        run_s.append(np.where(has_ee, run[ke] + np.where(rest > 0, run[kn] * rest, 0), run[kn] * a.nedge))
        err_s.append(np.where(has_ee, ctx.log.smallest(serr[[kn, ke]]), serr[kn]))
        empty_s.append(np.where(has_ee, ctx.log.smallest(sempty[[kn, ke]]), sempty[kn]))
        for name, f in sflags.items():
            flag_s[name].append(np.where(has_ee, f[ke] | f[kn], f[kn]))
    compute = _stack(comp_s, B)
    active = _stack(act_s, B, np.float64)
    fallback = _stack([a.nedge if e else a.n for _, _, e, _ in per_sig], B)
    active = np.where(active == 0, fallback, active)
    flags = {name: (used_out & np.stack(v)).any(axis=0) for name, v in flag_s.items()}
    return compute, active, _stack(err_s, B), _stack(empty_s, B), flags, _stack(run_s, B)
