"""The compiled cost-model kernel: the reference engine's arithmetic as loops over designs.

``engine.py`` (the reference) analyses a batch with numpy arrays over its designs; this module does
the same analysis one design at a time in compiled code (Numba, CPU only), from a structure's
program (``program.py``). Per design:

1. the register program gives every directive size, offset and level dimension;
2. levels are analysed without recursion (cached compiled code cannot recurse): a *discover* pass
   walks the levels top-down and collects the distinct sub-cluster tiles some computing case needs;
   an *evaluate* pass then analyses those tiles bottom-up, so each level finds its sub-clusters'
   results ready;
3. a level's case classes (see ``engine.py``) are enumerated for this design only (the variants
   that occur), and their contributions are summed as they are produced, in the reference's order,
   so even float sums round the same way;
4. the figures the reference assembles in ``cost._assemble`` are formed here too.

The reference and this kernel are tested equal on every figure (``tests/costmodel_tests``).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import diagnostics as dx
from .jit import njit
from .program import (
    E_KIND,
    E_OFS,
    E_OWNER,
    E_SIZE,
    E_TENSORS,
    E_VAR,
    ENTRY_WIDTH,
    H_CLUSTERS,
    H_CONV,
    H_DEV,
    H_EXACT,
    H_EXECUTED_MACS,
    H_FULL_R,
    H_FULL_S,
    H_FULL_X,
    H_FULL_Y,
    H_L1,
    H_LEVEL_TAB,
    H_LEVELS,
    H_NOPS,
    H_OPS,
    H_OUT_X,
    H_OUT_Y,
    H_SIZE_IN,
    H_SIZE_OUT,
    H_SIZE_W,
    H_STATIC_ERR,
    H_SX,
    H_SY,
    H_TRUE_MACS,
    H_VARS,
    H_VR,
    H_VS,
    H_VX,
    H_VXP,
    H_VY,
    H_VYP,
    L_BELOW,
    L_DIMS,
    L_ENT,
    L_FIRST,
    L_FOLD_OUTPUT,
    L_NENT,
    L_NUMSUB,
    L_OUTF,
    L_OWNERS,
    L_PSUM,
    L_SPALL,
    L_SPFIRST,
    L_TENSOR,
    LEVEL_WIDTH,
    OP_CONST,
    OP_COPY,
    OP_HOLE,
    OP_MIN,
    OP_POSITIVE,
    OP_SPAN,
    OP_STRIDE,
    OP_WHOLE,
    OP_WIDTH,
    OP_WINDOW,
    REG_TAIL,
    REG_TOP_SUB,
    SPATIAL,
    STATIC_BAD_RS,
    STATIC_BAD_SIZE,
    T_INPUT,
    T_WEIGHT,
    TEMPORAL,
)

# Every function but ``_designs`` allocates nothing, so it runs without Numba's reference counting
# (its ``_nrt`` option, private to Numba: a Numba that drops it fails every kernel test at compile
# time): the atomic increments and decrements on the arrays it is passed took an eighth of the
# kernel's samples under perf.
NO_NRT = {"cache": True, "_nrt": False}

INIT, INIT_IE, STEADY, EDGE, NONEDGE = range(5)
DISCOVER, EVALUATE = 0, 1
UNLIMITED = 1 << 40
BIG = np.iinfo(np.int64).max

# Integer outputs per design (columns of ``ints``).
(I_RUNTIME, I_MACS, I_L1_REQ, I_L2_REQ, I_IN_L2R, I_W_L2R, I_OUT_L2W, I_OUT_L1, I_PEAK_BW, I_OFFCHIP_BW,
 I_USED_PES, I_PE_PEAK, I_IN_MIN, I_IN_MAX, I_IN_AVG, I_EG_MIN, I_EG_MAX, I_EG_AVG, I_CO_MIN, I_CO_MAX,
 I_CO_AVG, I_ERR_KIND, I_ERR_A, I_ERR_B, I_ERR_C, I_DEV, I_VIOLATIONS, I_OK) = range(28)
N_INTS = 28
# Float outputs per design.
(F_THROUGHPUT, F_ENERGY, F_ENERGY_NJ, F_AVG_BW, F_AVG_ACTIVE, F_AREA, F_POWER, F_UTILIZATION,
 F_INTENSITY) = range(9)
N_FLOATS = 9
VIOLATION_L1, VIOLATION_L2, VIOLATION_NOC, VIOLATION_OFFCHIP = 1, 2, 4, 8
VIOLATION_PART, VIOLATION_LOCKSTEP = 16, 32

# Hardware columns per design.
HW_NUM_PES, HW_LANES, HW_NOC_BW, HW_LATENCY, HW_OFFCHIP_BW, HW_L1_CAP, HW_L2_CAP, HW_NOC_CAP, \
    HW_OFFCHIP_CAP = range(9)
N_HW = 9

# Tech constants (``Tech`` fields in this order).
(T_L1E, T_L2E, T_MAC_NJ, T_MAC_AREA, T_MAC_POWER, T_L1_AREA, T_L1_POWER, T_L2_AREA, T_L2_POWER,
 T_BUS_AREA, T_BUS_POWER, T_ARB_AREA, T_ARB_POWER, T_BUS_C1, T_BUS_C0, T_ARB_A2, T_ARB_A1,
 T_ARB_A0) = range(18)

# Rows of the per-design integer scratch (each row is one value per variable or per directive).
(R_M, R_U, R_EM, R_EU, R_HAS, R_U1, R_UMAX1, R_SM, R_SU, R_SEM, R_SEU, R_SHAS, R_SZ, R_OF, R_IE, R_UNR,
 R_ST, R_ED, R_EE, R_CODES, R_OWNCODE, R_NCH, R_CH0, R_CH1, R_DIG, R_TILE, R_DITER, R_DSTAT,
 R_TM, R_DIG2, R_KIND, R_VAR, R_OWNER, R_FIRST, R_IE_PARTIAL, R_DIG3, R_HELD, R_EDGE_IDLE) = range(38)
N_ROWS = 38

# Level results kept per sub-cluster tile: runtime, error record, empty record, flags, MACs executed.
Q_RT, Q_ERR, Q_EMPTY, Q_FLAGS, Q_MACS = 0, 1, 5, 9, 10
Q_WIDTH = 11

DEV_OVERSIZED = dx.DEV_BIT["oversized-map-edge"]
DEV_SUBTILE = dx.DEV_BIT["subtile-edges"]
DEV_INIT_EMPTY = dx.DEV_BIT["init-case-empty"]
DEV_WHOLE_LAST = dx.DEV_BIT["whole-last-tile"]
DEV_PEAK = dx.DEV_BIT["pe-peak-bound"]
DEV_REREAD = dx.DEV_BIT["uncoupled-reread"]
DEV_IDLE_BELOW = dx.DEV_BIT["idle-below-filter"]
DEV_TEMPORAL_EDGE = dx.DEV_BIT["temporal-edge-reads"]
DEV_HALO_ONCE = dx.DEV_BIT["shared-halo-once"]
DEV_EDGE_FOLD = dx.DEV_BIT["edge-fold-output"]
DEV_EDGE_PARTIAL = dx.DEV_BIT["edge-fold-partial"]
DEV_EDGE_READS_FOLD = dx.DEV_BIT["edge-fold-reads"]
DEV_STRIDED_ROWS = dx.DEV_BIT["strided-output-rows"]
DEV_L1_HELD = dx.DEV_BIT["l1-held-tile"]
DEV_IDLE_EDGE = dx.DEV_BIT["idle-edge-subcluster"]
DEV_FOLD_KEEP = dx.DEV_BIT["fold-overlap-reuse"]
DEV_EXECUTED = dx.DEV_BIT["executed-macs"]
DEV_RESTART = dx.DEV_BIT["restart-overlap"]
DEV_FOLD_RESTART = dx.DEV_BIT["fold-restart-held"]
DEV_TAIL = dx.DEV_BIT["strided-tail-held"]
DEV_HELD = dx.DEV_BIT["oversized-map-held"]
DEV_PARTIAL_ROWS = dx.DEV_BIT["partial-filter-rows"]
DEV_PARTIAL_SHIFT = dx.DEV_BIT["partial-filter-shift"]
DEV_LOCKSTEP = dx.DEV_BIT["lockstep-skips"]


# ------------------------------------------------------------------------------ small helpers
@njit(inline="always", **NO_NRT)
def _is_edge(code):
    return code == INIT_IE or code == EDGE


@njit(inline="always", **NO_NRT)
def _less(a, b):
    """Record ``a`` < record ``b`` (4 ints each, lexicographic)."""
    for k in range(4):
        if a[k] != b[k]:
            return a[k] < b[k]
    return False


@njit(inline="always", **NO_NRT)
def _take_smaller(dst, src):
    """``dst`` becomes the smaller of the two error records (kind 0 = none, never smaller)."""
    if src[0] != 0 and (dst[0] == 0 or _less(src, dst)):
        for k in range(4):
            dst[k] = src[k]


@njit(inline="always", **NO_NRT)
def _set(rec, kind, a, b, c):
    rec[0], rec[1], rec[2], rec[3] = kind, a, b, c


@njit(inline="always", **NO_NRT)
def _noc_delay(volume, bw, latency):
    sends = -(-volume // bw)
    return max(latency + sends - 1, 0)


# ------------------------------------------------------------------------ register program
@njit(**NO_NRT)
def _run_ops(P, base, holes, regs):
    """Replay a structure's register program; returns (bad_size, bad_rs) of the design."""
    ops = base + P[base + H_OPS]
    bad_size = False
    bad_rs = False
    regs[REG_TAIL] = 0
    for k in range(P[base + H_NOPS]):
        o = ops + OP_WIDTH * k
        op, dst, a, b, c, d = P[o], P[o + 1], P[o + 2], P[o + 3], P[o + 4], P[o + 5]
        if op == OP_CONST:
            regs[dst] = a
        elif op == OP_HOLE:
            regs[dst] = holes[a]
        elif op == OP_COPY:
            regs[dst] = regs[a]
        elif op == OP_WINDOW:
            regs[dst] = regs[a] + regs[b] - 1
        elif op == OP_MIN:
            regs[dst] = min(regs[a], regs[b])
        elif op == OP_POSITIVE:
            if regs[dst] < 1 or regs[a] < 1:
                bad_size = True
                regs[dst] = max(regs[dst], 1)
                regs[a] = max(regs[a], 1)
        elif op == OP_SPAN:
            if regs[dst] != b or regs[a] != b:
                bad_rs = True
        elif op == OP_STRIDE:           # levels._apply_stride; d = R * 4 + 2 * exact + top
            m = regs[b]
            s = c
            r = d >> 2
            if m >= r:
                out = (m + s - r) // s
                if (d & 2) != 0 or r >= s:
                    regs[dst] = out * min(s, r) + max(r - s, 0)
                    regs[a] = out * (r if ((d & 1) == 0 and r < s) else s)
                else:
                    regs[dst] = (out - 1) * s + r
                    regs[a] = out * s
        elif op == OP_WHOLE and regs[a] >= regs[b] > regs[dst]:
            regs[dst] = regs[b]             # an unmapped strided dimension is held whole (levels.py)
            regs[REG_TAIL] = 1
    return bad_size, bad_rs


