"""What an evaluation reports besides numbers: per-design errors and deviation flags.

Both engines (the numpy reference in ``engine.py`` and the compiled kernel in ``kernel.py``) report a
design's error as a *record* ``(kind, a, b, c)``: a kind below and up to three integers its message
quotes. Records are formatted into messages only at the end, once per distinct record. When several
errors of sub-clusters meet, the smallest record wins (a total order on content, so the message a
design gets never depends on the other designs of its batch).
"""

from __future__ import annotations

# Error kinds, in the order they win when several apply to one design.
NEGATIVE_VOLUMES = 1       # (level)
TILE_BELOW_FILTER_X = 2    # (tile, filter width, level)
TILE_BELOW_FILTER_Y = 3    # (tile, filter height, level)
NOTHING_COMPUTES = 4       # (level)
SUBCLUSTERS_IDLE = 5       # (level)
NO_NEW_ELEMENTS = 6        # (level)
BAD_SIZE = 7
BAD_RS = 8
CLUSTER_TOO_BIG = 9        # (cluster product, PEs)
RUNTIME_ZERO = 10
MACS_ZERO = 11


def message(kind: int, a: int = 0, b: int = 0, c: int = 0) -> str:
    """The message of an error record (kind 0 = no error)."""
    if kind == 0:
        return ""
    if kind == NEGATIVE_VOLUMES:
        return (f"the mapping yields negative data volumes or MAC counts at cluster level {a} "
                "(a tile is smaller than the filter it slides over)")
    if kind in (TILE_BELOW_FILTER_X, TILE_BELOW_FILTER_Y):
        var, what, filt = ("X", "width", "S") if kind == TILE_BELOW_FILTER_X else ("Y", "height", "R")
        return f"{var} tile {a} is smaller than the filter {what} {filt}={b} at cluster level {c}"
    if kind == NOTHING_COMPUTES:
        return f"no iteration of cluster level {a} computes anything"
    if kind == SUBCLUSTERS_IDLE:
        return f"the sub-clusters of cluster level {a} compute nothing"
    if kind == NO_NEW_ELEMENTS:
        return ("a changing temporal map has no new elements (its offset reaches past the dimension) "
                f"at cluster level {a}")
    if kind == BAD_SIZE:
        return "a directive size or offset is not a positive integer"
    if kind == BAD_RS:
        return ("a TemporalMap on R or S must span the whole filter (size = offset = R or S) under "
                "maestro_exact: MAESTRO rejects it")
    if kind == CLUSTER_TOO_BIG:
        return f"cluster sizes multiply to {a} but the accelerator has {b} PEs"
    if kind == RUNTIME_ZERO:
        return "the mapping computes nothing (runtime 0)"
    if kind == MACS_ZERO:
        return ("the mapping computes nothing (0 MACs): every tile is smaller than the filter it "
                "slides over")
    raise ValueError(f"unknown error kind {kind}")


# Deviation rules (docs/maestro-deviations.md) an evaluation can flag, as bits, in the order a
# design's ``deviations`` string lists them.
DEVIATIONS = (
    "oversized-map-edge",        # a map larger than its dimension gets MAESTRO's edge size elsewhere
    "subtile-edges",             # Q11: sub-cluster edge tiles analysed with their own sizes
    "init-case-empty",           # buffer sizes from an all-Init case that computes nothing
    "whole-last-tile",           # the last busy sub-cluster of an under-filled fold counted whole
    "stride-output-reads",       # Q6: output L2 reads use the strided output size
    "uncoupled-dim-inherited",   # a map on a dimension no input or weight has is not carried down
    "ngconv-output-reads",       # Q7: NGCONV output L2 reads without C
    "ngconv-output",             # Q7: NGCONV analysed with its true output (option)
    "pe-peak-bound",             # runtime raised to the PE-peak bound
    "uncoupled-reread",          # a tile re-read after an uncoupled advance restarts a coupled map
    "idle-below-filter",         # a case whose sub-cluster tiles are all below the filter is idle
    "temporal-edge-reads",       # a temporal map's edge tile: its new elements, and steps inside it
    "shared-halo-once",          # elements neighbouring sub-clusters share are delivered once
    "edge-fold-output",          # a one-sub-cluster spatial edge fold computes its output rows
    "edge-fold-partial",         # a spatial edge fold's partial last tile is counted beside the full
    "strided-output-rows",       # a strided tile's output rows are every stride-th window position
    "l1-held-tile",              # an innermost map larger than its dimension holds the dimension
    "idle-edge-subcluster",      # a spatial edge fold's partial tile below the filter receives nothing
    "fold-overlap-reuse",        # a fold advance shorter than the tile keeps the first tile's overlap
    "executed-macs",             # num_macs from the MACs lower levels execute, repeats included
    "restart-overlap",           # a restarted tile's part still held from the previous tile is kept
    "oversized-map-held",        # a spatial map larger than its dimension holds the dimension (MACs)
    "edge-fold-reads",           # a spatial edge fold's one busy, partial tile is read as that tile
    "partial-filter-rows",       # a tile's output rows cut to the layer's under a partial filter map
    "partial-filter-shift",      # such a filter tile beside a Y/X tile: its valid rows shift (approximate)
    "map-within-share",          # a later TemporalMap covering an earlier map's tile in one step is dropped
    "fold-restart-held",         # a restarted spatial map's first tile still held is not delivered again
    "strided-tail-held",         # a strided map covering its dimension keeps the rows past the last window
    "lockstep-skips",            # two SpatialMaps in lockstep on independent dimensions skip window pairs
)
DEV_BIT = {name: 1 << i for i, name in enumerate(DEVIATIONS)}

# The violation of a mapping that executes fewer MACs than its layer has (both engines).
PART_OF_LAYER = "num_macs < true_macs"
# The violation of a level whose two SpatialMaps in lockstep pair only equal window indices of two
# independent dimensions (deviation lockstep-skips), whatever MAC count MAESTRO's product gives.
LOCKSTEP_SKIPS = "lockstep SpatialMaps skip window pairs"


def deviation_label(bits: int) -> str:
    return ",".join(name for i, name in enumerate(DEVIATIONS) if bits >> i & 1)
