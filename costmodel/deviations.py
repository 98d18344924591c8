"""Where this cost model deliberately differs from MAESTRO, and which figures each difference touches.

Every evaluation lists, in ``LayerCost.deviations``, the rules below that apply to it; a rule is a
predicate on the layer, mapping and accelerator, computed by the model itself, never by comparing
with MAESTRO. ``docs/maestro-deviations.md`` explains each one; the fidelity tests check that every
figure that differs from MAESTRO's is covered by a rule that lists it in ``affects``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Figure names as in LayerCost.
_ALL_COUNTS = frozenset({
    "runtime_cycles", "num_macs", "l1_size_req", "l2_size_req", "input_l2_reads", "weight_l2_reads",
    "output_l2_writes", "energy_mac_units", "peak_noc_bw_req", "avg_noc_bw_req", "avg_utilized_pes",
})
# What a change in deliveries touches.
_TRAFFIC = frozenset({"runtime_cycles", "input_l2_reads", "weight_l2_reads", "energy_mac_units",
                      "peak_noc_bw_req", "avg_noc_bw_req"})


@dataclass(frozen=True, slots=True)
class Deviation:
    name: str
    quirk: str                   # the semantics doc's label
    rule: str                    # when it applies
    affects: frozenset[str]      # figures that may differ from MAESTRO's because of it


DEVIATIONS: dict[str, Deviation] = {d.name: d for d in (
    Deviation("subtile-edges", "Q11",
              "a level below the top is analysed for an edge tile of the level above whose unique or "
              "edge sizes differ from those of the steady tile",
              frozenset({"runtime_cycles", "l1_size_req", "l2_size_req", "peak_noc_bw_req",
                         "avg_noc_bw_req", "avg_utilized_pes"})),
    Deviation("oversized-map-edge", "Q11",
              "a map is larger than its dimension at some level while its offset is not",
              _ALL_COUNTS),
    Deviation("init-case-empty", "Q12",
              "the all-Init case of some level, or some sub-cluster tile, computes nothing",
              frozenset({"runtime_cycles", "l1_size_req", "l2_size_req"})),
    Deviation("whole-last-tile", "4.5",
              "an under-filled spatial fold (fewer tiles than sub-clusters) whose last busy "
              "sub-cluster holds a whole tile of the spatially mapped dimension",
              _ALL_COUNTS),
    Deviation("stride-output-reads", "Q6",
              "a CONV-family layer with a stride other than 1",
              frozenset({"energy_mac_units"})),
    Deviation("ngconv-output-reads", "Q7",
              "an NGCONV layer (output L2 reads count the output without C)",
              frozenset({"energy_mac_units"})),
    Deviation("ngconv-output", "Q7",
              "an NGCONV layer analysed with its true output tensor (G, K, Y', X'), the default "
              "outside maestro_exact, where MAESTRO also couples the output to C",
              _ALL_COUNTS),
    Deviation("uncoupled-dim-inherited", "Q10",
              "a dimension no input or weight is coupled to (K of a DSCONV layer) is mapped above a "
              "Cluster (MAESTRO carries it down and stops with 'Dimension K not found', we do not) or "
              "below one (MAESTRO stops the same way, we walk a size of 1)",
              frozenset({"status"})),
    Deviation("pe-peak-bound", "Q11",
              "MAESTRO's runtime would be below ceil(true MACs / (used PEs x SIMD lanes))",
              frozenset({"runtime_cycles"})),
    Deviation("uncoupled-reread", "4.5",
              "a map a tensor does not depend on advances while a map inside it that the tensor does "
              "depend on (not fully unrolled) restarts: MAESTRO counts no delivery, we re-read the tile",
              _TRAFFIC),
    Deviation("idle-below-filter", "Q11",
              "in a computing case of a level, every sub-cluster tile is smaller than the filter (the "
              "edge tile a strided walk leaves below a Cluster): the case computes nothing and is idle, "
              "where MAESTRO analyses the sub-clusters with the steady tile's sizes",
              _ALL_COUNTS),
    Deviation("temporal-edge-reads", "4.5",
              "a temporal map a tensor depends on steps onto its edge tile: we deliver the elements of "
              "the edge window not already held (all of it after a restart inside), and the steps of "
              "loops inside it deliver along that edge window, where MAESTRO counts a steady step's "
              "offset (or whole tile) and steady-tile steps inside it",
              _TRAFFIC),
    Deviation("shared-halo-once", "4.5",
              "neighbouring sub-clusters of a spatial map need overlapping tiles of an input or weight "
              "(a sliding or overlapping spatial map) at the first step or a step of a loop inside the "
              "spatial one: we deliver the overlap once (multicast), MAESTRO once per sub-cluster",
              _TRAFFIC | {"l2_size_req"}),
    Deviation("edge-fold-output", "4.5",
              "a CONV-family layer's sliding spatial map (Y' or X') leaves an edge fold with one busy "
              "sub-cluster: it computes its output rows, where MAESTRO takes the edge size of the input "
              "rows and counts R (or S) times too many outputs and MACs",
              _ALL_COUNTS),
    Deviation("edge-fold-partial", "4.5",
              "a spatial map's edge fold (after at least one full fold) ends in a partial tile: we "
              "count it on a sub-cluster of its own beside the fold's whole tiles, where MAESTRO counts "
              "it instead of the last whole tile, losing that tile's work and data",
              _ALL_COUNTS),
    Deviation("l1-held-tile", "4.7",
              "an innermost-level map is larger than the dimension it maps there (the layer's or the "
              "tile of the level above): the PE holds the dimension, where MAESTRO sizes L1 by the map",
              frozenset({"l1_size_req", "status"})),
    Deviation("idle-edge-subcluster", "Q11",
              "the partial last sub-cluster of a spatial map on Y or X holds fewer rows (columns) than "
              "the filter: it computes nothing and receives nothing, where MAESTRO delivers its tile",
              _TRAFFIC | {"l2_size_req"}),
    Deviation("fold-overlap-reuse", "4.5",
              "a spatial map advances a fold by less than its tile (sub-clusters x offset < size): the "
              "first sub-cluster keeps the overlap with its previous tile and receives what its new "
              "tile (at the edge fold the edge tile) reaches beyond it, where MAESTRO delivers it the "
              "whole tile again",
              _TRAFFIC),
    Deviation("strided-output-rows", "Q5",
              "a CONV-family layer with a stride s at most its filter size on Y or X, some tile of "
              "which holds more than one output row: we count every s-th window position of the tile "
              "as an output row, where MAESTRO counts every position (up to s times the true MACs)",
              _ALL_COUNTS),
    Deviation("executed-macs", "4.6",
              "a level below a Cluster executes a different number of MACs than its tile holds (an "
              "overlapping map there repeats work; stride 1, or strided rows counted at the stride and no "
              "spatial R or S): num_macs counts the MACs executed, where MAESTRO multiplies out the top "
              "level's tiles",
              frozenset({"num_macs", "energy_mac_units"})),
    Deviation("restart-overlap", "4.5",
              "a temporal map restarts inside an advancing one and its first window overlaps its last "
              "(a tile wide relative to its dimension), or inside a spatial map advancing a fold "
              "shorter than its tile: the part of the tile the sub-clusters still hold is not "
              "delivered again, where MAESTRO delivers the whole tile",
              _TRAFFIC),
    Deviation("oversized-map-held", "4.5",
              "a spatial map is larger than the dimension it maps (the layer's or the tile of the level "
              "above): its first sub-cluster's partial sums and MACs count the dimension it holds (MAESTRO "
              "counts it through an edge-edge sub-cluster, which whole-last-tile can remove when another "
              "SpatialMap of the level sets the state; the model then counted the map's size)",
              _ALL_COUNTS),
    Deviation("edge-fold-reads", "4.5",
              "a spatial map's edge fold (or its first fold, where that is its edge) has one busy "
              "sub-cluster and it holds less than a tile (what is left of the dimension): the steps "
              "of loops inside and outside deliver that partial tile, where "
              "MAESTRO delivers a whole tile (it sizes the tile right at the first step and for outputs)",
              _TRAFFIC),
    Deviation("partial-filter-rows", "4.3",
              "a level's map on R or S is larger than the filter rows its tile holds (output rows are "
              "counted from the rows held), or its R or S tile is smaller than the filter (a map on R or "
              "S smaller than the filter, here or above) and a Y or X tile then has more filter "
              "positions than the layer has output rows: its output rows are cut to the layer's "
              "(MAESTRO counts every position, and rejects such a TemporalMap)",
              _ALL_COUNTS),
    Deviation("partial-filter-shift", "4.3",
              "a partial filter tile beside a Y or X tile smaller than the layer's, not moved in "
              "lockstep with it by a SpatialMap of the same size and offset: which output rows the tile "
              "computes shifts with the filter position, which the case analysis does not follow, so "
              "the figures of that level are approximate (dse validate gives the literal count)",
              _ALL_COUNTS),
    Deviation("map-within-share", "Q2",
              "a level maps a dimension twice and the later TemporalMap is larger than the earlier "
              "map's tile (the share it walks): it covers that share in one step and is dropped, so "
              "each sub-cluster holds its share (MAESTRO's tables keep the later directive: each "
              "sub-cluster holds the later map's size, and a 1-column X tile beside 3 filter columns "
              "divides by zero in MAESTRO)",
              _ALL_COUNTS | {"status"}),
    Deviation("fold-restart-held", "4.5",
              "a level's one spatial map restarts inside an advancing map while sub-clusters still "
              "hold part of their first fold's tiles (the tile of the last fold each was busy in "
              "overlaps it: a sliding map, or sub-clusters left idle by a two-fold map's edge fold): "
              "what every sub-cluster needing it holds is not delivered again, where MAESTRO "
              "delivers the whole tile",
              _TRAFFIC),
    Deviation("strided-tail-held", "Q5",
              "a level does not map a strided layer's Y or X, whose last rows no output's window "
              "reaches ((dimension - filter) not a multiple of the stride): the level holds the whole "
              "dimension, where MAESTRO's stride rewrite of the map it inserts cuts the tile to the "
              "rows of whole output windows and walks the rest as a second step",
              _TRAFFIC | {"l1_size_req", "l2_size_req"}),
    Deviation("lockstep-skips", "4.2",
              "a level has two SpatialMaps on independent dimensions (not Y with R, nor X with S), at "
              "least two sub-clusters, and a map with more than one window over its tile: in lockstep "
              "sub-cluster i gets window i of each, so window pairs of different indices are never "
              "computed; the design is invalid (violation 'lockstep SpatialMaps skip window pairs'), where "
              "MAESTRO counts every pair",
              frozenset()),                 # no figure changes: the design's validity does
)}


def _rows_follow_windows(layer, maestro_exact: bool, filter_spatial: bool) -> bool:
    """Not maestro_exact; Y and X each of stride 1 or counted at the stride (strided-output-rows:
    where the filter is shorter than the stride MAESTRO's rewrite leaves a window's rows apart, Q5);
    and, if strided, R and S not mapped spatially (``filter_spatial``, row-stationary), whose edge
    folds keep MAESTRO's sizing (two public ResNet-50 CONV1 rows are refused otherwise)."""
    if maestro_exact:
        return False
    rows = output_row_strides(layer, maestro_exact)
    strided = any(s > 1 for s in layer.row_strides().values())
    return (all(s == 1 or rows[v] > 1 for v, s in layer.row_strides().items())
            and not (strided and filter_spatial))


