"""Closed forms of the cost model on free-space configurations, for the CP-SAT model.

For a :class:`~spaces.mapping.FreeSpace` with dividing tiles, the buffer requirements the cost model
computes have closed forms in the tile sizes (derived from the all-Init case of the top level and the
directive sizes of the innermost level, semantics doc 4.7), and the runtime has a lower bound (work
over the PEs a configuration can keep busy). Each formula is written once, over an *algebra*:
:class:`Numbers` evaluates it (tests compare it with the cost model), ``search.cpsat`` builds CP-SAT
constraints from the same code.

Quantities that depend on one dimension's tile chain are table look-ups indexed by the chain; the
spatial dimension of each level is fixed per model (the CP-SAT searcher builds one model per choice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from costmodel import Layer
from costmodel.deviations import output_row_strides
from spaces.mapping import COL, ROW, FreeSpace

# Analysis-side tensor dimension -> loop dimension whose tile sizes it (Y -> Y', X -> X').
_LOOP_OF = {"Y": ROW, "X": COL}


class Numbers:
    """The algebra of plain integers (with tables indexed by plain ints)."""

    def lookup(self, index, table):
        return int(table[index])

    def mul(self, a, b):
        return a * b

    def add(self, *terms):
        return sum(terms)

    def minimum(self, a, b):
        return min(a, b)

    def choose(self, condition, if_true, if_false):
        return if_true if condition else if_false

    def at_least(self, a, b):
        return a >= b

    def ceil_div_lb(self, numerator: int, denominator):
        return -(-numerator // denominator)


@dataclass(frozen=True)
class Tables:
    """Per-chain quantities of a free space (rows indexed like ``space.chains[dim]``)."""

    tile: dict[str, np.ndarray]          # (n_chains, levels)
    mapped: dict[str, np.ndarray]        # directive size per level (input rows for Y'/X')
    offset: dict[str, np.ndarray]        # directive offset per level
    splits: dict[str, np.ndarray]        # per level: tiles of the level above per tile (level 0: of D)
    cluster_n: np.ndarray                # (n_cluster_chains, levels): sub-clusters per level


def tables(space: FreeSpace) -> Tables:
    layer = space.layer
    tile, mapped, offset, splits = {}, {}, {}, {}
    for d in space.dim_names:
        t = space.chains[d]
        tile[d] = t
        outer = np.hstack([np.full((len(t), 1), space.dims[d]), t[:, :-1]])
        splits[d] = -(-outer // t)
        if d in (ROW, COL):
            plain = "Y" if d == ROW else "X"
            s = layer.stride(plain)
            r = layer.dim_map.get("R" if d == ROW else "S", 1)
            # The cost model's stride rewrite of TemporalMap(s(t-1)+R, s*t) (levels._apply_stride)
            # leaves it unchanged at every level, also for a filter shorter than the stride (rule
            # strided-output-rows keeps the rows between in the window; MAESTRO keeps t*R rows).
            mapped[d] = s * (t - 1) + r
            offset[d] = s * t
        else:
            mapped[d] = offset[d] = t
    cc = space.cluster_chains
    prod = np.prod(cc, axis=1) if cc.shape[1] else np.ones(len(cc), dtype=np.int64)
    top = space.num_pes // prod
    cluster_n = np.hstack([top[:, None], cc])
    return Tables(tile, mapped, offset, splits, cluster_n)


@dataclass(frozen=True)
class Symbols:
    """A configuration in some algebra: chain index per dimension, cluster-chain index, spatial dims."""

    chain: dict[str, object]
    cluster: object
    spatial: tuple[str, ...]


def _factor(alg, layer: Layer, tab: Tables, sym: Symbols, var: str, level: int, kind: str = "mapped"):
    """Size of analysis dimension ``var`` at ``level`` (R and S are always whole)."""
    if var in ("R", "S"):
        return layer.dim_map.get(var, 1)
    loop = _LOOP_OF.get(var, var)
    return alg.lookup(sym.chain[loop], getattr(tab, kind)[loop][:, level])


def _product(alg, factors):
    out = 1
    for f in factors:
        out = f if isinstance(out, int) and out == 1 else alg.mul(out, f)
    return out


def l1_requirement(alg, space: FreeSpace, tab: Tables, sym: Symbols):
    """Cost model's L1 requirement: double-buffered tiles of the innermost level's directives (the
    output counted over its input window, as MAESTRO does)."""
    t = space.layer.tensor_dims(ngconv_output_with_c=False)      # as the default model
    inner = space.levels - 1
    vols = [_product(alg, [_factor(alg, space.layer, tab, sym, v, inner) for v in dims])
            for dims in (t.input, t.weight, t.output)]
    return alg.mul(2, alg.add(*vols))


def active(alg, space: FreeSpace, tab: Tables, sym: Symbols, level: int):
    """Sub-clusters of ``level`` that have work: min(sub-clusters, tiles of the spatial dimension)."""
    n = alg.lookup(sym.cluster, tab.cluster_n[:, level])
    d = sym.spatial[level]
    tiles = alg.lookup(sym.chain[d], tab.splits[d][:, level])
    return n, tiles, alg.minimum(n, tiles)


def l2_requirement(alg, space: FreeSpace, tab: Tables, sym: Symbols):
    """Cost model's L2 requirement: double-buffered all-Init traffic of the top level."""
    layer, t = space.layer, space.layer.tensor_dims(ngconv_output_with_c=False)
    sp = sym.spatial[0]
    _, _, act = active(alg, space, tab, sym, 0)
    total = []
    for dims in (t.input, t.weight):
        spread = next((v for v in dims if _LOOP_OF.get(v, v) == sp), None)
        vol = _product(alg, [_factor(alg, layer, tab, sym, v, 0) for v in dims if v != spread])
        if spread is None:
            total.append(vol)
            continue
        # The first busy sub-cluster's tile and, for each other one, the share its neighbour does
        # not also hold: a sliding window's shared rows are multicast once (deviation
        # shared-halo-once); without overlap the share is the whole tile.
        m = _factor(alg, layer, tab, sym, spread, 0)
        u = alg.minimum(_factor(alg, layer, tab, sym, spread, 0, "offset"), m)
        total.append(alg.mul(vol, alg.add(m, alg.mul(alg.add(act, -1), u))))
    out_dims = t.output
    coupled_var = next((v for v in out_dims if _LOOP_OF.get(v, v) == sp), None)
    others = [v for v in out_dims if v != coupled_var]
    vol = _product(alg, [_out_factor(alg, layer, tab, sym, v, "M") for v in others])
    if coupled_var is None:
        total.append(vol)
    else:
        m = _out_factor(alg, layer, tab, sym, coupled_var, "M")
        u = _out_factor(alg, layer, tab, sym, coupled_var, "U")
        # The first busy sub-cluster's tile and a unique slice for each other busy one. Dividing tiles
        # are whole, so the last busy sub-cluster of an under-filled fold counts its whole slice too
        # (deviation whole-last-tile; MAESTRO would count its edge-unique share, 0 here).
        total.append(alg.mul(vol, alg.add(m, alg.mul(alg.add(act, -1), u))))
    return alg.mul(2, alg.add(*total))


