"""The reference executor (costmodel/executor.py): hand-checked executions, limits, invariants, and the
default model against it on random dataflows.

Hand-checked cases pin the executor's values (derived by hand in each docstring) and, where the model
differs, the model's value too: those are the findings recorded in docs/maestro-deviations.md
("What the executor finds"); a change to the model that closes one must update that section.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from costmodel import (
    Accelerator,
    Dataflow,
    Directive,
    Layer,
    LayerType,
    MappingError,
    SpecError,
    evaluate,
    evaluate_batch,
    parse_dataflow,
)
from costmodel import executor as ex
from costmodel.executor import execute
from costmodel.executor_validate import COMPARED, describe, validate
from costmodel.mfile import format_layer
from tests.costmodel_tests.test_properties import SETTINGS, designs


def _flow(text: str) -> Dataflow:
    return parse_dataflow("Dataflow { " + text + " }")


def _pairs(layer, text, acc) -> dict[str, tuple[int, int]]:
    return _validated(layer, text, acc)[0]


def _validated(layer, text, acc):
    """(figure -> (model, executor), the model's deviations) of one validated layer."""
    v = validate(layer, _flow(text), acc)
    assert v.model_error is None and v.executor_error is None, (v.model_error, v.executor_error)
    return {p.figure: (p.model, p.executor) for p in v.pairs}, v.deviations


def _agreeing(layer, text, acc, rules: set[str]) -> dict[str, tuple[int, int]]:
    """The figures of a layer on which model and executor agree on every figure, naming ``rules``."""
    figs, deviations = _validated(layer, text, acc)
    assert all(m == e for m, e in figs.values()), figs
    assert rules <= set(deviations.split(",")), deviations
    return figs


def _engines_agree_and_exact_differs(layer, text, acc, rule: str, figure: str, model: int, exact: int):
    """Both engines give ``model`` for ``figure`` and name ``rule``; ``maestro_exact`` gives MAESTRO's
    ``exact`` and does not name it."""
    ref, com = (evaluate_batch(layer, _flow(text), accelerator=acc, engine=e)
                for e in ("reference", "compiled"))
    assert ref.deviations[0] == com.deviations[0] and rule in com.deviations[0]
    assert int(getattr(ref, figure)[0]) == int(getattr(com, figure)[0]) == model
    mx = evaluate_batch(layer, _flow(text), accelerator=acc, maestro_exact=True)
    assert int(getattr(mx, figure)[0]) == exact and rule not in mx.deviations[0]


def _executed_as_counted(layer, text, acc, rule: str, figure: str, value: int, exact: int):
    """A rule the executor confirms: model and executor agree on every figure, naming ``rule``, with
    ``value`` for ``figure`` on both engines, where ``maestro_exact`` keeps MAESTRO's ``exact``."""
    figs = _agreeing(layer, text, acc, {rule})
    assert figs[figure] == (value, value)
    _engines_agree_and_exact_differs(layer, text, acc, rule, figure, value, exact)
    return figs


# ------------------------------------------------------------------------------ hand-checked cases
WORKED = "SpatialMap(1,1) K; TemporalMap(1,1) C; TemporalMap(3,3) R; TemporalMap(3,3) S; " \
         "TemporalMap(3,1) Y; TemporalMap(3,1) X;"


def test_worked_example_of_the_semantics_doc():
    """Semantics doc 4.6 (MAESTRO prints 325): K4 C2 R3 S3 Y6 X6, 4 PEs, bw 2, hop latency 1."""
    layer = Layer.conv("L", K=4, C=2, R=3, S=3, Y=6, X=6)
    acc = Accelerator(num_pes=4, noc_bw=2, noc_hop_latency=1)
    rep = execute(layer, _flow(WORKED), acc)
    assert rep.exact_cover and rep.macs_executed == 1152 and rep.outputs_never_written == 0
    assert (rep.input_l2_reads, rep.weight_l2_reads, rep.output_l2_writes) == (144, 72, 128)
    assert rep.runtime_cycles == 325 and rep.top_steps == 32
    assert rep.l2_req == {"input": 18, "weight": 72, "output": 8}
    # Per PE: input 3x3, weight 3x3, output 1 (MAESTRO sizes the output over its 3x3 input window).
    assert rep.l1_req == {"input": 18, "weight": 18, "output": 2} and rep.l1_output_window == 18
    # Each input element delivered once per step however many of the 4 PEs receive it.
    assert rep.input_deliveries == 4 * 144
    assert all(p.agree for p in validate(layer, _flow(WORKED), acc).pairs)


def test_reset_after_an_uncoupled_advance_is_delivered_again():
    """GEMM M2 N2 K2, ``M; N; SpatialMap K`` on 2 PEs. Weights (K, N): N walks N0, N1 under M0, then
    resets to N0 under M1 while the PEs hold N1's weights: 4 tiles of 2 = 8 reads. MAESTRO counts no
    weight traffic at the step where M, a loop weights do not depend on, advances: 6; the model re-reads
    the tile there (deviation ``uncoupled-reread``) and agrees with the executor; ``maestro_exact``
    keeps MAESTRO's 6, which is the executor's under MAESTRO's ``stationary`` convention."""
    layer = Layer.gemm("G", M=2, N=2, K=2)
    text = "TemporalMap(1,1) M; TemporalMap(1,1) N; SpatialMap(1,1) K;"
    acc = Accelerator(num_pes=2)
    assert _agreeing(layer, text, acc, {"uncoupled-reread"})["weight_l2_reads"] == (8, 8)
    exact = evaluate_batch(layer, _flow(text), accelerator=acc, maestro_exact=True).row(0)
    assert exact.weight_l2_reads == 6 and exact.deviations == ""
    assert execute(layer, _flow(text), acc, conventions={"stationary"}).weight_l2_reads == 6


def test_uncoupled_reread_is_the_whole_tile_with_shared_halos_once():
    """CONV K2 C1 R3 S3 Y6 X5, ``K; SpatialMap(1,1) Y'; X'(1,1)`` on 4 PEs: inputs do not depend on K,
    but X' restarts under K1, so the PEs, holding columns 2-4, need columns 0-2 again. A literal run
    re-reads the 2 columns they lack (54 reads in all), as the model does since rule restart-overlap;
    with the convention of MAESTRO's the model kept until then (``reinit``: the whole 6x3 tile again,
    rows shared by neighbours delivered once) the executor gives 60 = 18 + 4x6 at K0 and 18 again at
    K1's restart. MAESTRO
    (``maestro_exact``) counts 84, the executor's with ``stationary`` and ``no-halo`` (each PE's rows
    counted separately at the first step and when X' advances: 4x9 + 2x4x3 + ...). The order of K and
    the spatial map does not change the model's count (before shared-halo-once it was 102 and 120)."""
    layer = Layer.conv("L", K=2, C=1, R=3, S=3, Y=6, X=5)
    acc = Accelerator(num_pes=4)
    kept = {"reinit"}                             # the convention the model keeps
    for text in ("TemporalMap(1,1) K; SpatialMap(1,1) Y'; TemporalMap(1,1) X'; TemporalMap(3,3) R; "
                 "TemporalMap(3,3) S;",
                 "SpatialMap(1,1) Y'; TemporalMap(1,1) K; TemporalMap(1,1) X'; TemporalMap(3,3) R; "
                 "TemporalMap(3,3) S;"):
        df = _flow(text)
        cost = evaluate_batch(layer, df, accelerator=acc).row(0)
        assert (cost.input_l2_reads, cost.deviations) == (54, "uncoupled-reread,shared-halo-once,"
                                                              "restart-overlap")
        assert evaluate_batch(layer, df, accelerator=acc, maestro_exact=True).row(0).input_l2_reads == 84
        assert execute(layer, df, acc, conventions=kept).input_l2_reads == 60
        assert execute(layer, df, acc, conventions=kept | {"no-halo", "stationary"}).input_l2_reads == 84
        assert execute(layer, df, acc).input_l2_reads == 54


def test_temporal_edge_step_reads_only_the_edge_tiles_new_elements():
    """DSCONV C1 R1 S1 Y2 X14, ``SpatialMap(1,1) Y; TemporalMap(8,8) X`` on 2 PEs: the X walk is 8
    columns, then the 6 left. A literal run reads each of the 28 inputs once; MAESTRO counts the edge
    step as a whole offset, 8 columns per PE: 32 (the executor's ``edge-offset`` convention). The
    model counts the edge tile's 6 (deviation ``temporal-edge-reads``); ``maestro_exact`` keeps 32."""
    layer = Layer.conv("L", K=1, C=1, R=1, S=1, Y=2, X=14, layer_type=LayerType.DSCONV)
    text = "SpatialMap(1,1) Y; TemporalMap(8,8) X; TemporalMap(1,1) R; TemporalMap(1,1) S;"
    acc = Accelerator(num_pes=2)
    assert _agreeing(layer, text, acc, {"temporal-edge-reads"})["input_l2_reads"] == (28, 28)
    exact = evaluate_batch(layer, _flow(text), accelerator=acc, maestro_exact=True).row(0)
    assert (exact.input_l2_reads, exact.deviations) == (32, "")
    assert execute(layer, _flow(text), acc, conventions={"edge-offset"}).input_l2_reads == 32


def test_temporal_edge_step_after_a_restart_reads_the_whole_edge_tile():
    """GEMM M2 N5 K1, ``TemporalMap(1,1) M; TemporalMap(3,3) N; SpatialMap(1,1) K`` on 1 PE: weights
    (K, N) do not depend on M, but N restarts under M1. Each M row walks N as 3 columns then the 2
    left; the PE holds the last 2 when N restarts, so a literal run reads 3 + 2 + 3 + 2 = 10. MAESTRO
    counts the second row's tiles as 0 (``stationary``); the model re-reads the whole tile at the
    restart (``uncoupled-reread``), and at the edge step the edge tile's new elements: 2, not 3."""
    layer = Layer.gemm("G", M=2, N=5, K=1)
    text = "TemporalMap(1,1) M; TemporalMap(3,3) N; SpatialMap(1,1) K;"
    acc = Accelerator(num_pes=1)
    figs = _agreeing(layer, text, acc, {"uncoupled-reread", "temporal-edge-reads"})
    assert figs["weight_l2_reads"] == (10, 10)


def test_steps_inside_a_map_at_its_edge_tile_read_along_the_edge_window():
    """CONV K1 C1 R1 S1 Y4 X2, ``TemporalMap(3,3) Y; SpatialMap(1,1) K; TemporalMap(1,1) X`` on 1 PE:
    Y is 3 rows, then the 1 left. Rows 0-2 read 3 inputs per X column (6); the Y edge step reads row 3
    of column 0 (1), and the X step inside it row 3 of column 1 (1): 8. MAESTRO counts the X step
    inside the edge tile as a steady 3-row column, and the Y step as a whole 3-row tile: 12. The model
    reads both along the edge window (deviation ``temporal-edge-reads``, which before covered only
    the changing map's own edge step, giving 10: the ``edge-offset`` convention)."""
    layer = Layer.conv("L", K=1, C=1, R=1, S=1, Y=4, X=2)
    text = "TemporalMap(3,3) Y; SpatialMap(1,1) K; TemporalMap(1,1) X;"
    acc = Accelerator(num_pes=1)
    assert _agreeing(layer, text, acc, {"temporal-edge-reads"})["input_l2_reads"] == (8, 8)
    _engines_agree_and_exact_differs(layer, text, acc, "temporal-edge-reads", "input_l2_reads", 8, 12)
    assert execute(layer, _flow(text), acc, conventions={"edge-offset"}).input_l2_reads == 10


SLIDING_Y = "TemporalMap(1,1) C; SpatialMap(1,1) Y'; TemporalMap(1,1) X'; TemporalMap(3,3) R; " \
            "TemporalMap(3,3) S;"


def test_halo_shared_by_neighbours_is_read_once():
    """DSCONV C1 R3 S3 Y6 X8, ``SpatialMap(1,1) Y'; TemporalMap(1,1) X'`` on 4 PEs: PE i holds input rows
    i..i+2, so a step needs rows 0..5 once (multicast): 6x3 = 18 at the first step, then one new column
    of 6 rows at each of the 5 others: 48. MAESTRO counts each PE's rows separately unless the spatial
    map itself advances: 4x9 + 5x4x3 = 96 (the executor's ``no-halo`` convention), and an L2 input
    tile of 4x9 instead of 18. The model delivers the shared rows once (deviation shared-halo-once)
    and agrees with the executor on every figure."""
    layer = Layer.conv("L", K=1, C=1, R=3, S=3, Y=6, X=8, layer_type=LayerType.DSCONV)
    text = SLIDING_Y
    acc = Accelerator(num_pes=4)
    assert _agreeing(layer, text, acc, {"shared-halo-once"})["input_l2_reads"] == (48, 48)
    exact = evaluate_batch(layer, _flow(text), accelerator=acc, maestro_exact=True).row(0)
    assert exact.input_l2_reads == 96
    assert execute(layer, _flow(text), acc, conventions={"no-halo"}).input_l2_reads == 96


def test_sliding_spatial_edge_fold_computes_only_its_windows():
    """The same layer on 3 PEs: Y' has 4 output rows, so the second fold has one busy PE. The executor
    runs every MAC once (216). MAESTRO sizes that PE's outputs by the input rows' edge size (3 rows
    for its 1): 324 MACs and twice the runtime (``maestro_exact``); the model counts its output row
    (deviation edge-fold-output) and agrees with the executor on every figure."""
    layer = Layer.conv("L", K=1, C=1, R=3, S=3, Y=6, X=8, layer_type=LayerType.DSCONV)
    text = SLIDING_Y
    acc = Accelerator(num_pes=3)
    rep = execute(layer, _flow(text), acc)
    assert rep.exact_cover and rep.macs_executed == 216 and rep.runtime_cycles == 108
    figs = _agreeing(layer, text, acc, {"edge-fold-output"})
    assert figs["num_macs"] == (216, 216) and figs["runtime_cycles"] == (108, 108)
    exact = evaluate_batch(layer, _flow(text), accelerator=acc, maestro_exact=True).row(0)
    assert (exact.num_macs, exact.runtime_cycles) == (324, 216)


def test_part_of_a_reset_tile_still_held_is_not_delivered_again():
    """CONV K1 C1 R3 S3 Y4 X4, ``Y'(1,1); X'(1,1)`` on one PE: inputs 9, +3 (X step), then the Y step
    resets X: the PE holds rows 0-2 x cols 1-3 and needs rows 1-3 x cols 0-2, 4 of them held: +5, +3 =
    20, as the model counts since rule restart-overlap; MAESTRO (and the model before it, the
    ``reinit`` convention) re-reads the whole tile when X resets: 24."""
    layer = Layer.conv("L", K=1, C=1, R=3, S=3, Y=4, X=4)
    text = "TemporalMap(1,1) Y'; TemporalMap(1,1) X'; SpatialMap(1,1) C; TemporalMap(1,1) K; " \
           "TemporalMap(3,3) R; TemporalMap(3,3) S;"
    acc = Accelerator(num_pes=1)
    figs = _agreeing(layer, text, acc, {"restart-overlap"})
    assert figs["input_l2_reads"] == (20, 20)
    _engines_agree_and_exact_differs(layer, text, acc, "restart-overlap", "input_l2_reads", 20, 24)
    assert execute(layer, _flow(text), acc, conventions={"reinit"}).input_l2_reads == 24


def test_sub_clusters_idle_in_an_edge_fold_still_hold_their_first_tile_when_the_map_restarts():
    """GEMM M3 N7 K2, ``TemporalMap(1,1) M; SpatialMap(2,2) N`` on 3 PEs: N has two folds, N0-5 on
    the 3 PEs, then N6 on PE0 alone. Weights (K, N) do not depend on M, but N restarts under each
    new M row: PE0 holds N6 and needs N0-1 (4 weights), PEs 1 and 2, idle in the edge fold, still
    hold N2-3 and N4-5 (0). So 12 + 2 for M0, then 4 + 2 per row: 26, as the model counts since rule
    fold-restart-held; before it the model delivered the whole first fold again (42)."""
    layer = Layer(name="L", layer_type=LayerType.GEMM, dims=(("M", 3), ("N", 7), ("K", 2)))
    text = "TemporalMap(1,1) M; SpatialMap(2,2) N; TemporalMap(2,2) K;"
    _executed_as_counted(layer, text, Accelerator(num_pes=3), "fold-restart-held", "weight_l2_reads",
                         26, 24)


def test_the_only_sub_cluster_keeps_the_overlap_of_its_last_fold_when_the_map_restarts():
    """CONV K1 C1 R3 S3 Y4 X4, ``TemporalMap(1,1) Y'; SpatialMap(1,1) X'`` on one PE: X' has two
    folds (input columns 0-2, then 1-3). When Y' advances and X' restarts, the PE holds rows 0-2 x
    columns 1-3 and needs rows 1-3 x columns 0-2: 4 held, 5 new. 9 + 3 for the first row, 5 + 3 for
    the second: 20, as the model counts since rule fold-restart-held (24 before: the whole tile
    again); MAESTRO delivers the whole tile at every fold (36)."""
    layer = Layer.conv("L", K=1, C=1, R=3, S=3, Y=4, X=4)
    text = "TemporalMap(1,1) Y'; SpatialMap(1,1) X'; TemporalMap(1,1) C; TemporalMap(1,1) K; " \
           "TemporalMap(3,3) R; TemporalMap(3,3) S;"
    _executed_as_counted(layer, text, Accelerator(num_pes=1), "fold-restart-held", "input_l2_reads",
                         20, 36)


FILTER_3X3 = " TemporalMap(1,1) C; TemporalMap(1,1) K; TemporalMap(3,3) R; TemporalMap(3,3) S;"


def test_sliding_sub_clusters_lack_only_the_start_of_their_first_tiles_when_the_map_restarts():
    """CONV K1 C1 R3 S3 Y4 X6, ``TemporalMap(1,1) Y'; SpatialMap(1,1) X'`` on 2 PEs: X' has two
    folds (input columns 0-2 and 1-3, then 2-4 and 3-5). When Y' advances and X' restarts, PE0
    holds rows 0-2 x columns 2-4 and needs rows 1-3 x columns 0-2, PE1 holds columns 3-5 and needs
    1-3. Of the fold's footprint (rows 1-3 x columns 0-3), row 3 is new and of rows 1-2 columns 0-2
    are lacked by some PE (column 2 by PE1, though PE0 holds it): 10 new, so 12 + 9 + 10 + 9 = 40,
    as the model counts since fold-restart-held covers sliding maps (42 before); MAESTRO 54."""
    layer = Layer.conv("L", K=1, C=1, R=3, S=3, Y=4, X=6)
    text = "TemporalMap(1,1) Y'; SpatialMap(1,1) X';" + FILTER_3X3
    _executed_as_counted(layer, text, Accelerator(num_pes=2), "fold-restart-held", "input_l2_reads",
                         40, 54)


def test_a_sub_cluster_idle_in_an_edge_fold_that_computes_nothing_keeps_its_first_tile():
    """CONV K1 C1 R5 S5 Y7 X20 stride 2, ``TemporalMap(5,1) Y; SpatialMap(5,1) X`` on 8 PEs: X's
    windows (5 columns every 2) put output columns 0-7 on the 8 PEs (input columns 0-18), and
    MAESTRO's walk leaves a second fold with columns 16-19 on PE0, which hold no output column: PE0
    computes nothing there and receives nothing. When Y advances and X restarts, every PE still holds
    rows 2-4 of its first columns: 5 x 19 + 2 x 19 = 133 input reads, as the model counts since
    fold-restart-held takes that fold's idle sub-cluster as holding the fold before (148 before);
    MAESTRO 345."""
    filters = "TemporalMap(5,5) R; TemporalMap(5,5) S; TemporalMap(1,1) C; TemporalMap(1,1) K;"
    _executed_as_counted(Layer.conv("L", K=1, C=1, R=5, S=5, Y=7, X=20, stride=2),
                         "TemporalMap(5,1) Y; SpatialMap(5,1) X; " + filters, Accelerator(num_pes=8),
                         "fold-restart-held", "input_l2_reads", 133, 345)


def test_a_fold_advance_keeps_its_overlap_when_a_map_inside_restarts():
    """CONV K1 C1 R3 S3 Y4 X6, ``SpatialMap(1,1) X'; TemporalMap(1,1) Y'`` on 2 PEs: in fold 0 the
    PEs read rows 0-2 x columns 0-3 (12), then row 3 (4). Fold 1 moves each PE by 2 columns and
    restarts Y': PE0 holds rows 1-3 x columns 0-2 and needs rows 0-2 x columns 2-4, PE1 holds
    columns 1-3 and needs 3-5; of the footprint (rows 0-2 x columns 2-5) only rows 1-2 x column 2
    is held by every PE needing it: 10 new, then 4: 30, as the model counts since restart-overlap
    covers an advancing spatial map (32 before); MAESTRO 48. On one PE the map is a temporal loop:
    ``SpatialMap(1,1) Y'; TemporalMap(1,1) X'`` on Y4 X4 reads 20 (24 before), as the temporal one."""
    layer = Layer.conv("L", K=1, C=1, R=3, S=3, Y=4, X=6)
    text = "SpatialMap(1,1) X'; TemporalMap(1,1) Y';" + FILTER_3X3
    _executed_as_counted(layer, text, Accelerator(num_pes=2), "restart-overlap", "input_l2_reads",
                         30, 48)
    _executed_as_counted(Layer.conv("L", K=1, C=1, R=3, S=3, Y=4, X=4),
                         "SpatialMap(1,1) Y'; TemporalMap(1,1) X';" + FILTER_3X3, Accelerator(num_pes=1),
                         "restart-overlap", "input_l2_reads", 20, 24)


def test_a_fold_advance_onto_a_shorter_edge_tile_reads_only_what_it_reaches_beyond():
    """CONV K1 C1 R3 S3 Y4 X5, ``TemporalMap(1,1) Y'; SpatialMap(2,2) X'`` on one PE: X' folds are
    output columns 0-1 (input columns 0-3) and 2 (input columns 2-4, the edge tile). The advance keeps
    columns 2-3 and reads column 4 only: 3 per Y' row, not the 2 columns a steady fold advance would
    bring (fold-overlap-reuse before it covered edge tiles). 12 + 3, then 8 (the restart keeps rows
    1-2 x columns 2-3) + 3: 26 (32 before); MAESTRO 48."""
    layer = Layer.conv("L", K=1, C=1, R=3, S=3, Y=4, X=5)
    text = "TemporalMap(1,1) Y'; SpatialMap(2,2) X';" + FILTER_3X3
    _executed_as_counted(layer, text, Accelerator(num_pes=1), "fold-overlap-reuse", "input_l2_reads",
                         26, 48)


def test_a_restart_after_an_edge_window_that_computes_nothing_keeps_the_window_before_it():
    """CONV K1 C1 R7 S7 Y15 X16 stride 2, ``TemporalMap(11,5) Y; TemporalMap(10,10) X'`` on one PE:
    the X' map becomes input columns 0-14 walked by 10, so MAESTRO's walk over X = 16 ends in an edge
    window (columns 10-15, no output column) that computes nothing, and the PE keeps columns 0-14.
    When Y advances and X restarts it holds rows 5-10 of them: 11 x 15 + 4 x 15 = 225 input reads,
    as the model counts since restart-overlap takes the window before an idle edge (275 before, from
    the idle edge window); MAESTRO 330."""
    layer = Layer.conv("L", K=1, C=1, R=7, S=7, Y=15, X=16, stride=2)
    text = "TemporalMap(11,5) Y; SpatialMap(1,1) C; TemporalMap(1,1) K; TemporalMap(10,10) X'; " \
           "TemporalMap(7,7) S;"
    _executed_as_counted(layer, text, Accelerator(num_pes=1), "restart-overlap", "input_l2_reads",
                         225, 330)


def test_an_unmapped_strided_dimension_is_held_whole_past_the_last_window():
    """CONV K1 C1 R3 S3 Y8 X4 stride 2, ``TemporalMap(2,2) Y'`` with X not mapped, on one PE: one
    output column (input columns 0-2), column 3 in no window. The level holds X whole, as a literal
    run of the dimension does: 5 x 4 input elements, then rows 5-6 (8): 28 reads, L1 66, L2 44, as
    the model counts since rule strided-tail-held; MAESTRO's rewrite of the whole-X map cuts it to 3
    columns and walks column 3 as a second step (L1 54, L2 38, 27 reads; the model before it 21)."""
    layer = Layer.conv("L", K=1, C=1, R=3, S=3, Y=8, X=4, stride=2)
    text = "SpatialMap(1,1) C; TemporalMap(2,2) Y'; TemporalMap(3,3) S; TemporalMap(1,1) K; " \
           "TemporalMap(3,3) R;"
    figs = _executed_as_counted(layer, text, Accelerator(num_pes=1), "strided-tail-held",
                                "input_l2_reads", 28, 27)
    assert figs["l1_size_req"] == (66, 66) and figs["l2_size_req"] == (44, 44)


def test_overlapping_temporal_map_repeats_macs_as_the_model_counts():
    """``TemporalMap(2,1) K`` over K4: windows 0-1, 1-2, 2-3: the middle channels twice, as the model
    counts them (108 of which 36 repeat)."""
    layer = Layer.conv("L", K=4, C=2, R=1, S=1, Y=3, X=3)
    rep = execute(layer, _flow("SpatialMap(1,1) C; TemporalMap(2,1) K;"), Accelerator(num_pes=2))
    assert rep.macs_executed == 108 and rep.macs_repeated == 36 and rep.macs_skipped == 0
    assert "36 MAC executions repeat" in rep.coverage_problem()
    figs = _pairs(layer, "SpatialMap(1,1) C; TemporalMap(2,1) K;", Accelerator(num_pes=2))
    assert figs["num_macs"] == (108, 108)


def test_stride_two_counts_true_output_rows():
    """CONV R3 S1, stride 2, Y7: ``TemporalMap(7,7) Y`` is MAESTRO's strided map (7 rows, 3 outputs);
    the executor computes the 3 true output rows of each of 2 windows... here one window covers all:
    3 rows x 7 columns... every MAC once. MAESTRO's count, the model's, takes 5 rows (stride ignored in
    the tile), Q5."""
    layer = Layer(name="L", layer_type=LayerType.CONV, dims=(("K", 1), ("C", 1), ("R", 3), ("S", 1),
                                                              ("Y", 7), ("X", 7)), strides=(("Y", 2),))
    rep = execute(layer, _flow("SpatialMap(1,1) X; TemporalMap(7,7) Y; TemporalMap(3,3) R;"),
                  Accelerator(num_pes=7))
    assert rep.exact_cover and rep.macs_executed == layer.true_macs == 3 * 3 * 7


def test_tile_smaller_than_the_filter_never_writes_outputs():
    """The model refuses a Y tile of 2 rows for R=3; executed literally, no PE ever holds a whole
    filter window: every output is missing (point 3 of issue 13)."""
    layer = Layer.conv("L", K=2, C=2, R=3, S=3, Y=6, X=6)
    text = "SpatialMap(1,1) K; TemporalMap(2,2) Y; TemporalMap(3,1) X; TemporalMap(3,3) R; " \
           "TemporalMap(3,3) S;"
    v = validate(layer, _flow(text), Accelerator(num_pes=2))
    assert v.model_error is not None and "smaller than the filter" in v.model_error
    assert v.report.outputs_never_written == v.report.outputs_total == 2 * 4 * 4
    assert v.report.macs_executed == 0 and v.confirmed_invalid and v.agree
    assert any("both find the mapping invalid" in line for line in describe(v))


def test_two_spatial_maps_move_in_lockstep_within_a_fold():
    """GEMM M4 N4 K2, ``SpatialMap M; SpatialMap N`` on 2 PEs: each has 2 folds, and in every fold PE i
    gets window i of both, so only pairs (m, n) with m = n mod 2 are computed: 16 of 32 MACs, as the
    model counts (MAESTRO's semantics); the executor shows half the outputs never written."""
    layer = Layer.gemm("G", M=4, N=4, K=2)
    v = validate(layer, _flow("SpatialMap(1,1) M; SpatialMap(1,1) N; TemporalMap(2,2) K;"),
                 Accelerator(num_pes=2))
    rep = v.report
    assert rep.macs_executed == 16 and rep.macs_skipped == 16 and rep.outputs_never_written == 8
    assert dict((p.figure, p.model) for p in v.pairs)["num_macs"] == 16


def test_limits_are_refused_with_the_limit_named(monkeypatch):
    big = Layer.conv("B", K=64, C=64, R=3, S=3, Y=58, X=58)
    with pytest.raises(SpecError, match="at most 10,000,000"):
        execute(big, _flow("SpatialMap(1,1) K;"), Accelerator(num_pes=8))
    monkeypatch.setattr(ex, "MAX_STEPS", 10)
    layer = Layer.conv("L", K=4, C=2, R=3, S=3, Y=6, X=6)
    with pytest.raises(SpecError, match="more than 10 level steps"):
        execute(layer, _flow(WORKED), Accelerator(num_pes=4))


def test_mappings_the_directives_cannot_define_are_refused():
    layer = Layer.conv("L", K=4, C=2, R=3, S=3, Y=6, X=6)
    with pytest.raises(MappingError, match="no SpatialMap"):
        execute(layer, _flow("TemporalMap(1,1) K;"), Accelerator(num_pes=4))
    with pytest.raises(MappingError, match="cluster sizes multiply to 8"):
        execute(layer, _flow("SpatialMap(1,1) K; Cluster(8); SpatialMap(1,1) C;"), Accelerator(num_pes=4))
    with pytest.raises(SpecError, match="holes"):
        execute(layer, _flow("SpatialMap(?k,?k) K;"), Accelerator(num_pes=4))


# ------------------------------------------------------------------------------ random dataflows
def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def single_stream_designs(draw):
    """1-3 levels where each level has one SpatialMap on a non-sliding dimension that needs a single
    fold, and at most one temporal map with more than one window; the other maps hold their dimension
    whole; tiles divide their dimension (no edge tiles: see the module docstring of
    docs/maestro-deviations.md's findings for what edges change). CONV, DSCONV, TRCONV, GEMM; strides
    1 and 2."""
    kind = draw(st.sampled_from(["CONV", "DSCONV", "TRCONV", "GEMM"]))
    if kind == "GEMM":
        m, n, k = (draw(st.integers(1, 12)) for _ in range(3))
        layer = Layer.gemm("G", M=m, N=n, K=k)
        free, sliding = ["M", "N", "K"], []
    else:
        r = draw(st.sampled_from([1, 3]))
        stride = 1     # strided tiles: MAESTRO counts MACs as if stride 1 (Q5), see the hand-checked test
        k = draw(st.integers(1, 8)) if kind != "DSCONV" else 1
        layer = Layer.conv("L", K=k, C=draw(st.integers(1, 8)), R=r, S=r, Y=draw(st.integers(r, r + 7)),
                           X=draw(st.integers(r, r + 7)), stride=stride, layer_type=LayerType(kind))
        free = ["C"] + (["K"] if kind != "DSCONV" else [])
        sliding = ["Y", "X"]
    full = layer.full_dims()
    extent = {d: full[d] for d in free + sliding}
    n_levels = draw(st.integers(1, 3))
    levels, windows = [], []
    for _ in range(n_levels):
        sp = draw(st.sampled_from(free))
        tile = draw(st.sampled_from(_divisors(extent[sp])))
        windows.append(-(-extent[sp] // tile))
        moving = draw(st.sampled_from([d for d in free + sliding if d != sp] + [None]))
        level = [Directive.spatial(tile, tile, sp)]
        sizes = {sp: tile}
        for d in free + sliding:
            if d == sp:
                continue
            size = extent[d]
            if d == moving and d in sliding:
                r = layer.size("R" if d == "Y" else "S")
                size = draw(st.sampled_from([m for m in range(r, extent[d] + 1)
                                             if (extent[d] - m) % (m - r + 1) == 0]))
                level.append(Directive.temporal(size, size - r + 1, d))     # each output row once
            elif d == moving:
                size = draw(st.sampled_from(_divisors(extent[d])))
                level.append(Directive.temporal(size, size, d))
            else:
                level.append(Directive.temporal(size, size, d))
            sizes[d] = size
        if kind != "GEMM":
            level += [Directive.temporal(layer.size("R"), layer.size("R"), "R"),
                      Directive.temporal(layer.size("S"), layer.size("S"), "S")]
        levels.append(draw(st.permutations(level)))
        extent = {d: min(sizes[d], extent[d]) for d in extent}
    directives: list[Directive] = list(levels[0])
    for level, n in zip(levels[1:], windows[1:], strict=True):
        directives += [Directive.cluster(n), *level]
    # Every level's spatial map fits its sub-clusters in one fold.
    acc = Accelerator(num_pes=math.prod(windows[1:]) * (windows[0] + draw(st.integers(0, 2))),
                      simd_lanes=draw(st.integers(1, 2)), noc_bw=draw(st.none() | st.integers(1, 8)),
                      noc_hop_latency=draw(st.integers(0, 1)),
                      offchip_bw=draw(st.none() | st.integers(1, 64)))
    return layer, Dataflow.of(*directives), acc


_TALLY: dict[str, Counter] = {"single-stream": Counter(), "random": Counter()}


def _tally(name: str, v) -> None:
    c = _TALLY[name]
    c["cases"] += 1
    if not v.pairs:
        c["refused by the model"] += 1
        c["refusal confirmed"] += v.confirmed_invalid
        return
    c["compared"] += 1
    for p in v.pairs:
        c[p.figure] += p.agree
    c["exact cover"] += v.report.coverage_problem() is None


def _invariants(v, acc) -> None:
    rep = v.report
    if rep is None:
        return
    for name in ("macs_executed", "macs_distinct", "input_l2_reads", "weight_l2_reads", "output_l2_writes",
                 "runtime_cycles", "input_deliveries", "weight_deliveries"):
        assert getattr(rep, name) >= 0, name
    assert rep.macs_distinct <= rep.macs_layer and rep.macs_distinct <= rep.macs_executed
    assert rep.input_deliveries >= rep.input_l2_reads and rep.weight_deliveries >= rep.weight_l2_reads
    # No PE computes faster than its lanes: the whole walk takes at least the executed MACs' peak.
    assert rep.runtime_cycles >= math.ceil(rep.macs_executed / (rep.used_pes * acc.simd_lanes))
    if rep.exact_cover:
        assert rep.runtime_cycles >= rep.pe_peak_cycles


@settings(max_examples=150, **SETTINGS)
@given(single_stream_designs())
def test_model_equals_executor_on_single_stream_dataflows(design):
    layer, df, acc = design
    note(format_layer(layer, df) + f"\n{acc.describe()}")
    v = validate(layer, df, acc)
    note("\n".join(describe(v)))
    _invariants(v, acc)
    _tally("single-stream", v)
    if v.pairs:
        for p in v.pairs:
            if p.figure == "num_macs" and layer.stride("Y") > 1:
                continue
            assert p.agree, p


@settings(max_examples=300, **SETTINGS)
@given(designs())
def test_executor_invariants_on_random_dataflows(design):
    """Random 1-3-level dataflows (edge tiles, strides, two SpatialMaps, every layer type): the
    executor's invariants hold, and where the mapping runs every MAC exactly once the model gives
    the literal run's value for all seven figures, unless it names partial-filter-shift (approximate
    by design); elsewhere agreement is counted and printed."""
    layer, df, acc = design
    if layer.true_macs > 100_000:
        return                                      # keep the suite quick: the executor is literal
    try:
        v = validate(layer, df, acc)
    except SpecError:
        return                                      # beyond the executor's limits
    except MappingError:
        return                                      # a dataflow the directives cannot define
    note(format_layer(layer, df) + "\n" + "\n".join(describe(v)))
    _invariants(v, acc)
    _tally("random", v)
    if v.pairs and v.report.exact_cover and "partial-filter-shift" not in v.deviations.split(","):
        assert all(p.agree for p in v.pairs), [(p.figure, p.model, p.executor) for p in v.pairs]


def test_report_agreement_counts(fuzz_report):
    """Runs last in this module: prints how often each figure agreed in the two property tests."""
    for name, c in _TALLY.items():
        if not c["cases"]:
            continue
        per = ", ".join(f"{f} {c[f]}/{c['compared']}" for f in COMPARED)
        fuzz_report.append(f"executor vs model, {name} dataflows: {c['cases']} cases, {c['compared']} "
                           f"compared ({c['exact cover']} run every MAC once): {per}; refused by the model "
                           f"{c['refused by the model']} (confirmed invalid {c['refusal confirmed']})")


def test_a_strided_edge_tile_smaller_than_the_filter_is_idle_not_refused():
    """Generated case 368 (MAESTRO evaluates it): the stride-2 walk of the top level leaves an edge
    tile of 6 columns for S=7 at level 1. It holds no whole filter window, so it computes nothing, and
    the windows before it produce every output: the executor runs every MAC exactly once. The model
    used to refuse it ("X tile 6 is smaller than the filter width S=7"); it now takes the case as idle
    (rule idle-below-filter) and, counting a strided tile's output rows at the stride
    (strided-output-rows), gives the layer's true MACs, where ``maestro_exact`` counts 3.25 times as
    many (issue 13, points 3 and 1)."""
    import pandas as pd

    from costmodel import parse_network
    from tests.costmodel_tests import fidelity

    rows = pd.read_csv(fidelity.GENERATED)
    row = rows[rows.case_id == "case_00368"].iloc[0]
    mapped = parse_network(row.mfile_text).layers[0]
    acc = Accelerator(num_pes=int(row.num_pes))
    v = validate(mapped.layer, mapped.dataflow, acc)
    assert v.model_error is None and v.report.exact_cover and not v.confirmed_invalid
    assert v.report.macs_executed == mapped.layer.true_macs
    model = evaluate(mapped.layer, mapped.dataflow, acc)
    exact = evaluate_batch(mapped.layer, mapped.dataflow, accelerator=acc, maestro_exact=True)
    # Idle through idle-below-filter, or already at the level above: there the edge fold's one busy
    # sub-cluster has no output row (edge-fold-output) and the case does not reach its sub-clusters.
    assert {"idle-below-filter", "edge-fold-output"} & set(model.deviations.split(","))
    assert "strided-output-rows" in model.deviations
    assert mapped.layer.true_macs == model.num_macs < int(exact.num_macs[0]) == int(row.num_macs)


def test_a_strided_edge_tile_holding_one_filter_window_computes_it():
    """CONV R3, Y10, stride 2 (4 output rows), ``TemporalMap(7,2) Y`` above ``Cluster(2)`` with
    ``SpatialMap(3,1) Y`` below: the top level's tiles are rows 0-6 (3 output rows) and the edge rows
    6-9 (1 output row, one filter window). Level 1 sizes the edge tile's busy sub-clusters from that
    tile (4 rows: one window and a partial one, rule subtile-edges); with the steady tile's count, one
    sub-cluster holding only the partial window, the model used to take the case as idle and count 30
    MACs through MAESTRO's stride-1 rows. It now counts the 24 true MACs the executor runs once each,
    and the same inputs; ``maestro_exact`` counts 42. Both engines agree."""
    layer = Layer(name="L", layer_type=LayerType.CONV, dims=(("K", 2), ("C", 1), ("R", 3), ("S", 1),
                                                              ("Y", 10), ("X", 1)), strides=(("Y", 2),))
    df = _flow("SpatialMap(1,1) K; TemporalMap(7,2) Y; TemporalMap(3,3) R; Cluster(2, P); "
               "SpatialMap(3,1) Y; TemporalMap(3,3) R;")
    acc = Accelerator(num_pes=4)
    ref, com = (evaluate_batch(layer, df, accelerator=acc, engine=e) for e in ("reference", "compiled"))
    exact = evaluate_batch(layer, df, accelerator=acc, maestro_exact=True)
    assert int(ref.num_macs[0]) == int(com.num_macs[0]) == 24 and int(exact.num_macs[0]) == 42
    assert ref.deviations[0] == com.deviations[0]
    assert {"subtile-edges", "strided-output-rows"} <= set(com.deviations[0].split(","))
    assert "idle-below-filter" not in com.deviations[0]
    rep = execute(layer, df, acc)
    assert rep.exact_cover and rep.macs_executed == layer.true_macs == 24
    assert int(com.input_l2_reads[0]) == rep.input_l2_reads == 10


def test_a_partial_tile_after_a_full_spatial_fold_is_counted_beside_the_whole_ones():
    """K22 over ``SpatialMap(4,4) K`` on 3 PEs: a full fold (K 0-11), then an edge fold of two whole
    tiles (12-19) and a partial one (20-21). MAESTRO counts only the whole tiles of an edge fold and
    takes the last of them for the partial one (144 MACs, 36 weights of 44); the model counts the
    partial tile on a third sub-cluster (rule edge-fold-partial): 176 MACs and 44 weight reads, as the
    literal execution. Both engines agree; ``maestro_exact`` keeps MAESTRO's count."""
    layer = Layer.conv("L", K=22, C=2, R=1, S=1, Y=2, X=2)
    df = _flow("SpatialMap(4,4) K; TemporalMap(1,1) C; TemporalMap(1,1) Y; TemporalMap(1,1) X;")
    acc = Accelerator(num_pes=3)
    ref, com = (evaluate_batch(layer, df, accelerator=acc, engine=e) for e in ("reference", "compiled"))
    exact = evaluate_batch(layer, df, accelerator=acc, maestro_exact=True)
    for cost in (ref, com):
        assert int(cost.num_macs[0]) == 176 and int(cost.weight_l2_reads[0]) == 44
        assert "edge-fold-partial" in cost.deviations[0]
    assert int(exact.num_macs[0]) == 144 and int(exact.weight_l2_reads[0]) == 36
    rep = execute(layer, df, acc)
    assert rep.exact_cover and rep.macs_executed == 176 and rep.weight_l2_reads == 44


def test_dsconv_k_mapped_below_a_cluster_walks_one_iteration():
    """DSCONV C4 R3 S3 Y6 X6 (576 MACs), ``SpatialMap(1,1) K`` as the only SpatialMap below
    ``Cluster(2)``: a DSCONV has no K to walk there (MAESTRO stops with "Dimension K not found"; the
    model used to refuse it). Walked as a dimension of size 1, one PE of each cluster is busy: 2 busy
    PEs, 288 cycles. Both engines and the executor agree on all seven figures (issue 13, point 3)."""
    layer = Layer.conv("D", K=1, C=4, R=3, S=3, Y=6, X=6, layer_type=LayerType.DSCONV)
    df = _flow("SpatialMap(1,1) C; TemporalMap(Sz(R),1) Y; TemporalMap(Sz(S),1) X; TemporalMap(3,3) R; "
               "TemporalMap(3,3) S; Cluster(2, P); SpatialMap(1,1) K; TemporalMap(1,1) C; "
               "TemporalMap(3,3) R; TemporalMap(3,3) S;")
    acc = Accelerator(num_pes=4)
    ref, com = (evaluate_batch(layer, df, accelerator=acc, engine=e) for e in ("reference", "compiled"))
    assert int(ref.runtime_cycles[0]) == int(com.runtime_cycles[0]) == 288
    assert float(com.avg_utilized_pes[0]) == 2.0 and "uncoupled-dim-inherited" in com.deviations[0]
    v = validate(layer, df, acc)
    assert v.model_error is None and v.report.exact_cover and v.agree


def test_l1_requirement_is_the_tile_held_not_the_map_size():
    """``TemporalMap(64,64) C`` on C3, 4 PEs: each PE holds 3 input channels of one pixel, 3 weights
    and 1 output, double-buffered: 14, as the model counts (rule l1-held-tile), in both engines.
    MAESTRO, and ``maestro_exact``, multiply map sizes: 2x64 + 2x64 + 2 = 258."""
    layer = Layer.conv("L", K=4, C=3, R=1, S=1, Y=4, X=4)
    text = "SpatialMap(1,1) K; TemporalMap(64,64) C; TemporalMap(1,1) Y; TemporalMap(1,1) X;"
    acc = Accelerator(num_pes=4)
    figs = _agreeing(layer, text, acc, {"l1-held-tile"})
    assert figs["l1_size_req"] == (14, 14)
    for engine in ("reference", "compiled"):
        cost = evaluate_batch(layer, _flow(text), accelerator=acc, engine=engine)
        assert int(cost.l1_size_req[0]) == 14 and "l1-held-tile" in cost.deviations[0]
    exact = evaluate_batch(layer, _flow(text), accelerator=acc, maestro_exact=True)
    assert int(exact.l1_size_req[0]) == 258 and "l1-held-tile" not in exact.deviations[0]


def test_a_partial_sub_cluster_shorter_than_the_filter_receives_nothing():
    """DSCONV R3 S3 Y14 X14, stride 2, ``SpatialMap(Sz(S),1) X`` on 256 PEs (MobileNetV2's strided
    depthwise rows, one channel): six windows of 3 columns every 2, then a partial tile of columns
    12-13, shorter than the filter. That sub-cluster computes nothing; the executor delivers it
    nothing, so 13 x 13 = 169 input elements are read (the 14th row and column no MAC uses). The
    model agrees on every figure (rule idle-edge-subcluster), in both engines; without the rule it
    delivered the partial tile's new column (182 reads, L2 114), and MAESTRO (``maestro_exact``),
    which also counts shared halos per PE, reads 200."""
    layer = Layer(name="L", layer_type=LayerType.DSCONV,
                  dims=(("K", 1), ("C", 1), ("R", 3), ("S", 3), ("Y", 14), ("X", 14)),
                  strides=(("Y", 2), ("X", 2)))
    text = ("TemporalMap(1,1) C; TemporalMap(Sz(R),1) Y; SpatialMap(Sz(S),1) X; "
            "TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S;")
    acc = Accelerator(num_pes=256)
    figs = _agreeing(layer, text, acc, {"idle-edge-subcluster"})
    assert figs["input_l2_reads"] == (169, 169) and figs["l2_size_req"] == (108, 108)
    _engines_agree_and_exact_differs(layer, text, acc, "idle-edge-subcluster", "input_l2_reads", 169, 200)


def test_a_fold_advance_shorter_than_the_tile_keeps_the_first_sub_clusters_overlap():
    """CONV R5 S5 Y'14 X'14 (Y 18), ``SpatialMap(5,1) Y`` on 4 PEs: windows of 5 rows every row,
    four per fold, so a fold advances 4 rows and the first PE keeps one row of its previous tile.
    Input reads over the four folds: 8 + 7 + 7 + 5 rows of 18 = 486, as the literal execution; the
    model used to deliver that PE its whole tile again (540) and MAESTRO, with shared halos per PE
    too, counts 756. Rule fold-overlap-reuse, both engines; ``maestro_exact`` keeps MAESTRO's count."""
    layer = Layer.conv("L", K=7, C=1, R=5, S=5, Y=18, X=18)
    text = "SpatialMap(5,1) Y; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(5,5) S;"
    acc = Accelerator(num_pes=4, simd_lanes=2, noc_bw=360, noc_hop_latency=1, offchip_bw=12)
    figs = _agreeing(layer, text, acc, {"fold-overlap-reuse"})
    assert figs["input_l2_reads"] == (486, 486)
    _engines_agree_and_exact_differs(layer, text, acc, "fold-overlap-reuse", "input_l2_reads", 486, 756)


def test_macs_repeated_below_a_cluster_are_counted_as_executed():
    """CONV K2 C3 Y2 X2 (1x1 filter), ``SpatialMap(1,1) K`` over two clusters of 2 PEs, and below
    the Cluster ``TemporalMap(2,1) C``: windows of channels 0-1 and 1-2, so channel 1 is computed
    twice. Each cluster executes 16 MACs for its 12, 32 in all (8 repeated), as the literal execution
    counts; the model's runtime (8 cycles on 4 PEs) already came from them, while MAESTRO's MAC count
    multiplies out the top level's tiles: 24. Rule executed-macs, both engines; L1 reads follow the
    MACs (semantics doc 4.8), so the energy includes the repeats."""
    layer = Layer.conv("L", K=2, C=3, R=1, S=1, Y=2, X=2)
    text = ("SpatialMap(1,1) K; TemporalMap(3,3) C; TemporalMap(2,2) Y; TemporalMap(2,2) X; Cluster(2, P); "
            "TemporalMap(2,1) C; SpatialMap(1,1) Y; TemporalMap(2,2) X;")
    acc = Accelerator(num_pes=4)
    figs, deviations = _validated(layer, text, acc)
    assert figs["num_macs"] == (32, 32) and figs["runtime_cycles"] == (8, 8)
    assert "executed-macs" in deviations
    rep = execute(layer, _flow(text), acc)
    assert rep.macs_executed == 32 and rep.macs_distinct == layer.true_macs == 24
    _engines_agree_and_exact_differs(layer, text, acc, "executed-macs", "num_macs", 32, 24)
    model = evaluate_batch(layer, _flow(text), accelerator=acc)
    mx = evaluate_batch(layer, _flow(text), accelerator=acc, maestro_exact=True)
    assert int(model.output_l1_reads[0]) == int(model.input_l1_reads[0]) == 32
    assert float(model.energy_mac_units[0]) > float(mx.energy_mac_units[0])



def test_a_strided_edge_fold_computes_only_its_output_rows():
    """CONV R3, Y7 (Y'3), stride 2, ``SpatialMap(3,1) Y`` on 2 PEs (rewritten for the stride to
    windows of 3 rows every 2): the first fold computes output rows 0 and 1, the edge fold's one PE
    row 2, 9 MACs in 6 cycles as the literal execution; MAESTRO (and the model before rule
    edge-fold-output covered strided layers) took that PE's 3 input rows for output rows: 15 MACs in
    12 cycles."""
    layer = Layer(name="L", layer_type=LayerType.CONV, dims=(("K", 1), ("C", 1), ("R", 3), ("S", 1),
                                                              ("Y", 7), ("X", 1)), strides=(("Y", 2),))
    text = "SpatialMap(3,1) Y; TemporalMap(3,3) R;"
    acc = Accelerator(num_pes=2)
    figs = _agreeing(layer, text, acc, {"edge-fold-output", "strided-output-rows"})
    assert figs["num_macs"] == (9, 9) and figs["runtime_cycles"] == (6, 6)
    _engines_agree_and_exact_differs(layer, text, acc, "edge-fold-output", "num_macs", 9, 15)



def test_an_oversized_spatial_map_beside_another_counts_the_dimension_it_holds():
    """GEMM M1 N3 K1, ``SpatialMap(30,30) N; TemporalMap(1,1) K; SpatialMap(1,1) M`` on 4 PEs: the
    sub-cluster state is M's. MAESTRO counts N's 3 columns through its edge-edge sub-cluster; with
    whole-last-tile (M's last tile is whole, so there is none) the model sized the one busy
    sub-cluster's N by the map: 30 MACs for 3. It holds the 3 columns there are: 3 MACs, as executed
    and as MAESTRO (rule oversized-map-held)."""
    layer = Layer(name="L", layer_type=LayerType.GEMM, dims=(("M", 1), ("N", 3), ("K", 1)))
    text = "SpatialMap(30,30) N; TemporalMap(1,1) K; SpatialMap(1,1) M;"
    acc = Accelerator(num_pes=4)
    figs = _agreeing(layer, text, acc, {"oversized-map-held"})
    assert figs["num_macs"] == (3, 3)
    exact = evaluate_batch(layer, _flow(text), accelerator=acc, maestro_exact=True)
    assert int(exact.num_macs[0]) == 3 and "oversized-map-held" not in exact.deviations[0]
    ref, com = (evaluate_batch(layer, _flow(text), accelerator=acc, engine=e)
                for e in ("reference", "compiled"))
    assert int(ref.num_macs[0]) == int(com.num_macs[0]) == 3 and ref.deviations[0] == com.deviations[0]


def test_the_one_busy_partial_tile_of_an_edge_fold_is_read_as_that_tile():
    """GEMM M1 N6 K1, ``SpatialMap(4,4) N`` over one sub-cluster: folds N 0-3, then the 2 left. A
    literal run reads the 6 weights once; MAESTRO sizes the edge fold's one busy sub-cluster by the
    edge tile at the first step and for its outputs, but delivers it a whole 4-element tile when the
    fold advances: 8. The model delivers the 2 left (deviation ``edge-fold-reads``)."""
    layer = Layer.gemm("G", M=1, N=6, K=1)
    text = "SpatialMap(4,4) N; Cluster(1,L); SpatialMap(1,1) K;"
    acc = Accelerator(num_pes=1)
    assert _agreeing(layer, text, acc, {"edge-fold-reads"})["weight_l2_reads"] == (6, 6)
    _engines_agree_and_exact_differs(layer, text, acc, "edge-fold-reads", "weight_l2_reads", 6, 8)


def test_a_map_whose_first_fold_is_its_edge_fold_is_read_as_the_tile_it_holds():
    """GEMM M1 N1 K3 on one sub-cluster, ``SpatialMap(2,2) K`` in lockstep with ``SpatialMap(3,2) M``
    (larger than M): fold 0 holds K 0-1 and the one M, fold 1 K 2 and the same M. A literal run reads
    the 3 inputs once. When K advances, M's map stands at its first fold, which is also its edge
    fold (the dimension is shorter than the map), so the sub-cluster holds the 1 M there as at the
    first step; the model once counted the map's 3 there (2 + 3 = 5), MAESTRO counts 8 (deviation
    ``edge-fold-reads``; generated case_00317 is this mapping on four levels)."""
    layer = Layer.gemm("G", M=1, N=1, K=3)
    text = "SpatialMap(2,2) K; SpatialMap(3,2) M; Cluster(1,L); SpatialMap(1,1) N;"
    _executed_as_counted(layer, text, Accelerator(num_pes=1), "edge-fold-reads", "input_l2_reads", 3, 8)


def test_a_partial_filter_tile_computes_only_the_layers_output_columns():
    """CONV S3 X5 (3 output columns), ``SpatialMap(1,1) S`` on 1 PE: three folds, one filter column
    each, over the whole X. At filter column s the PE computes outputs x' = x - s for x in 0..4 that
    exist: 3 each, 9 MACs, as executed. MAESTRO counts X - 1 + 1 = 5 window positions: 15. The model
    cuts a tile's output columns to the layer's (rule partial-filter-rows)."""
    layer = Layer.conv("L", K=1, C=1, R=1, S=3, Y=1, X=5)
    figs = _executed_as_counted(layer, "SpatialMap(1,1) S;", Accelerator(num_pes=1), "partial-filter-rows",
                                "num_macs", 9, 15)
    assert figs["output_l2_writes"] == (9, 9)


def test_a_temporal_map_on_part_of_the_filter_is_evaluated_by_default():
    """CONV R3 Y4 (2 output rows), ``TemporalMap(1,1) R; SpatialMap(1,1) K`` on 1 PE: one filter row
    per step, over the whole Y: 2 outputs a step, 6 MACs, every one once. MAESTRO's parser rejects a
    TemporalMap on R smaller than the filter, and so does ``maestro_exact``; the model counts it."""
    layer = Layer.conv("L", K=1, C=1, R=3, S=1, Y=4, X=1)
    text = "TemporalMap(1,1) R; SpatialMap(1,1) K;"
    acc = Accelerator(num_pes=1)
    figs = _agreeing(layer, text, acc, {"partial-filter-rows"})
    assert figs["num_macs"] == (6, 6) and figs["input_l2_reads"] == (4, 4)
    ref, com = (evaluate_batch(layer, _flow(text), accelerator=acc, engine=e)
                for e in ("reference", "compiled"))
    assert ref.deviations[0] == com.deviations[0] == "partial-filter-rows"
    exact = evaluate_batch(layer, _flow(text), accelerator=acc, maestro_exact=True)
    assert "must span the whole filter" in str(exact.error[0])


def test_a_partial_filter_tile_beside_a_tiled_row_is_named_approximate():
    """DSCONV S2 X2 (1 output column), ``SpatialMap(1,1) S`` over one sub-cluster, then X walked one
    column at a time below it. At filter column 0 only x = 0 has an output (x' = 0), at column 1 only
    x = 1: 2 MACs. Which column of a tile computes depends on the filter position, which the case
    analysis does not follow: the model counts a window per column, 4 MACs, and names the level
    approximate (partial-filter-shift); ``dse validate`` shows the literal 2. Pinned, so a change
    that fixes (or worsens) it is seen."""
    layer = Layer.conv("L", K=1, C=1, R=1, S=2, Y=1, X=2, layer_type=LayerType.DSCONV)
    text = "SpatialMap(1,1) S; Cluster(1,P); TemporalMap(1,1) X; SpatialMap(1,1) C;"
    acc = Accelerator(num_pes=1)
    figs, deviations = _validated(layer, text, acc)
    assert figs["num_macs"] == (4, 2)
    assert {"partial-filter-rows", "partial-filter-shift"} <= set(deviations.split(","))
    assert execute(layer, _flow(text), acc).coverage_problem() is None


def test_a_strided_window_of_a_filter_shorter_than_the_stride_keeps_its_rows_between():
    """CONV 1x1, stride 2, X14 (7 output columns), ShiDianNao-style ``SpatialMap(Sz(R),1) Y;
    TemporalMap(8,8) X; Cluster(4,P); SpatialMap(Sz(S),1) X`` on 4 PEs. The X walk is 4 outputs
    (columns 0, 2, 4, 6) a step, then the 3 left (8, 10, 12), one output per PE: 7 MACs, as executed.
    MAESTRO sizes a window by the 4 columns the filter uses but walks and bounds it in the layer's
    14, so it finds an edge window of all 14 and counts 22 MACs. The model keeps the columns between
    in the window (7 columns, walked by 8; rule strided-output-rows): 7."""
    layer = Layer.conv("L", K=1, C=1, R=1, S=1, Y=2, X=14, stride=2)
    text = "SpatialMap(Sz(R),1) Y; TemporalMap(8,8) X; Cluster(4,P); SpatialMap(Sz(S),1) X;"
    figs = _executed_as_counted(layer, text, Accelerator(num_pes=4), "strided-output-rows", "num_macs", 7, 22)
    assert figs["output_l2_writes"] == (7, 7)


def test_row_stationary_filter_rows_in_lockstep_are_exact_and_not_named_approximate():
    """Eyeriss's row stationary (the public vgg16_rs_frontend form): a cluster of R PEs, PE k with
    input row y0 + k and filter row k, so each computes output row y0. Its filter tile (one row) is
    partial beside a one-row Y tile, but both SpatialMaps move in lockstep, so the count is exact:
    every figure equals the executor's, and neither partial-filter rule is named."""
    layer = Layer.conv("L", K=2, C=2, R=3, S=3, Y=7, X=5)
    text = ("SpatialMap(1,1) Y'; TemporalMap(1,1) X'; TemporalMap(1,1) C; TemporalMap(2,2) K; "
            "TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S; Cluster(Sz(R),P); SpatialMap(1,1) Y; "
            "SpatialMap(1,1) R; TemporalMap(Sz(S),Sz(S)) S;")
    figs, deviations = _validated(layer, text, Accelerator(num_pes=9))
    assert all(m == e for m, e in figs.values()), figs
    assert figs["num_macs"] == (540, 540)
    assert "partial-filter" not in deviations and "lockstep-skips" not in deviations


@pytest.mark.parametrize("engine", ["reference", "compiled"])
def test_two_spatial_maps_on_independent_dimensions_skip_window_pairs_and_are_invalid(engine):
    """CONV C1 Y3 X3 (1x1 filter), ``SpatialMap(1,1) X; SpatialMap(1,1) C`` on 4 PEs: in lockstep
    sub-cluster i gets column i and channel i, and there is only channel 0, so columns 1 and 2 are
    never computed: the literal run executes 3 of 9 MACs. MAESTRO counts every pair (9 MACs, a valid
    design); the model names lockstep-skips and marks the design invalid, keeping MAESTRO's counts,
    and ``maestro_exact`` keeps MAESTRO's report. Row stationary (Y with R) is not named (above)."""
    layer = Layer.conv("L", K=1, C=1, R=1, S=1, Y=3, X=3)
    flow, acc = _flow("SpatialMap(1,1) X; SpatialMap(1,1) C;"), Accelerator(num_pes=4)
    rep = execute(layer, flow, acc)
    assert (rep.macs_layer, rep.macs_distinct, rep.macs_repeated) == (9, 3, 0)
    cost = evaluate_batch(layer, flow, accelerator=acc, engine=engine)
    assert int(cost.num_macs[0]) == 9 and not cost.valid[0]
    assert cost.violations[0] == "lockstep SpatialMaps skip window pairs"
    assert "lockstep-skips" in cost.deviations[0].split(",")
    exact = evaluate_batch(layer, flow, accelerator=acc, engine=engine, maestro_exact=True)
    assert exact.valid[0] and "lockstep-skips" not in exact.deviations[0]
    one_pe = evaluate_batch(layer, flow, accelerator=Accelerator(num_pes=1), engine=engine)
    assert one_pe.valid[0] and "lockstep-skips" not in one_pe.deviations[0]     # one sub-cluster: all pairs
    assert execute(layer, flow, Accelerator(num_pes=1)).macs_distinct == 9


RS_SHIPPED = ("TemporalMap(2,2) K; TemporalMap(4,4) C; TemporalMap(Sz(R),Sz(R)) R; SpatialMap(Sz(R),1) Y; "
              "TemporalMap(Sz(S),1) X; Cluster(3,P); SpatialMap(1,1) X; SpatialMap(1,1) S; "
              "TemporalMap(Sz(S),Sz(S)) S;")


def test_a_second_map_covering_a_share_in_one_step_is_dropped():
    """MAESTRO's shipped Resnet50_rs inner level maps S twice: ``SpatialMap(1,1) S`` gives each PE one
    filter column (in lockstep with its X column), and ``TemporalMap(Sz(S),Sz(S)) S`` then walks that
    one column in one step. MAESTRO's tables keep the later directive, so each PE would hold 3 filter
    columns beside a 1-column X tile (it divides by zero; ``maestro_exact`` refuses). The model drops
    the later map (map-within-share) and agrees with the literal run on every figure."""
    layer = Layer.conv("L", K=2, C=2, R=3, S=3, Y=8, X=8)
    acc = Accelerator(num_pes=64)
    figs = _agreeing(layer, RS_SHIPPED, acc, {"map-within-share"})
    assert figs["num_macs"] == (1296, 1296) and figs["runtime_cycles"] == (72, 72)
    ref, com = (evaluate_batch(layer, _flow(RS_SHIPPED), accelerator=acc, engine=e)
                for e in ("reference", "compiled"))
    assert ref.deviations[0] == com.deviations[0]
    assert all(int(getattr(ref, f)[0]) == int(getattr(com, f)[0]) for f in COMPARED)
    exact = evaluate_batch(layer, _flow(RS_SHIPPED), accelerator=acc, maestro_exact=True)
    assert "X tile 1 is smaller than the filter width S=3" in str(exact.error[0])


@pytest.mark.parametrize("later, dropped", [
    ("TemporalMap(3,3) S", True),        # covers the 1-column share at once
    ("TemporalMap(Sz(S),1) S", True),    # the offset does not matter: one window reaches the end
    ("TemporalMap(1,1) S", False),       # the same size: MAESTRO's tables give the same tile
    ("TemporalMap(?s,?s) S", False),     # a hole: its value is not known when levels are built
    ("SpatialMap(3,3) S", False),        # a spatial map spreads the share: not a one-step loop
])
def test_which_second_maps_rule_map_within_share_drops(later, dropped):
    from costmodel.deviations import maps_within_share

    level = _flow(f"SpatialMap(1,1) X; SpatialMap(1,1) S; {later};").levels[0]
    assert maps_within_share(level, {"S": 3, "X": 8}, False) == ([2] if dropped else [])
    assert maps_within_share(level, {"S": 3, "X": 8}, True) == []


def test_a_mapping_that_leaves_outputs_uncomputed_is_not_a_valid_design():
    """CONV K1 C1 R3 S3 Y3 X8, ``TemporalMap(4,4) X``: the windows (columns 0-3, 4-7) hold output
    columns 0-1 and 4-5 only, so 2 and 3 are never computed: the executor finds 18 of the 54 MACs
    never executed, and the model, counting 36, marks the design invalid (violation num_macs <
    true_macs) on both engines, so no search takes it for a design of the layer. Under
    maestro_exact it is reported as MAESTRO does, valid."""
    layer = Layer.conv("L", K=1, C=1, R=3, S=3, Y=3, X=8)
    text = "SpatialMap(1,1) K; TemporalMap(4,4) X; TemporalMap(3,3) Y; TemporalMap(3,3) R; " \
           "TemporalMap(3,3) S; TemporalMap(1,1) C;"
    acc = Accelerator(num_pes=1)
    rep = execute(layer, _flow(text), acc)
    assert (rep.macs_layer, rep.macs_skipped) == (54, 18)
    for engine in ("reference", "compiled"):
        r = evaluate_batch(layer, _flow(text), accelerator=acc, engine=engine)
        assert (int(r.num_macs[0]), int(r.true_macs[0])) == (36, 54)
        assert not r.valid[0] and r.violations[0] == "num_macs < true_macs" and r.error[0] == ""
    assert bool(evaluate_batch(layer, _flow(text), accelerator=acc, maestro_exact=True).valid[0])