def fold_output_applies(layer, maestro_exact: bool, filter_spatial: bool) -> bool:
    """Whether rule edge-fold-output may apply at a level of ``layer`` (a CONV-family layer) that
    does (``filter_spatial``) or does not map R or S spatially."""
    return layer.layer_type.is_conv_family and _rows_follow_windows(layer, maestro_exact, filter_spatial)


def executed_macs_applies(layer, maestro_exact: bool, filter_spatial: bool) -> bool:
    """Whether rule executed-macs may apply to a dataflow some level of which does
    (``filter_spatial``) or does not map R or S spatially: the levels below a Cluster count the MACs
    they execute only where their edge folds follow the windows (see fold_output_applies)."""
    return _rows_follow_windows(layer, maestro_exact, filter_spatial)


def maps_filter_spatially(entries, spatial) -> bool:
    """Whether directives ``entries`` (with ``kind`` and ``var``) map R or S with a SpatialMap
    (``spatial``: the caller's kind value for a SpatialMap)."""
    return any(e.kind == spatial and e.var in ("R", "S") for e in entries)


def output_row_strides(layer, maestro_exact: bool) -> dict[str, int]:
    """The stride between the output rows of a ``Y``/``X`` tile (rule strided-output-rows): the
    layer's (a strided window's input rows are contiguous, the rows between those a short filter
    uses included, levels._apply_stride); 1 under ``maestro_exact``, as MAESTRO counts."""
    strides = layer.row_strides()
    return {ref: 1 if maestro_exact else strides[ref] for ref in ("Y", "X")}