def _out_factor(alg, layer: Layer, tab: Tables, sym: Symbols, var: str, which: str):
    """Output-tensor size of ``var`` at the top: mapped (M) or unique (U) share."""
    if var in ("R", "S"):
        return layer.dim_map.get(var, 1)
    loop = _LOOP_OF.get(var, var)
    if loop not in (ROW, COL):
        return alg.lookup(sym.chain[loop], tab.tile[loop][:, 0])
    if output_row_strides(layer, maestro_exact=False)["Y" if loop == ROW else "X"] > 1:
        # Strided output rows (deviation strided-output-rows): a tile of t output rows maps
        # s(t-1)+R input rows with offset s*t, so both shares are the t rows themselves.
        return alg.lookup(sym.chain[loop], tab.tile[loop][:, 0])
    r = layer.dim_map.get("R" if loop == ROW else "S", 1)
    # Output rows of an input map of m rows: m - R + 1; unique share: min(offset, m).
    m = alg.lookup(sym.chain[loop], tab.mapped[loop][:, 0])
    f = alg.lookup(sym.chain[loop], tab.offset[loop][:, 0])
    return alg.minimum(f, m) if which == "U" else alg.add(m, 1 - r)


def latency_lower_bound(alg, space: FreeSpace, tab: Tables, sym: Symbols, lanes: int):
    """Runtime >= true MACs / (PEs that can be busy at once x SIMD lanes), never below the PE peak."""
    busy = 1
    for level in range(space.levels):
        _, _, act = active(alg, space, tab, sym, level)
        busy = act if isinstance(busy, int) and busy == 1 else alg.mul(busy, act)
    return alg.ceil_div_lb(space.layer.true_macs, alg.mul(busy, lanes))


def pe_peak(space: FreeSpace, lanes: int) -> int:
    return math.ceil(space.layer.true_macs / (space.num_pes * lanes))