# ------------------------------------------------------------------------------ one level
@njit(**NO_NRT)
def _output_rows(span, s):
    """Output rows of a tile whose input rows exceed its filter rows by ``span``
    (engine._output_rows)."""
    if s == 1 or span < 0:
        return span + 1
    return span // s + 1


@njit(inline="always", **NO_NRT)
def _lockstep(sc, nent, i, var):
    """Whether entry ``i`` is a SpatialMap that a SpatialMap on ``var`` of the same size and offset
    moves in lockstep with."""
    if sc[R_KIND, i] != SPATIAL:
        return False
    for j in range(nent):
        if (sc[R_KIND, j] == SPATIAL and sc[R_VAR, j] == var and sc[R_SZ, j] == sc[R_SZ, i]
                and sc[R_OF, j] == sc[R_OF, i]):
            return True
    return False


@njit(**NO_NRT)
def _tables(sc, nent, nv, dmap, conv, vy, vx, vyp, vxp, vr, vs, sy, sx, whole, exact, rm, ru, rem, reu,
            rhas):
    """MAESTRO's per-dimension mapping tables (engine._mapping_tables) into rows ``rm``..``rhas``;
    returns the deviation bits they show: a map larger than its dimension getting a corrected edge
    size, strided output rows, a partial filter tile, whose output rows are cut to the layer's, and
    such a tile beside a Y or X tile smaller than the layer's (``whole``: the layer's output rows,
    filter sizes and input rows for Y and X)."""
    wrong_any = False
    strided = False
    clipped = False
    shifted = False
    for v in range(nv):
        sc[rhas, v] = 0
    for i in range(nent):
        v = sc[R_VAR, i]
        d = sc[dmap, v]
        m = sc[R_SZ, i]
        f = sc[R_OF, i]
        t = max((d - m) // f, 0)
        has_edge = (t * f + m < d) or (m > d)
        uniq = min(m, f)
        if sc[R_KIND, i] == TEMPORAL and d <= m:
            uniq = 0
        em = d - (t + 1) * f
        wrong = m > d and em >= 0
        wrong_any = wrong_any or wrong
        if em < 0 or (wrong and not exact):
            em = d
        sc[rm, v] = m
        sc[ru, v] = uniq
        sc[rem, v] = em if has_edge else m
        sc[reu, v] = max(f - (m - em), 0)
        sc[rhas, v] = 1
    if conv:
        for i in range(nent):
            v = sc[R_VAR, i]
            if v != vy and v != vx:
                continue
            sl = vr if v == vy else vs
            out = vyp if v == vy else vxp
            s = sy if v == vy else sx
            m_sl = sc[rm, sl] if sc[rhas, sl] else 0
            if not exact and sc[rhas, sl]:
                held = min(m_sl, sc[dmap, sl])          # the filter rows it holds (engine)
                clipped = clipped or held != m_sl
                m_sl = held
            em_sl = sc[rem, sl] if sc[rhas, sl] else 0
            span = sc[rm, v] - m_sl
            edge_span = sc[rem, v] - em_sl
            sc[rm, out] = _output_rows(span, s)
            sc[ru, out] = (min(sc[R_OF, i], sc[R_SZ, i]) if s == 1
                           else min(sc[R_OF, i] // s, sc[rm, out]))       # engine._mapping_tables
            sc[rem, out] = _output_rows(edge_span, s)
            sc[reu, out] = min(sc[R_OF, i] // s, sc[rem, out])
            sc[rhas, out] = 1
            if s > 1 and (sc[rm, out] != span + 1 or sc[rem, out] != edge_span + 1
                          or sc[ru, out] != min(sc[R_OF, i], sc[R_SZ, i])
                          or sc[reu, out] != min(sc[R_OF, i], edge_span + 1)):
                strided = True                  # MAESTRO's stride-1 rows give other sizes
            k = 0 if v == vy else 1             # whole: (out Y, out X, R, S, Y, X)
            most, filt, rows = whole[k], whole[2 + k], whole[4 + k]
            if not exact and m_sl < filt and sc[rhas, sl]:
                # A partial filter tile (engine._mapping_tables).
                clipped = clipped or sc[rm, out] > most or sc[rem, out] > most
                if min(sc[R_SZ, i], sc[dmap, v]) < rows and not _lockstep(sc, nent, i, sl):
                    shifted = True
                sc[rm, out] = min(sc[rm, out], most)
                sc[rem, out] = min(sc[rem, out], most)
                sc[reu, out] = min(sc[reu, out], sc[rem, out])
    return ((DEV_OVERSIZED if wrong_any else 0) | (DEV_STRIDED_ROWS if strided else 0)
            | (DEV_PARTIAL_ROWS if clipped else 0) | (DEV_PARTIAL_SHIFT if shifted else 0))


@njit(**NO_NRT)
def _states(sc, nent, n):
    """Iteration positions of the level's directives (engine._states) from the iteration dims."""
    for i in range(nent):
        d = sc[R_DITER, sc[R_VAR, i]]
        m = sc[R_SZ, i]
        f = sc[R_OF, i]
        if sc[R_KIND, i] == SPATIAL:
            cov = m + f * (n - 1)
            ts = ((d - m) // f + 1) // n - 1 if d >= m else -1
            fold = f * n
            s_ie = d < cov
            s_unrolled = d <= cov
            s_edge = (not s_unrolled) and ((ts + 1) * fold + cov > d) and (ts * fold + cov != d)
            rem = d - (ts + 1) * fold
            active = 1 if rem < m else (rem - m) // f + 1
            sc[R_IE, i] = s_ie
            sc[R_UNR, i] = s_unrolled
            sc[R_ST, i] = ts if (cov < d and ts > 0) else 0
            sc[R_ED, i] = (not s_ie) and s_edge
            sc[R_EE, i] = (active - 1) * f + m < rem
        else:
            t = (d - m) // f
            ie = d < m
            sc[R_IE, i] = ie
            sc[R_UNR, i] = d <= m
            sc[R_ST, i] = t if (m < d and t > 0) else 0
            sc[R_ED, i] = (not ie) and (t * f + m < d)
            sc[R_EE, i] = 0


@njit(**NO_NRT)
def _edge_clusters(sc, dmap, sp, n, exact):
    """Sub-clusters active in a spatial edge fold (engine._edge_clusters), from the dims in row
    ``dmap``, and whether a partial last tile is counted beside the whole ones (deviation
    edge-fold-partial)."""
    d = sc[dmap, sc[R_VAR, sp]]
    m = sc[R_SZ, sp]
    f = sc[R_OF, sp]
    if d <= m:
        return 1, False
    full = f * (n - 1) + m
    if d > full:
        t = ((d - m) // f + 1) // n - 1
        rem = d - (t + 1) * f * n
        if rem < m:
            return 1, False
        beyond = (rem - m) // max(f, 1) + 1
        partial = not exact and (beyond - 1) * f + m < rem
        return beyond + (1 if partial else 0), partial
    within = (d - m) // f + 1
    if f * (within - 1) + m < d:
        within += 1
    return within, False


@njit(inline="always", **NO_NRT)
def _has_ee(sc, i):
    """(edge-edge possible, value) for spatial directive ``i`` in the current class (engine.has_ee)."""
    code = sc[R_CODES, i]
    if code == INIT_IE:
        return True, sc[R_IE_PARTIAL, i] != 0
    owner = sc[R_OWNER, i]
    if code == EDGE and sc[R_KIND, owner] == SPATIAL:
        return True, sc[R_EE, owner] != 0
    return False, False


@njit(inline="always", **NO_NRT)
def _spatial_state(sc, P, state_at, spall):
    """(spatially mapped, at an edge, edge-edge possible, edge-edge) of a tensor in this class.

    ``state_at`` points at the tensor's state directive in its L_TENSOR block (followed by the list
    of its dimensions' spatial first directives); ``spall`` >= 0 (the L_SPALL list) makes every
    spatial map count, as MAESTRO does for partial sums."""
    state = P[state_at]
    at_edge = False
    for k in range(P[state_at + 1]):
        at_edge = at_edge or _is_edge(sc[R_CODES, P[state_at + 2 + k]])
    if spall >= 0:
        for k in range(P[spall]):
            i = P[spall + 1 + k]
            state = i
            at_edge = at_edge or _is_edge(sc[R_CODES, i])
    if state < 0:
        return False, False, False, False
    possible, value = _has_ee(sc, state)
    return True, at_edge, possible, value


@njit(inline="always", **NO_NRT)
def _lockstep_skips(sc, P, spall, dmap, n, vy, vr, vx, vs):
    """The level's two SpatialMaps, on independent dimensions (not Y with R, nor X with S), skip
    window pairs: two sub-clusters or more and a map smaller than its tile (engine._lockstep_skips)."""
    if P[spall] != 2 or n < 2:
        return False
    a, b = P[spall + 1], P[spall + 2]
    va, vb = sc[R_VAR, a], sc[R_VAR, b]
    sliding = (va == vy and vb == vr) or (va == vr and vb == vy) or (va == vx and vb == vs) or \
        (va == vs and vb == vx)
    if sliding:
        return False
    return sc[R_SZ, a] < sc[dmap, va] or sc[R_SZ, b] < sc[dmap, vb]


# Per-PE volumes are products over a tensor's directives (engine.pe_ingress, pe_egress). Temporal
# factors do not depend on which sub-cluster is meant (first or not, edge-edge or not), so each
# product is split: temporal factors once per class, spatial factors (at most two maps) per variant.
@njit(inline="always", **NO_NRT)
def _restart_overlap(sc, i, size):
    """How much of a restarted temporal map's first window its last still covers (engine)."""
    if sc[R_UNR, i]:
        return size
    v = sc[R_VAR, i]
    if sc[R_ED, i] > 0 and not sc[R_EDGE_IDLE, i]:
        start = (sc[R_ST, i] + sc[R_ED, i]) * sc[R_OF, i]
        last = sc[R_EM, v]
    else:                                # no edge step, or one that computes nothing: the PEs still
        start = sc[R_ST, i] * sc[R_OF, i]        # hold the last steady window
        last = sc[R_M, v]
    return max(min(size - start, last), 0)


@njit(inline="always", **NO_NRT)
def _in_temporal(sc, P, tl, c, inited, exact):
    """(product of the temporal factors, whether an edge tile (the changing map's edge step, or a map
    outside it standing at its edge) counts its own window where MAESTRO counts a steady step's:
    deviation temporal-edge-reads, the part of that product
    the previous step's tile shares with it: deviation restart-overlap)."""
    prod = 1
    held = 1
    edge_reads = False
    for k in range(P[tl]):
        i = P[tl + 1 + k]
        v = sc[R_VAR, i]
        code = sc[R_CODES, i]
        if c == -1:
            prod *= sc[R_EM, v] if _is_edge(code) else sc[R_M, v]
        elif code == INIT_IE:
            prod *= sc[R_EM, v]
            held *= sc[R_EM, v]
        elif code == EDGE and i != c and not exact:
            prod *= sc[R_EM, v]          # inside a map at its edge tile: its edge window (engine)
            held *= sc[R_EM, v]
            edge_reads = edge_reads or sc[R_EM, v] != sc[R_M, v]
        elif code == INIT or i != c:
            prod *= sc[R_M, v]
            held *= _restart_overlap(sc, i, sc[R_M, v]) if (i > c and code == INIT) else sc[R_M, v]
        else:
            f = sc[R_M, v] if inited else sc[R_UMAX1, v]
            if code == EDGE and not exact:
                edge_f = sc[R_EM, v] if inited else min(sc[R_EU, v], sc[R_EM, v])
                edge_reads = edge_reads or edge_f != f
                f = edge_f
            prod *= f
            held *= max(min(sc[R_M, v] - sc[R_OF, i], f), 0)
    return prod, edge_reads, held


@njit(inline="always", **NO_NRT)
def _in_spatial(sc, P, sl, first, ee, c, inited, nact1, exact, n):
    """(product of the spatial factors, whether a sub-cluster after the first got its share of the
    elements its neighbour does not also need where MAESTRO counts its whole tile: deviation
    shared-halo-once, engine._halo_once; whether the first kept its previous tile's overlap on a
    fold advance: deviation fold-overlap-reuse; whether it holds a first fold's edge tile where
    MAESTRO counts a whole one: deviation edge-fold-reads)."""
    prod = 1
    halo = False
    kept = False
    first_edge = False
    for k in range(P[sl]):
        i = P[sl + 1 + k]
        v = sc[R_VAR, i]
        code = sc[R_CODES, i]
        uniq = sc[R_EU, v] if ee else sc[R_U, v]
        if c == -1:
            if _is_edge(code):
                if nact1:
                    f = sc[R_EM, v] if (first or ee) else 1
                    uniq = f
                else:
                    f = sc[R_EM, v] if ee else sc[R_M, v]
            else:
                f = sc[R_M, v]
                uniq = sc[R_U, v]
        else:
            # The edge fold's one busy sub-cluster holds what is left of the dimension (deviation
            # edge-fold-reads, engine.pe_ingress).
            mapped = sc[R_EM, v] if (ee or (first and nact1 and _is_edge(code) and not exact)) else sc[R_M, v]
            if first and not ee and code == INIT_IE and mapped != sc[R_M, v]:
                first_edge = True
            if first:
                f = mapped
                step = n * sc[R_OF, i]
                if i == c and not exact and not inited and step < sc[R_M, v]:
                    # A fold advance shorter than the tile: what the new tile (the edge tile at the
                    # edge fold) reaches beyond the previous one.
                    f = max(step + mapped - sc[R_M, v], 0)
                    kept = f != mapped
            else:
                if code == INIT or code == INIT_IE:
                    f = mapped if i < c else uniq
                elif i == c:
                    f = mapped if inited else uniq
                else:
                    f = mapped
        if not (first or exact) and P[sl] == 1:     # two maps in lockstep overlap otherwise
            share = min(uniq, sc[R_EM, v] if ee else sc[R_M, v])     # never more than the tile
            halo = halo or f != share
            f = share
        prod *= f
    return prod, halo, kept, first_edge


@njit(inline="always", **NO_NRT)
def _fold_restart(sc, P, sl, spall, c, n, nedge, exact, owned, ee_idle):
    """(sub-clusters, extent along the map) of the first fold's footprint that sub-clusters needing
    it still hold where the level's one spatial map restarts inside advancing map ``c`` (deviation
    fold-restart-held, engine._fold_restart_held; the docs give the derivation)."""
    if exact or c < 0 or not owned or P[sl] != 1 or P[spall] != 1:
        return 0, 0
    j = P[sl + 1]
    if j != P[spall + 1] or j <= c or sc[R_CODES, j] != INIT or sc[R_UNR, j]:
        return 0, 0
    v = sc[R_VAR, j]
    m, o = sc[R_M, v], sc[R_OF, j]
    folds = 1 + sc[R_ST, j] + sc[R_ED, j]
    edge = sc[R_ED, j] != 0
    # Sub-clusters that compute in the last fold (an edge fold's partial last one shorter than the
    # filter does not, idle-edge-subcluster): they hold its tiles, the others the fold before's.
    busy = (nedge - (1 if ee_idle else 0)) if edge else n
    if n == 1:
        if busy == 0:                    # it holds the fold before the last
            return 1, max(m - (folds - 2) * o, 0)
        last = sc[R_EM, v] if edge else m
        return 1, max(min(m - (folds - 1) * o, last), 0)
    if o >= m:                           # sub-clusters share nothing: only idle ones can hold
        return (n - busy, m) if edge and folds == 2 and busy < n else (0, 0)
    shift = (folds - 1) * n * o          # a sub-cluster busy in the last fold: how far its tile moved
    need = 0                             # positions some sub-cluster needs and lacks
    if busy > 0:
        need = (busy - 1) * o + min(m, shift)
    if busy < n and folds > 2:
        need = max(need, (n - 1) * o + min(m, shift - n * o))
    return 1, m + (n - 1) * o - need


@njit(inline="always", **NO_NRT)
def _fold_advance_held(sc, P, sl, spall, c, n, nact1):
    """Extent along advancing spatial map ``c`` (the level's one) of the fold's footprint its
    sub-clusters still hold from the fold before (engine._fold_advance_held): each moves by
    sub-clusters x offset, so what the fold needs and they lack begins that far short of the
    first tile's end."""
    if P[sl] != 1 or P[spall] != 1 or P[sl + 1] != c:
        return 0
    v = sc[R_VAR, c]
    mapped = sc[R_EM, v] if (sc[R_CODES, c] == EDGE and nact1) else sc[R_M, v]
    return max(min(sc[R_M, v] - n * sc[R_OF, c], mapped), 0)


@njit(**NO_NRT)
def _ingress(sc, P, block, bit, c, n, nedge, nact1, exact, ee_idle, spall):
    """(volume, MAESTRO would stop here, the volume is a re-read MAESTRO counts as 0, a temporal
    edge step counted its own window, neighbours' shared elements counted once, a fold advance kept
    its overlap, a restarted temporal tile kept its overlap, a restarted spatial map's tile still
    held was kept, a first fold's edge tile held) of an input/weight tensor in this class
    (engine.ingress)."""
    uncoupled = c >= 0 and (sc[R_TM, c] & bit) == 0
    if uncoupled and exact:
        return 0, False, False, False, False, False, False, False, False   # MAESTRO: the map leaves it be
    tl = block
    sl = tl + 1 + P[tl]
    inited = False
    countable = not exact                  # restart-overlap: one map per dimension, no spatial move
    owned = True                           # each dimension of the tensor has one map at the level
    if c >= 0:
        for lst in (tl, sl):
            for k in range(P[lst]):
                j = P[lst + 1 + k]
                restarts = j > c and sc[R_CODES, j] == INIT and sc[R_UNR, sc[R_OWNER, j]] == 0
                if restarts:
                    inited = True
                if sc[R_OWNER, j] != j:
                    owned = False
                if sc[R_OWNER, j] != j or (lst == sl and (j == c or restarts)):
                    countable = False
    if uncoupled and not inited:
        return 0, False, False, False, False, False, False, False, False
    # Uncoupled but a coupled map inside restarts: the whole tile again (deviation uncoupled-reread).
    term = c >= 0 and sc[R_KIND, c] == TEMPORAL and not inited and sc[R_U, sc[R_VAR, c]] == 0
    temporal, edge_reads, held = _in_temporal(sc, P, tl, c, inited, exact)
    restart = countable and inited and held > 0
    if restart:
        temporal -= held                   # the part still held is not delivered again
    is_sp, at_edge, possible, hee = _spatial_state(sc, P, sl + 1 + P[sl], -1)
    first_f, _, kept, first_edge = _in_spatial(sc, P, sl, True, False, c, inited, nact1, exact, n)
    first = temporal * first_f
    if not is_sp:
        nz = first != 0
        return (first, term, uncoupled and nz, edge_reads and nz, False, kept and nz, restart and nz,
                False, first_edge and nz)
    rest_f, halo, _, _ = _in_spatial(sc, P, sl, False, False, c, inited, nact1, exact, n)
    rest = temporal * rest_f
    kept_fold = 0
    if not at_edge:
        vol = first + (n - 1) * rest
        holders, extent = _fold_restart(sc, P, sl, spall, c, n, nedge, exact, owned, ee_idle)
        kept_fold = holders * held * extent
        vol -= kept_fold                   # what they still hold is not delivered again
        halo = halo and n > 1
    else:
        edge_first = first
        n_ee = 0
        if possible:
            if nact1 and hee:          # the one busy sub-cluster of the edge fold is edge-edge
                ee_first_f, _, kept, first_edge = _in_spatial(sc, P, sl, True, True, c, inited, nact1,
                                                              exact, n)
                edge_first = temporal * ee_first_f
            n_ee = 1 if hee else 0
        n_full = nedge - n_ee - 1
        extra = max(n_full, 0) * rest
        halo = halo and n_full > 0      # flags only from the variants counted (engine: same)
        if n_ee and not ee_idle:        # an idle one computes nothing (idle-edge-subcluster)
            ee_f, ee_halo, _, _ = _in_spatial(sc, P, sl, False, True, c, inited, nact1, exact, n)
            extra += temporal * ee_f
            halo = halo or ee_halo
        vol = edge_first + (extra if nedge > 1 else 0)
        halo = halo and nedge > 1
    if inited and owned and not exact:
        # A spatial map advances a fold shorter than its tile and a map inside restarts: the
        # sub-clusters keep their previous tiles' overlap (deviation restart-overlap).
        kept_step = held * _fold_advance_held(sc, P, sl, spall, c, n, nact1)
        vol -= kept_step
        restart = restart or kept_step > 0
    nz = vol != 0
    return (vol, term, uncoupled and nz, edge_reads and nz, halo and nz, kept and nz, restart and nz,
            kept_fold > 0 and nz, first_edge and nz)


@njit(inline="always", **NO_NRT)
def _out_temporal(sc, P, outf, psum_list):
    """(output factors, partial-sum factors) of the temporal directives."""
    out = 1
    for k in range(P[outf]):
        o = outf + 1 + 3 * k
        i, a = P[o], P[o + 2]
        if sc[R_HAS, a] == 0:
            out = 0
        elif _is_edge(sc[R_CODES, i]):
            out *= sc[R_EM, a]
        else:
            out *= sc[R_M, a]
    ps = 1
    for k in range(P[psum_list]):
        i = P[psum_list + 1 + k]
        v = sc[R_VAR, i]
        ps *= sc[R_EM, v] if _is_edge(sc[R_CODES, i]) else sc[R_M, v]
    return out, ps


@njit(inline="always", **NO_NRT)
def _out_spatial(sc, P, outs, first, ee, reuse, nact1, maestro_fold):
    """Output factors of the spatial directives (``outs``: the L_OUTF spatial triples)."""
    vol = 1
    for k in range(P[outs]):
        o = outs + 1 + 3 * k
        i, v, a = P[o], P[o + 1], P[o + 2]
        has_a = sc[R_HAS, a] != 0
        code = sc[R_CODES, i]
        if first:
            plain = (sc[R_HELD, v] if a == v else sc[R_M, a]) if has_a else 0
        else:
            plain = sc[R_U1, a] if has_a else 1
        if code == EDGE:
            if nact1:
                f = _edge_fold_size(sc, v, a, maestro_fold) if (first or ee) else 1
            else:
                f = (sc[R_EU, a] if has_a else 0) if ee else plain
        elif code == INIT_IE and ee:
            if nact1 or not reuse:
                f = sc[R_EM, a] if has_a else 0
            else:
                f = sc[R_EU, a] if has_a else 0
        else:
            f = plain
        vol *= f
    return vol


@njit(inline="always", **NO_NRT)
def _psum_spatial(sc, P, pss, first, ee, nact1):
    """Partial-sum factors of the spatial directives not coupled to the output."""
    vol = 1
    for k in range(P[pss]):
        i = P[pss + 1 + k]
        v = sc[R_VAR, i]
        code = sc[R_CODES, i]
        plain = sc[R_HELD, v] if first else sc[R_U1, v]
        if code == EDGE:
            if nact1:
                f = sc[R_EM, v] if (first or ee) else 1
            else:
                f = sc[R_EU, v] if ee else plain
        elif code == INIT_IE and ee:
            f = sc[R_EM, v]
        else:
            f = plain
        vol *= f
    return vol


@njit(inline="always", **NO_NRT)
def _edge_fold_differs(sc, P, outf):
    """A one-sub-cluster spatial edge fold whose output size MAESTRO takes from the input rows
    (deviation edge-fold-output, engine.edge_fold_differs); for nact1 designs only."""
    outs = outf + 1 + 3 * P[outf]
    for k in range(P[outs]):
        o = outs + 1 + 3 * k
        i, v, a = P[o], P[o + 1], P[o + 2]
        if v != a and sc[R_CODES, i] == EDGE and _edge_fold_size(sc, v, a, True) != \
                _edge_fold_size(sc, v, a, False):
            return True
    return False


@njit(inline="always", **NO_NRT)
def _edge_fold_size(sc, v, a, maestro):
    """engine._edge_fold_size: MAESTRO's input-row edge size, or the output rows (at least 0)."""
    if maestro:
        return sc[R_EM, v] if sc[R_HAS, v] else 0
    return max(sc[R_EM, a], 0) if sc[R_HAS, a] else 0


@njit(inline="always", **NO_NRT)
def _crit(sc, P, out_state, psum_list, outf, nact1, maestro_fold):
    """Critical-path MACs of one sub-cluster in this class (the discover pass needs only these)."""
    out_t, ps_t = _out_temporal(sc, P, outf, psum_list)
    outs = outf + 1 + 3 * P[outf]
    pss = psum_list + 1 + P[psum_list]
    is_sp, at_edge, possible, hee = _spatial_state(sc, P, out_state, -1)
    ee = is_sp and at_edge and possible and nact1 and hee
    return (ps_t * _psum_spatial(sc, P, pss, True, ee, nact1)
            * out_t * _out_spatial(sc, P, outs, True, ee, True, nact1, maestro_fold))


@njit(**NO_NRT)
def _outputs(sc, P, out_state, psum_list, outf, spall, n, nedge, nact1, maestro_fold):
    """(egress, MACs, critical-path MACs, a sub-cluster has negative MACs) of this class
    (engine.output_volumes)."""
    out_t, ps_t = _out_temporal(sc, P, outf, psum_list)
    outs = outf + 1 + 3 * P[outf]
    pss = psum_list + 1 + P[psum_list]
    # Egress: the output tile of every active sub-cluster.
    is_sp, at_edge, possible, hee = _spatial_state(sc, P, out_state, -1)
    first = out_t * _out_spatial(sc, P, outs, True, False, True, nact1, maestro_fold)
    crit_first = ps_t * _psum_spatial(sc, P, pss, True, False, nact1) * first
    crit = crit_first
    if not is_sp:
        egress = first
    else:
        rest = out_t * _out_spatial(sc, P, outs, False, False, True, nact1, maestro_fold)
        if not at_edge:
            egress = first + (n - 1) * rest
        else:
            edge_first = first
            n_ee = 0
            if possible:
                if nact1 and hee:
                    edge_first = out_t * _out_spatial(sc, P, outs, True, True, True, nact1, maestro_fold)
                    crit = ps_t * _psum_spatial(sc, P, pss, True, True, nact1) * edge_first
                n_ee = 1 if hee else 0
            extra = max(nedge - n_ee - 1, 0) * rest
            if possible:
                extra += n_ee * out_t * _out_spatial(sc, P, outs, False, True, True, nact1, maestro_fold)
            egress = edge_first + (extra if nedge > 1 else 0)
    # MACs: partial sums of every sub-cluster (the spatial state of all spatial maps).
    is_sp, at_edge, possible, hee = _spatial_state(sc, P, out_state, spall)
    negative = crit_first < 0
    if not is_sp or not at_edge:
        macs = crit_first * n
    else:
        edge_first = crit_first
        n_ee = 0
        v_ft = 0
        if possible:
            v_tt = (ps_t * _psum_spatial(sc, P, pss, True, True, nact1)
                    * out_t * _out_spatial(sc, P, outs, True, True, True, nact1, maestro_fold))
            v_ft = (ps_t * _psum_spatial(sc, P, pss, False, True, nact1)
                    * out_t * _out_spatial(sc, P, outs, False, True, False, nact1, maestro_fold))
            negative = negative or v_tt < 0 or v_ft < 0
            if nact1 and hee:
                edge_first = v_tt
            n_ee = 1 if hee else 0
        extra = max(nedge - n_ee - 1, 0) * crit_first + n_ee * v_ft
        macs = edge_first + (extra if nedge > 1 else 0)
    return egress, macs, crit, negative


@njit(**NO_NRT)
def _avg_bw_share(sc, nent, occ, traffic, comp):
    """Sum over MAESTRO's cases in this class of floor(occurrences x traffic / compute)."""
    if traffic % comp == 0:
        return occ * traffic // comp
    # Split the class back into cases: a directive at NONEDGE was at Init (1 - IE cases) or Steady
    # (ST); one that does not own its dimension's tables at Init (1), Steady (ST) or Edge (ED). Each
    # option's factor is 0, 1 or ST, so a case's floor depends only on which directives are at a
    # Steady of ST > 1: enumerate those subsets, and count the cases of factor 1 as a multiplicity.
    piece = 1
    mult = 1
    nbig = 0
    big = sc[R_DIG2]
    ones = sc[R_DIG3]
    for i in range(nent):
        if sc[R_OWNER, i] == i:
            code = sc[R_OWNCODE, i]
            if code != NONEDGE:
                piece *= _variant_occ(sc, i, code)
                continue
            m1 = 1 - sc[R_IE, i]
        else:
            m1 = 1 + sc[R_ED, i]
        st = sc[R_ST, i]
        if st > 1:
            big[nbig] = st
            ones[nbig] = m1
            nbig += 1
        else:
            mult *= m1 + st
    if mult == 0:
        return 0
    total = 0
    for mask in range(1 << nbig):
        p = piece
        cnt = mult
        for k in range(nbig):
            if (mask >> k) & 1:
                p *= big[k]
            else:
                cnt *= ones[k]
        if cnt != 0:
            total += cnt * (p * traffic // comp)
    return total


@njit(inline="always", **NO_NRT)
def _variant_occ(sc, o, code):
    if code == INIT:
        return 1 - sc[R_IE, o]
    if code == INIT_IE:
        return sc[R_IE, o]
    if code == STEADY:
        return sc[R_ST, o]
    if code == EDGE:
        return sc[R_ED, o]
    return 1 - sc[R_IE, o] + sc[R_ST, o]


@njit(inline="always", **NO_NRT)
def _find_tile(inst_dims, count, tile, width):
    for j in range(count):
        same = True
        for k in range(width):
            if inst_dims[j, k] != tile[k]:
                same = False
                break
        if same:
            return j
    return -1


@njit(inline="always", **NO_NRT)
def _subtile(sc, P, below, ee, nact1):
    """The sub-cluster tile of this class (engine.subtile_dims) in ``sc[R_TILE]``: one size per
    dimension of the level below, in L_BELOW order."""
    for k in range(P[below]):
        v = P[below + 1 + k]
        i = sc[R_FIRST, v]
        if _is_edge(sc[R_CODES, i]) and (sc[R_KIND, i] == TEMPORAL or ee or nact1):
            sc[R_TILE, k] = sc[R_EM, v]
        else:
            sc[R_TILE, k] = sc[R_M, v]


@njit(inline="always", **NO_NRT)
def _state_of(P, block):
    """Where a tensor's state directive sits in its L_TENSOR block."""
    sl = block + 1 + P[block]
    return sl + 1 + P[sl]


@njit(inline="always", **NO_NRT)
def _next_block(P, block):
    state = _state_of(P, block)
    return state + 2 + P[state + 1]


@njit(**NO_NRT)
def _analyze(P, base, li, mode, j, regs, hw, sc, acc, inst_dims, inst_n, inst_q, inst_act, top):
    """Analyse instance ``j`` of level ``li``. DISCOVER: only register the sub-cluster tiles its
    computing cases need (False if the tile table is full). EVALUATE: store its results (and, at the
    top, the top-level figures in ``top``)."""
    L = P[base + H_LEVELS]
    nv = P[base + H_VARS]
    conv = P[base + H_CONV] != 0
    exact = P[base + H_EXACT] != 0
    count_executed = P[base + H_EXECUTED_MACS] != 0     # deviation executed-macs may apply
    vy, vx, vyp, vxp, vr, vs = (P[base + H_VY], P[base + H_VX], P[base + H_VYP], P[base + H_VXP],
                                P[base + H_VR], P[base + H_VS])
    sy, sx = P[base + H_SY], P[base + H_SX]
    whole = (P[base + H_OUT_Y], P[base + H_OUT_X], P[base + H_FULL_R], P[base + H_FULL_S], P[base + H_FULL_Y],
             P[base + H_FULL_X])
    rec = base + P[base + H_LEVEL_TAB] + LEVEL_WIDTH * li
    maestro_fold = P[rec + L_FOLD_OUTPUT] == 0          # deviation edge-fold-output does not apply
    nent = P[rec + L_NENT]
    ent = base + P[rec + L_ENT]
    n = regs[P[rec + L_NUMSUB]]
    innermost = li == L - 1
    is_top = li == 0
    in_block = base + P[rec + L_TENSOR]
    w_block = _next_block(P, in_block)
    out_state = _state_of(P, _next_block(P, w_block))
    psum_list = base + P[rec + L_PSUM]
    outf = base + P[rec + L_OUTF]
    spall = base + P[rec + L_SPALL]
    below = base + P[rec + L_BELOW]
    lanes = hw[HW_LANES]
    bw = hw[HW_NOC_BW]
    lat = hw[HW_LATENCY]
    off_bw = hw[HW_OFFCHIP_BW]

    # Directives and dimensions.
    for i in range(nent):
        e = ent + ENTRY_WIDTH * i
        sc[R_KIND, i] = P[e + E_KIND]
        sc[R_VAR, i] = P[e + E_VAR]
        sc[R_OWNER, i] = P[e + E_OWNER]
        sc[R_SZ, i] = regs[P[e + E_SIZE]]
        sc[R_OF, i] = regs[P[e + E_OFS]]
        sc[R_TM, i] = P[e + E_TENSORS]
    dims_off = base + P[rec + L_DIMS]
    first_off = base + P[rec + L_FIRST]
    for v in range(nv):
        reg = P[dims_off + v]
        sc[R_DSTAT, v] = regs[reg] if reg >= 0 else 0
        sc[R_DITER, v] = sc[R_DSTAT, v]
        sc[R_FIRST, v] = P[first_off + v]
    # Below the top, the iteration dims are the sub-cluster tile (in the level above's L_BELOW order).
    differ = False
    if not is_top:
        upper_below = base + P[rec - LEVEL_WIDTH + L_BELOW]
        for k in range(P[upper_below]):
            v = P[upper_below + 1 + k]
            sc[R_DITER, v] = inst_dims[li, j, k]
            differ = differ or sc[R_DITER, v] != sc[R_DSTAT, v]

    # Tables from the tile itself (or the static dims, MAESTRO's way); states from the tile.
    dmap = R_DSTAT if (exact or is_top) else R_DITER
    flags = _tables(sc, nent, nv, dmap, conv, vy, vx, vyp, vxp, vr, vs, sy, sx, whole, exact, R_M, R_U,
                    R_EM, R_EU, R_HAS)
    if mode == EVALUATE and dmap == R_DITER and differ:
        _tables(sc, nent, nv, R_DSTAT, conv, vy, vx, vyp, vxp, vr, vs, sy, sx, whole, exact, R_SM, R_SU,
                R_SEM, R_SEU, R_SHAS)
        for v in range(nv):
            if sc[R_HAS, v] and (sc[R_U, v] != sc[R_SU, v] or sc[R_EM, v] != sc[R_SEM, v]
                                 or sc[R_EU, v] != sc[R_SEU, v]):
                flags |= DEV_SUBTILE
                break
    for v in range(nv):
        u = sc[R_U, v]
        sc[R_U1, v] = u if u != 0 else 1
        sc[R_UMAX1, v] = max(u, 1)
    # A map larger than its dimension holds the dimension (engine: held, oversized-map-held).
    for i in range(nent):
        v = sc[R_VAR, i]
        sc[R_HELD, v] = sc[R_M, v] if exact else min(sc[R_M, v], sc[dmap, v])
        if not exact and sc[R_KIND, i] == SPATIAL and sc[R_M, v] > sc[dmap, v]:
            flags |= DEV_HELD
    _states(sc, nent, n)
    # An under-filled spatial fold's last busy sub-cluster is partial only if its tile is (MAESTRO
    # takes it as partial always: deviation whole-last-tile, engine._LevelAnalysis).
    for i in range(nent):
        if sc[R_KIND, i] == SPATIAL:
            v = sc[R_VAR, i]
            whole = sc[R_EM, v] == sc[R_M, v]
            sc[R_IE_PARTIAL, i] = exact or not whole
            if not exact and whole and sc[R_IE, sc[R_OWNER, i]]:
                flags |= DEV_WHOLE_LAST
    sp = P[rec + L_SPFIRST]
    # Busy sub-clusters of an edge fold from the tile itself too (MAESTRO: the steady tile).
    nedge, partial = _edge_clusters(sc, dmap, sp, n, exact)
    if partial:
        flags |= DEV_EDGE_PARTIAL
    if dmap == R_DITER and differ and _edge_clusters(sc, R_DSTAT, sp, n, exact)[0] != nedge:
        flags |= DEV_SUBTILE
    nact1 = nedge == 1
    if nact1 and not exact:
        for i in range(nent):              # engine._LevelAnalysis: edge-fold-reads
            v = sc[R_VAR, i]
            if sc[R_KIND, i] == SPATIAL and sc[R_ED, i] and sc[R_EM, v] != sc[R_M, v]:
                flags |= DEV_EDGE_READS_FOLD
    if not exact and _lockstep_skips(sc, P, spall, dmap, n, vy, vr, vx, vs):
        flags |= DEV_LOCKSTEP
    # A map on Y or X whose edge window is shorter than the filter computes nothing there, so the
    # PEs keep the window before it (engine._restart_overlap).
    for i in range(nent):
        v = sc[R_VAR, i]
        out_v = vyp if v == vy else (vxp if v == vx else -1)
        sc[R_EDGE_IDLE, i] = not exact and conv and out_v >= 0 and sc[R_EM, out_v] <= 0
    # The partial last sub-cluster of a sliding spatial map shorter than the filter computes nothing
    # and receives nothing (engine: ee_idle).
    ee_idle = P[spall] == 1 and sc[R_EDGE_IDLE, sp] != 0
    if ee_idle:
        flags |= DEV_IDLE_EDGE

    # Occurrence multiplier of directives that do not own their dimension's tables.
    mult = 1
    for i in range(nent):
        if sc[R_OWNER, i] != i:
            mult *= 1 + sc[R_ST, i] + sc[R_ED, i]

    owners = base + P[rec + L_OWNERS]
    n_owners = P[owners]

    # Accumulators (records in ``acc``: sub-cluster error, idle reason, a scratch record, empty tile,
    # delay min/max/sum, why cases below the filter idle).
    A_SUB, A_REASON, A_REC, A_EMPTY, A_DMIN, A_DMAX, A_DSUM, A_IDLE = range(8)
    for r in range(8):
        for q in range(4):
            acc[r, q] = 0
    for q in range(3):
        acc[A_DMIN, q] = BIG
        acc[A_DMAX, q] = -BIG - 1
    total = 0
    runtime = 0
    act_sum = 0.0
    any_used = False
    bad_out = False
    neg_in = False
    idle = False
    term_any = False
    init_empty = False
    l2_in = 0
    l2_w = 0
    l2_out = 0
    in_l2r = 0
    w_l2r = 0
    out_l2w = 0
    out_l1 = 0
    macs_sum = 0
    peak = -BIG - 1
    offchip = -BIG - 1
    avg_bw_sum = 0

    # Classes: for each changing directive c (-1 = all at Init), every combination of the variants
    # that occur for this design, in the reference's order.
    for ci in range(-1, n_owners):
        c = -1 if ci < 0 else P[owners + 1 + ci]
        empty_choice = False
        for k in range(n_owners):
            o = P[owners + 1 + k]
            ie = sc[R_IE, o] != 0
            cnt = 0
            if c >= 0 and o < c:                   # outside the changing directive
                sc[R_CH0, k] = INIT_IE if ie else NONEDGE
                cnt = 1
                if sc[R_ED, o]:
                    sc[R_CH1, k] = EDGE
                    cnt = 2
            elif o == c:                           # the changing directive
                if sc[R_ST, o] > 0:
                    sc[R_CH0, k] = STEADY
                    cnt = 1
                if sc[R_ED, o]:
                    if cnt == 0:
                        sc[R_CH0, k] = EDGE
                    else:
                        sc[R_CH1, k] = EDGE
                    cnt += 1
            else:                                  # inside: at Init
                sc[R_CH0, k] = INIT_IE if ie else INIT
                cnt = 1
            sc[R_NCH, k] = cnt
            sc[R_DIG, k] = 0
            if cnt == 0:
                empty_choice = True
        if empty_choice:
            continue
        while True:
            # This class: variant per owner, then per directive (its owner's).
            occ = mult
            for k in range(n_owners):
                o = P[owners + 1 + k]
                code = sc[R_CH0, k] if sc[R_DIG, k] == 0 else sc[R_CH1, k]
                sc[R_OWNCODE, o] = code
                occ *= _variant_occ(sc, o, code)
            for i in range(nent):
                sc[R_CODES, i] = sc[R_OWNCODE, sc[R_OWNER, i]]
            all_init = c == -1

            if mode == DISCOVER:
                # Register the sub-cluster tiles of the computing cases.
                if _crit(sc, P, out_state, psum_list, outf, nact1, maestro_fold) > 0:
                    _subtile(sc, P, below, False, nact1)
                    if not _register(inst_dims, inst_n, li + 1, sc[R_TILE], P[below]):
                        return False
                    if _is_edge(sc[R_CODES, sp]):
                        possible, hee = _has_ee(sc, sp)
                        if possible and hee:
                            _subtile(sc, P, below, True, nact1)
                            if not _register(inst_dims, inst_n, li + 1, sc[R_TILE], P[below]):
                                return False
                if not _next(sc, n_owners):
                    break
                continue

            egress, macs, crit, negative = _outputs(sc, P, out_state, psum_list, outf, spall, n, nedge,
                                                    nact1, maestro_fold)
            valid = crit > 0
            w = occ if valid else 0
            used = w > 0
            run_macs = macs                # what the sub-clusters execute (below: from their tiles)
            executed = macs

            if innermost:
                compute = -(-crit // lanes)
                active = float(nedge if _is_edge(sc[R_CODES, sp]) else n)
            else:
                compute = 0
                active = 0.0
                if used:
                    at_edge = _is_edge(sc[R_CODES, sp])
                    possible, hee = _has_ee(sc, sp) if at_edge else (False, False)
                    _subtile(sc, P, below, False, nact1)
                    kn = _find_tile(inst_dims[li + 1], inst_n[li + 1], sc[R_TILE], P[below])
                    rt_n = inst_q[li + 1, kn, Q_RT]
                    act_n = inst_act[li + 1, kn]
                    for q in range(4):
                        acc[A_REC, q] = inst_q[li + 1, kn, Q_ERR + q]
                        acc[A_EMPTY, q] = inst_q[li + 1, kn, Q_EMPTY + q]
                    flags |= inst_q[li + 1, kn, Q_FLAGS]
                    run_n = inst_q[li + 1, kn, Q_MACS]
                    if possible and hee:
                        rest = nedge - 1
                        _subtile(sc, P, below, True, nact1)
                        ke = _find_tile(inst_dims[li + 1], inst_n[li + 1], sc[R_TILE], P[below])
                        compute = max(inst_q[li + 1, ke, Q_RT], rt_n if rest > 0 else 0)
                        active = inst_act[li + 1, ke] + (act_n * rest if rest > 0 else 0.0)
                        executed = inst_q[li + 1, ke, Q_MACS] + (run_n * rest if rest > 0 else 0)
                        _take_smaller(acc[A_REC], inst_q[li + 1, ke, Q_ERR:Q_ERR + 4])
                        _take_smaller(acc[A_EMPTY], inst_q[li + 1, ke, Q_EMPTY:Q_EMPTY + 4])
                        flags |= inst_q[li + 1, ke, Q_FLAGS]
                    else:
                        compute = rt_n
                        active = act_n * (nedge if at_edge else n)
                        executed = run_n * (nedge if at_edge else n)
                    if active == 0:
                        active = float(nedge if at_edge else n)
                    _take_smaller(acc[A_SUB], acc[A_REC])
                    if compute == 0:
                        empty_kind = acc[A_EMPTY, 0]
                        if not exact and (empty_kind == dx.TILE_BELOW_FILTER_X
                                          or empty_kind == dx.TILE_BELOW_FILTER_Y):
                            # Tiles smaller than the filter compute nothing: an idle case
                            # (deviation idle-below-filter, engine._analyze_level).
                            flags |= DEV_IDLE_BELOW
                            _take_smaller(acc[A_IDLE], acc[A_EMPTY])
                            valid = False
                            w = 0
                            used = False
                        else:
                            idle = True
                            _take_smaller(acc[A_REASON], acc[A_EMPTY])
                    if used and count_executed:
                        # A map below repeats work its tile holds once (deviation executed-macs).
                        if executed != macs:
                            flags |= DEV_EXECUTED
                        run_macs = executed

            vi, ti, ri, ei, hi, ki, xi, fi, gi = _ingress(sc, P, in_block, T_INPUT, c, n, nedge, nact1,
                                                          exact, ee_idle, spall)
            vw, tw, rw, ew, hw_, kw, xw, fw, gw = _ingress(sc, P, w_block, T_WEIGHT, c, n, nedge, nact1,
                                                           exact, ee_idle, spall)
            term_any = term_any or ti or tw
            if used and (ri or rw):
                flags |= DEV_REREAD
            if used and (ei or ew):
                flags |= DEV_TEMPORAL_EDGE
            if used and (ki or kw):
                flags |= DEV_FOLD_KEEP
            if used and (xi or xw):
                flags |= DEV_RESTART
            if used and (fi or fw):
                flags |= DEV_FOLD_RESTART
            if used and (gi or gw):
                flags |= DEV_EDGE_READS_FOLD
            if occ > 0 and nact1 and not maestro_fold and _edge_fold_differs(sc, P, outf):
                flags |= DEV_EDGE_FOLD             # also where the class computes nothing by it
            if (used or (all_init and occ > 0)) and (hi or hw_):   # all-Init also sizes L2 tiles
                flags |= DEV_HALO_ONCE
            if all_init and not valid:
                init_empty = True
            if (used or is_top) and egress < 0:
                bad_out = True
            if is_top and negative:
                bad_out = True
            if used and (vi < 0 or vw < 0):
                neg_in = True

            in_d = _noc_delay(vi + vw, bw, lat)
            eg_d = _noc_delay(egress, bw, lat)
            if all_init:
                delay = compute + in_d
            else:
                delay = max(max(eg_d, compute), in_d)
            if is_top:
                if all_init:
                    l2_in = 2 * occ * vi
                    l2_w = 2 * occ * vw
                    l2_out = 2 * occ * egress
                delay = max(max((l2_in + l2_w) // off_bw // 2, delay), l2_out // off_bw // 2)
                in_l2r += w * vi
                w_l2r += w * vw
                out_l2w += occ * egress
                out_l1 += occ * run_macs
                comp_bw = max(compute, 1)
                traffic = max(vi + vw, egress)
                need = max(l2_out, l2_in + l2_w)
                peak = max(peak, traffic // comp_bw if used else 0)
                offchip = max(offchip, need // (2 * comp_bw) if used else 0)
                if used:
                    avg_bw_sum += _avg_bw_share(sc, nent, occ, traffic, comp_bw)
                for q, dval in enumerate((in_d, eg_d, compute)):
                    if used:
                        acc[A_DMIN, q] = min(acc[A_DMIN, q], dval)
                    acc[A_DMAX, q] = max(acc[A_DMAX, q], dval if used else 0)
                    acc[A_DSUM, q] += w * dval
            runtime += w * delay
            macs_sum += w * run_macs
            total += w
            act_sum += w * active
            any_used = any_used or used
            if not _next(sc, n_owners):
                break

    if mode == DISCOVER:
        return True

    # Errors of this level, the first that applies wins (engine._analyze_level).
    err = inst_q[li, j, Q_ERR:Q_ERR + 4]
    for q in range(4):
        err[q] = acc[A_SUB, q]
    if err[0] == 0 and (bad_out or neg_in):
        _set(err, dx.NEGATIVE_VOLUMES, li, 0, 0)
    empty = inst_q[li, j, Q_EMPTY:Q_EMPTY + 4]
    _set(empty, 0, 0, 0, 0)
    if not any_used:
        if acc[A_IDLE, 0] != 0:            # only idle cases: why their sub-clusters compute nothing
            for q in range(4):
                empty[q] = acc[A_IDLE, q]
        else:
            _empty_record(sc, empty, li, conv, vx, vxp, vs, vy, vyp, vr)
    if is_top and err[0] == 0:
        for q in range(4):
            err[q] = empty[q]
    if idle:
        if err[0] == 0:
            _set(err, dx.SUBCLUSTERS_IDLE, li, 0, 0)
        if acc[A_REASON, 0] != 0:
            for q in range(4):
                err[q] = acc[A_REASON, q]
    if err[0] == 0 and term_any:
        _set(err, dx.NO_NEW_ELEMENTS, li, 0, 0)
    if init_empty:
        flags |= DEV_INIT_EMPTY
    safe_total = max(total, 1)
    inst_q[li, j, Q_RT] = runtime
    inst_q[li, j, Q_MACS] = macs_sum
    inst_q[li, j, Q_FLAGS] = flags
    inst_act[li, j] = act_sum / safe_total
    if is_top:
        top[I_RUNTIME] = runtime
        top[I_MACS] = macs_sum
        top[I_L2_REQ] = l2_in + l2_w + l2_out
        top[I_IN_L2R] = in_l2r
        top[I_W_L2R] = w_l2r
        top[I_OUT_L2W] = out_l2w
        top[I_OUT_L1] = out_l1
        top[I_PEAK_BW] = peak
        top[I_OFFCHIP_BW] = offchip
        for q in range(3):
            top[I_IN_MIN + 3 * q] = acc[A_DMIN, q]
            top[I_IN_MAX + 3 * q] = acc[A_DMAX, q]
            top[I_IN_AVG + 3 * q] = acc[A_DSUM, q] // safe_total
        top[I_ERR_KIND] = err[0]
        top[I_ERR_A] = err[1]
        top[I_ERR_B] = err[2]
        top[I_ERR_C] = err[3]
        top[I_DEV] = flags
        top[N_INTS] = avg_bw_sum
        top[N_INTS + 1] = safe_total
    return True


@njit(**NO_NRT)
def _empty_record(sc, rec, li, conv, vx, vxp, vs, vy, vyp, vr):
    """Why no case of a level computes anything (engine._empty_codes)."""
    if conv:
        for var, out, filt, kind in ((vx, vxp, vs, dx.TILE_BELOW_FILTER_X),
                                     (vy, vyp, vr, dx.TILE_BELOW_FILTER_Y)):
            if out >= 0 and sc[R_HAS, out]:
                if sc[R_M, out] < 1:
                    _set(rec, kind, sc[R_M, var], sc[R_M, filt], li)
                    return
                if sc[R_EM, out] < 1:
                    _set(rec, kind, sc[R_EM, var], sc[R_M, filt], li)
                    return
    _set(rec, dx.NOTHING_COMPUTES, li, 0, 0)


@njit(inline="always", **NO_NRT)
def _next(sc, n_owners):
    """Advance the mixed-radix counter over the owners' variants (last owner fastest)."""
    for k in range(n_owners - 1, -1, -1):
        sc[R_DIG, k] += 1
        if sc[R_DIG, k] < sc[R_NCH, k]:
            return True
        sc[R_DIG, k] = 0
    return False


@njit(inline="always", **NO_NRT)
def _register(inst_dims, inst_n, level, tile, width):
    """Add a sub-cluster tile to a level's table unless it is there; False if the table is full."""
    if _find_tile(inst_dims[level], inst_n[level], tile, width) >= 0:
        return True
    k = inst_n[level]
    if k >= inst_dims.shape[1]:
        return False
    for q in range(width):
        inst_dims[level, k, q] = tile[q]
    inst_n[level] = k + 1
    return True


# --------------------------------------------------------------------------------- a design
@njit(**NO_NRT)
def _design(P, base, holes, hw, tech, regs, sc, acc, inst_dims, inst_n, inst_q, inst_act, top, ints,
            floats):
    """Every figure of one design into ``ints``/``floats``; False if the tile table overflowed."""
    for k in range(top.shape[0]):
        top[k] = 0
    bad_size, bad_rs = _run_ops(P, base, holes, regs)
    static = P[base + H_STATIC_ERR]
    bad_size = bad_size or (static & STATIC_BAD_SIZE) != 0
    bad_rs = bad_rs or (static & STATIC_BAD_RS) != 0
    clusters = base + P[base + H_CLUSTERS]
    product = 1
    for k in range(P[clusters]):
        product *= regs[P[clusters + 1 + k]]
    num_pes = hw[HW_NUM_PES]
    top_sub = num_pes // product
    bad_cluster = top_sub < 1
    top_sub = max(top_sub, 1)
    regs[REG_TOP_SUB] = top_sub
    used_pes = product * top_sub

    L = P[base + H_LEVELS]
    for li in range(L):
        inst_n[li] = 0
    inst_n[0] = 1                          # the top level: one instance, its static dims
    for li in range(L - 1):
        for j in range(inst_n[li]):
            if not _analyze(P, base, li, DISCOVER, j, regs, hw, sc, acc, inst_dims, inst_n, inst_q,
                            inst_act, top):
                return False
    for li in range(L - 1, -1, -1):
        for j in range(inst_n[li]):
            _analyze(P, base, li, EVALUATE, j, regs, hw, sc, acc, inst_dims, inst_n, inst_q, inst_act, top)
    _assemble(P, base, hw, tech, regs, top, bad_size, bad_rs, bad_cluster, product, used_pes, ints,
              floats)
    return True


@njit(**NO_NRT)
def _assemble(P, base, hw, tech, regs, top, bad_size, bad_rs, bad_cluster, product, used_pes, ints,
              floats):
    """The reported figures (cost._assemble) from the top level's results."""
    exact = P[base + H_EXACT] != 0
    lanes = hw[HW_LANES]
    macs = top[I_MACS]
    in_l2r = top[I_IN_L2R]
    w_l2r = top[I_W_L2R]
    out_l1 = top[I_OUT_L1]
    size_in, size_w, size_out = P[base + H_SIZE_IN], P[base + H_SIZE_W], P[base + H_SIZE_OUT]
    l2_total = in_l2r + size_in + w_l2r + size_w + size_out + top[I_OUT_L2W]
    l1_total = macs + in_l2r + macs + w_l2r + out_l1 + out_l1
    energy = tech[T_L2E] * l2_total + tech[T_L1E] * l1_total + macs
    l1_off = base + P[base + H_L1]
    l1_req = 0
    l1_maestro = 0
    k = l1_off
    for _ in range(3):
        count = P[k]
        vol = 1
        vol_maestro = 1
        for q in range(count):
            size = regs[P[k + 1 + 2 * q]]
            dim_reg = P[k + 2 + 2 * q]
            vol_maestro *= size
            vol *= min(size, regs[dim_reg]) if dim_reg >= 0 else size
        l1_req += 2 * vol
        l1_maestro += 2 * vol_maestro
        k += 1 + 2 * count
    if exact:
        l1_req = l1_maestro
    l2_req = top[I_L2_REQ]
    runtime = top[I_RUNTIME]
    true_macs = P[base + H_TRUE_MACS]
    peak = -(-true_macs // (used_pes * lanes))

    err_kind, a, b, c = top[I_ERR_KIND], top[I_ERR_A], top[I_ERR_B], top[I_ERR_C]
    if err_kind == 0:
        if bad_size:
            err_kind = dx.BAD_SIZE
        elif bad_rs:
            err_kind = dx.BAD_RS
        elif bad_cluster:
            err_kind, a, b = dx.CLUSTER_TOO_BIG, product, hw[HW_NUM_PES]
        elif runtime < 1:
            err_kind = dx.RUNTIME_ZERO
        elif macs < 1:
            err_kind = dx.MACS_ZERO
    ok = err_kind == 0
    dev = top[I_DEV] | P[base + H_DEV] | (DEV_TAIL if regs[REG_TAIL] else 0)
    if not exact and l1_req != l1_maestro:
        dev |= DEV_L1_HELD
    if not exact:
        if ok and runtime < peak:
            dev |= DEV_PEAK
        runtime = max(runtime, peak if ok else 0)

    peak_bw = top[I_PEAK_BW]
    offchip_bw = top[I_OFFCHIP_BW]
    violations = 0
    if hw[HW_L1_CAP] >= 0 and l1_req > hw[HW_L1_CAP]:
        violations |= VIOLATION_L1
    if hw[HW_L2_CAP] >= 0 and l2_req > hw[HW_L2_CAP]:
        violations |= VIOLATION_L2
    if hw[HW_NOC_CAP] >= 0 and peak_bw > hw[HW_NOC_CAP]:
        violations |= VIOLATION_NOC
    if hw[HW_OFFCHIP_CAP] >= 0 and offchip_bw > hw[HW_OFFCHIP_CAP]:
        violations |= VIOLATION_OFFCHIP
    if not exact and ok and macs < true_macs:
        violations |= VIOLATION_PART          # part of the layer is never computed (cost._assemble)
    if not exact and ok and (dev & DEV_LOCKSTEP) != 0:
        violations |= VIOLATION_LOCKSTEP      # window pairs never computed (lockstep-skips)

    noc_bw = hw[HW_NOC_BW]
    noc_for_area = max(peak_bw, 1) if noc_bw >= UNLIMITED else noc_bw
    p = float(hw[HW_NUM_PES])
    arb_factor = tech[T_ARB_A2] * p * p + tech[T_ARB_A1] * p + tech[T_ARB_A0]
    bus_factor = tech[T_BUS_C1] * p + tech[T_BUS_C0]
    area = (p * (tech[T_MAC_AREA] * lanes + tech[T_L1_AREA] * max(1, l1_req))
            + tech[T_L2_AREA] * max(1, l2_req) + tech[T_BUS_AREA] * bus_factor * noc_for_area
            + max(tech[T_ARB_AREA], tech[T_ARB_AREA] * arb_factor))
    power = (p * tech[T_MAC_POWER] * lanes + p * tech[T_L1_POWER] * max(1, l1_req)
             + (tech[T_L2_POWER] * max(1, l2_req) + 0.0 * p)
             + (tech[T_BUS_POWER] * bus_factor / 1000.0 * noc_for_area
                + max(tech[T_ARB_POWER], tech[T_ARB_POWER] * arb_factor / 1000.0)))
    safe_rt = max(runtime, 1)

    ints[I_RUNTIME] = runtime
    ints[I_MACS] = macs
    ints[I_L1_REQ] = l1_req
    ints[I_L2_REQ] = l2_req
    ints[I_IN_L2R] = in_l2r
    ints[I_W_L2R] = w_l2r
    ints[I_OUT_L2W] = top[I_OUT_L2W]
    ints[I_OUT_L1] = out_l1
    ints[I_PEAK_BW] = peak_bw
    ints[I_OFFCHIP_BW] = offchip_bw
    ints[I_USED_PES] = used_pes
    ints[I_PE_PEAK] = peak
    for q in range(I_IN_MIN, I_CO_AVG + 1):
        ints[q] = top[q]
    floats[F_THROUGHPUT] = macs / safe_rt
    floats[F_ENERGY] = energy
    floats[F_ENERGY_NJ] = energy * tech[T_MAC_NJ]
    floats[F_AVG_BW] = top[N_INTS] / top[N_INTS + 1]
    floats[F_AVG_ACTIVE] = 0.0
    floats[F_AREA] = area
    floats[F_POWER] = power
    floats[F_UTILIZATION] = true_macs / (safe_rt * used_pes * lanes)
    floats[F_INTENSITY] = macs / max(in_l2r + w_l2r, 1)
    if not ok:
        for q in range(I_ERR_KIND):
            ints[q] = 0
        for q in range(N_FLOATS):
            floats[q] = 0.0
    ints[I_ERR_KIND] = err_kind
    ints[I_ERR_A] = a if not ok else 0
    ints[I_ERR_B] = b if not ok else 0
    ints[I_ERR_C] = c if not ok else 0
    ints[I_DEV] = dev
    ints[I_VIOLATIONS] = violations
    ints[I_OK] = ok


# --------------------------------------------------------------------------------- batches
@njit(cache=True, nogil=True)
def _designs(P, starts, structure, order, holes, hw, tech, lo, hi, max_regs, max_w, ints, floats):
    """Designs ``order[lo:hi]`` of a batch (one worker's share), with one scratch for all of them."""
    cap = 16
    regs = np.zeros(max_regs, dtype=np.int64)
    sc = np.zeros((N_ROWS, max_w), dtype=np.int64)
    acc = np.zeros((8, 4), dtype=np.int64)
    inst_dims = np.zeros((4, cap, max_w), dtype=np.int64)
    inst_n = np.zeros(4, dtype=np.int64)
    inst_q = np.zeros((4, cap, Q_WIDTH), dtype=np.int64)
    inst_act = np.zeros((4, cap))
    top = np.zeros(N_INTS + 2, dtype=np.int64)
    for t in range(lo, hi):
        d = order[t]
        base = starts[structure[d]]
        while not _design(P, base, holes[d], hw[d], tech, regs, sc, acc, inst_dims, inst_n, inst_q,
                          inst_act, top, ints[d], floats[d]):
            cap *= 2                       # more distinct sub-cluster tiles than room: grow, redo
            inst_dims = np.zeros((4, cap, max_w), dtype=np.int64)
            inst_q = np.zeros((4, cap, Q_WIDTH), dtype=np.int64)
            inst_act = np.zeros((4, cap))
        floats[d, F_AVG_ACTIVE] = inst_act[0, 0] if ints[d, I_OK] else 0.0


_pool: ThreadPoolExecutor | None = None


def run(code: np.ndarray, starts: np.ndarray, structure: np.ndarray, holes: np.ndarray, hw: np.ndarray,
        tech: np.ndarray, *, max_regs: int, max_width: int,
        threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate a batch: ``structure[d]`` indexes ``starts`` (programs concatenated in ``code``),
    ``holes`` (B, H) and ``hw`` (B, N_HW) give each design's hole values and hardware. With
    ``threads`` > 1 contiguous shares run on worker threads (the kernel releases the GIL); every
    design is computed alone, so the result does not depend on the split."""
    global _pool
    B = len(structure)
    ints = np.empty((B, N_INTS), dtype=np.int64)
    floats = np.empty((B, N_FLOATS), dtype=np.float64)
    # Designs of one structure run one after another, so its program stays in cache (a mixed batch's
    # programs together far exceed it: 500 structures take 2.4 MB); each result goes to its own row.
    order = np.arange(B) if len(starts) == 1 else np.argsort(structure, kind="stable")
    if threads <= 1 or 2 * threads > B:
        _designs(code, starts, structure, order, holes, hw, tech, 0, B, max_regs, max_width, ints, floats)
        return ints, floats
    if _pool is None or _pool._max_workers < threads:
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dse-kernel")
    bounds = np.linspace(0, B, threads + 1).astype(np.int64)
    futures = [_pool.submit(_designs, code, starts, structure, order, holes, hw, tech, int(lo), int(hi),
                            max_regs, max_width, ints, floats) for lo, hi in itertools.pairwise(bounds)]
    for f in futures:
        f.result()
    return ints, floats