def strided_window_rewritten(layer, maestro_exact: bool) -> bool:
    """Whether a Y/X map of ``layer`` has a filter shorter than its stride, so that its strided window
    keeps the rows between the ones the filter uses (rule strided-output-rows; MAESTRO's window is
    the o·R rows used, walked by o·R below the top)."""
    if maestro_exact or not layer.layer_type.is_conv_family:
        return False
    dims, strides = layer.dim_map, layer.row_strides()
    return any(strides[ref] > 1 and dims.get(sliding, 1) < strides[ref]
               for ref, sliding in (("Y", "R"), ("X", "S")))


def maps_within_share(directives, layer_dims: dict[str, int], maestro_exact: bool) -> list[int]:
    """Indices, among one level's own ``directives``, of the TemporalMaps rule map-within-share
    drops: a map on a dimension an earlier directive of the level maps walks that directive's tile
    (literally, a loop inside its loop), and one at least as large covers it in a single step. Only
    sizes known without holes are compared (a hole's value is not known when the levels are built);
    equal sizes are left to MAESTRO's tables, which then give the same tile."""
    if maestro_exact:
        return []
    drop, share = [], {}
    for i, d in enumerate(directives):
        size = _known(d.size, layer_dims)
        earlier = share.get(d.dim)
        if (d.dim in share and d.kind.value == "TemporalMap" and size is not None and earlier is not None
                and size > earlier):
            drop.append(i)
            continue
        share[d.dim] = size
    return drop


def _known(size, layer_dims: dict[str, int]) -> int | None:
    """A directive size as a number: an integer or ``Sz(D)``; None for a hole."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    dim = getattr(size, "dim", None)
    return layer_dims.get(dim) if dim is not None and not hasattr(size, "name") else None


def affected(deviations: str) -> frozenset[str]:
    """Figures that may differ from MAESTRO's, given a ``LayerCost.deviations`` string."""
    out: set[str] = set()
    for name in filter(None, deviations.split(",")):
        out |= DEVIATIONS[name].affects
    return frozenset(out)
