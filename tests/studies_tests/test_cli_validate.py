"""``dse validate``: the model against the reference executor; exit 0 agree, 1 differ, 2 bad input."""

from __future__ import annotations

from .cli_helpers import run, write_file
from .test_startup_and_jobs import _imported_after

AGREE = """\
Network t {
Layer worked { Type: CONV Dimensions { K: 4, C: 2, R: 3, S: 3, Y: 6, X: 6 }
Dataflow { SpatialMap(1,1) K; TemporalMap(1,1) C; TemporalMap(3,3) R; TemporalMap(3,3) S;
           TemporalMap(3,1) Y; TemporalMap(3,1) X; } }
}
"""
# A filter map shorter than the filter beside a one-row Y tile, which the model's case analysis
# only approximates (rule partial-filter-shift, docs/maestro-deviations.md): one output row, so 3
# MACs, where the model counts 9 (each step's filter row against the tile's row as if it were valid).
DIFFER = """\
Network t {
Layer shifted { Type: CONV Dimensions { K: 1, C: 1, R: 3, S: 1, Y: 3, X: 1 }
Dataflow { SpatialMap(1,1) K; TemporalMap(1,1) R; TemporalMap(1,1) Y; TemporalMap(1,1) X;
           TemporalMap(1,1) S; TemporalMap(1,1) C; } }
}
"""
REFUSED = """\
Network t {
Layer short_tile { Type: CONV Dimensions { K: 2, C: 2, R: 3, S: 3, Y: 6, X: 6 }
Dataflow { SpatialMap(1,1) K; TemporalMap(2,2) Y; TemporalMap(3,1) X; TemporalMap(3,3) R;
           TemporalMap(3,3) S; } }
}
"""
# N mapped with gaps (offset 2 over a 1-element map): half of the MACs never run.
SKIPS = """\
Network t {
Layer gaps { Type: GEMM Dimensions { M: 2, N: 4, K: 2 }
Dataflow { SpatialMap(1,1) M; TemporalMap(1,2) N; TemporalMap(2,2) K; } }
}
"""
HW = ["--num-pes", "4", "--noc-bw", "2", "--noc-hop-latency", "1"]
TWO_PES = ["--num-pes", "2", "--noc-bw", "2", "--noc-hop-latency", "1"]


def test_agreeing_layer_exits_0_and_prints_both_values(tmp_path, capsys):
    code, out, err = run(capsys, "validate", write_file(tmp_path, "a.m", AGREE), *HW)
    assert code == 0 and err == ""
    assert "layer worked" in out and "verdict: all figures agree" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("runtime_cycles"))
    assert line.split()[1:] == ["325", "325", "yes"]
    assert "every MAC of the layer executed exactly once" in out


def test_differing_figure_exits_1_and_is_named(tmp_path, capsys):
    code, out, err = run(capsys, "validate", write_file(tmp_path, "d.m", DIFFER), "--num-pes", "2")
    assert code == 1 and err == ""
    line = next(x for x in out.splitlines() if x.strip().startswith("num_macs"))
    assert line.split()[1:] == ["9", "3", "NO"]
    assert "verdict: differ on num_macs" in out
    assert "partial-filter-shift: a filter tile smaller than the filter beside a tiled row" in out
    assert "does not run every MAC exactly once" not in out          # it does: only the model counts 9


def test_a_mapping_that_skips_macs_is_explained_as_such(tmp_path, capsys):
    code, out, _ = run(capsys, "validate", write_file(tmp_path, "s.m", SKIPS), "--num-pes", "2")
    assert code == 1
    assert "8 of 16 MACs never executed" in out and "verdict: differ on runtime_cycles" in out
    assert "does not run every MAC exactly once" in out and "approximate" not in out


def test_refusal_confirmed_by_the_executor_agrees(tmp_path, capsys):
    code, out, _ = run(capsys, "validate", write_file(tmp_path, "r.m", REFUSED), "--num-pes", "2")
    assert code == 0
    assert "model: refuses the mapping" in out and "32 of 32 outputs are never written" in out
    assert "both find the mapping invalid" in out


def test_one_differing_layer_of_several_gives_1(tmp_path, capsys):
    text = AGREE.rstrip().rstrip("}") + DIFFER.split("{", 1)[1]
    code, out, _ = run(capsys, "validate", write_file(tmp_path, "m.m", text), *TWO_PES)
    assert code == 1 and "layer worked" in out and "layer shifted" in out


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    cases = [
        (["validate", tmp_path / "missing.m"], "missing.m"),
        (["validate", write_file(tmp_path, "bad.m", "Network t {\nLayer a { Type: POOL }\n}\n")], "bad.m:2"),
        (["validate", write_file(tmp_path, "a.m", AGREE), "--num-pes", "0"], "--num-pes"),
        (["validate", write_file(tmp_path, "a.onnx", "x")], "expected a MAESTRO .m file"),
    ]
    for argv, needle in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        lines = err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, (argv, err)


def test_layer_beyond_the_executor_limit_is_refused(tmp_path, capsys):
    big = AGREE.replace("K: 4, C: 2, R: 3, S: 3, Y: 6, X: 6", "K: 64, C: 64, R: 3, S: 3, Y: 58, X: 58")
    code, _, err = run(capsys, "validate", write_file(tmp_path, "big.m", big), *HW)
    assert code == 2 and "at most 10,000,000" in err and "layer worked" in err


def test_help_is_light(tmp_path):
    assert _imported_after(["validate", "--help"], tmp_path) == set()
