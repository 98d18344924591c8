"""Fuzzing the command line: malformed .m, hardware, tech and ONNX files, and flags with hostile values.

A seeded generator mutates the shipped MAESTRO files (truncation, deleted, duplicated and swapped
lines, random tokens, huge, zero and negative numbers, binary data, deep nesting, control characters)
and small ONNX models (truncated and flipped bytes, impossible shapes and attributes), and pairs
every command with hostile flag values. Each case runs ``dse`` in-process under a per-case time
limit (a hang guard, not a speed test); a few run as real processes. Every case must end with exit
0 or 2, no traceback, no internal error (exit 1), within its limit, and leave no half-written output.
The counts are printed at the end of the run (``fuzz suite`` section) and in any failure message.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from studies import storage
from studies.cli import main
from studies.watchdog import DeadlineExceeded, call_with_deadline

from .codesign_helpers import NETWORK

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261201
CASE_LIMIT_S = 30.0              # per in-process case: a hang guard only
PROCESS_LIMIT_S = 90.0           # per subprocess case
NETWORKS = [*sorted((ROOT / "tests" / "costmodel_tests" / "data" / "maestro_mapping").glob("*.m")),
            ROOT / "costmodel" / "data" / "resnet50_kcp_ws.m"]
DATAFLOWS = sorted((ROOT / "costmodel" / "data" / "dataflows").glob("*.m"))
HW_TEXT = "num_pes: 256\nl1_size_cstr: 100\nl2_size_cstr: 3000\nnoc_bw_cstr: 1000\noffchip_bw_cstr: 50\n" \
          "NoC_NumHops: 1\n"
TECH_TEXT = '{"mac_area_um2": 500, "l2_energy_mac": 20, "l1_energy_mac": 1.5}\n'
TOKENS = ["{", "}", "(", ")", ";", ":", ",", "-", "->", "//", "//@repeat", "Network", "Layer", "Type", "CONV",
          "GEMM", "DSCONV", "TRCONV", "NGCONV", "FC", "Stride", "Dimensions", "Dataflow", "SpatialMap",
          "TemporalMap", "Cluster", "P", "L", "Sz", "Sz(R)", "?", "?x", "Constant", "K", "C", "R", "S", "Y",
          "X", "Y'", "X'", "N", "M", "G", "0", "1", "-1", "7", "num_pes", "NoC_NumHops", "\t", "\r"]
NUMBERS = ["0", "-1", "-32", str(1 << 31), str(1 << 62), str(1 << 63), str(1 << 64), "1" + "0" * 30,
           "9" * 5000, "007", "1e3", "0x10", "1.5", "١٢", "+5", "-0"]
HOSTILE = ["-1", "0", "1e999", "nan", "inf", "-inf", "", " ", "9" * 5000, str(1 << 62), str(1 << 40),
           "1:10:0", "1:1000000000000000000:*2", "16:8:1", "4:64:*1", "a,b", ",,,", "0:0:0", "1:2:3:4",
           "/dev/zero", "/", ".", "-", "--", "\x1b[31mred", "\u202etxt", "x" * 300, "1" * 30, "-5:5:1",
           "sqlite:///", "journal:///", "postgresql://u:p@ss@127.0.0.1:1/x", "nosuch://x", "0.0001"]


@dataclass
class Tally:
    """What the cases did; every failure is listed with its case label."""

    cases: int = 0
    codes: Counter = field(default_factory=Counter)
    tracebacks: list[str] = field(default_factory=list)
    exit1: list[str] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    slowest: float = 0.0

    def summary(self, name: str) -> str:
        return (f"{name}: {self.cases:,} cases (exit codes {dict(sorted(self.codes.items(), key=str))}); "
                f"{len(self.tracebacks)} tracebacks, {len(self.exit1)} exit-1 results, {len(self.timeouts)} "
                f"over the {CASE_LIMIT_S:g} s limit, {len(self.partial)} half-written outputs; slowest case "
                f"{self.slowest:.1f} s")

    def check(self, name: str, report: list[str]) -> None:
        report.append(self.summary(name))
        problems = (self.tracebacks + self.exit1 + self.timeouts + self.partial)[:8]
        assert not problems, self.summary(name) + "\n" + "\n".join(problems)


def run_case(tally: Tally, label: str, argv: list[str], folder: Path | None = None) -> int | str:
    """``dse ARGV`` in-process under the case limit; records exit code, tracebacks and leftovers."""
    out, err = io.StringIO(), io.StringIO()

    def call():
        try:
            return main([str(a) for a in argv])
        except SystemExit as exc:            # argparse's usage errors
            return exc.code

    start = time.perf_counter()
    logged = logging.StreamHandler(err)          # Optuna's log lines go to stderr too
    logging.getLogger("optuna").addHandler(logged)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = call_with_deadline(call, CASE_LIMIT_S)
    except DeadlineExceeded:
        code = "timeout"
    except BaseException as exc:             # anything escaping main() is a failure
        code = "raised"
        tally.tracebacks.append(f"{label}: {type(exc).__name__}: {exc}"[:300])
    finally:
        logging.getLogger("optuna").removeHandler(logged)
    seconds = time.perf_counter() - start
    tally.cases += 1
    tally.slowest = max(tally.slowest, seconds)
    tally.codes[code] += 1
    text = out.getvalue() + err.getvalue()
    shown = f"{label}: dse {' '.join(str(a)[:40] for a in argv)[:300]}"
    if "Traceback (most recent call last)" in text or "Exception in thread" in text:
        tally.tracebacks.append(f"{shown}: {text[-300:]}")
    if code == 1 and "no stored design" not in text:       # dse query's "no answer" is exit 1 by design
        tally.exit1.append(f"{shown}: {err.getvalue()[-300:]}")
    if code == "timeout":
        tally.timeouts.append(shown)
    if folder is not None:
        left = [p.name for p in folder.rglob("*.part")]
        if left:
            tally.partial.append(f"{shown}: left {left}")
    return code


# ------------------------------------------------------------------------------------ mutations
def _numbers_replaced(rng: random.Random, text: str) -> str:
    spans = [(i, j) for i, j in _digit_runs(text)]
    if not spans:
        return text
    i, j = rng.choice(spans)
    return text[:i] + rng.choice(NUMBERS) + text[j:]


def _digit_runs(text: str):
    i, n = 0, len(text)
    while i < n:
        if text[i].isdigit():
            j = i
            while j < n and text[j].isdigit():
                j += 1
            yield i, j
            i = j
        else:
            i += 1


def mutate(rng: random.Random, text: str) -> bytes:
    """One to three random damages of a text file; the result may not be text at all."""
    for _ in range(rng.randint(1, 3)):
        lines = text.splitlines(keepends=True) or [""]
        op = rng.randrange(11)
        if op == 0:
            text = text[:rng.randrange(len(text) + 1)]
        elif op == 1:
            for _ in range(rng.randint(1, 3)):
                if lines:
                    del lines[rng.randrange(len(lines))]
            text = "".join(lines)
        elif op == 2:
            k = rng.randrange(len(lines))
            lines[k:k] = [lines[k]] * rng.randint(1, 3)
            text = "".join(lines)
        elif op == 3:
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            text = "".join(lines)
        elif op == 4:
            for _ in range(rng.randint(1, 5)):
                p = rng.randrange(len(text) + 1)
                text = text[:p] + rng.choice([" ", ""]) + rng.choice(TOKENS) + " " + text[p:]
        elif op in (5, 6):
            for _ in range(rng.randint(1, 3)):
                text = _numbers_replaced(rng, text)
        elif op == 7:
            p = rng.randrange(len(text) + 1)
            nest = rng.choice(["{", "Dataflow {", "Layer a {", "("]) * rng.choice([50, 5000])
            text = text[:p] + nest + text[p:]
        elif op == 8:
            p = rng.randrange(len(text) + 1)
            text = text[:p] + rng.choice(["\x1b[31m", "\u202e", "\u00a0", "\x0c", "\u2028", "é", "x" * 100000,
                                          "\x7f", "\ufeff"]) + text[p:]
        elif op == 9:
            data = text.encode()
            p = rng.randrange(len(data) + 1)
            return data[:p] + rng.randbytes(rng.randint(1, 64)) + data[p:]
        else:
            return rng.randbytes(rng.randint(0, 4096))
    return text.encode()


# ---------------------------------------------------------------------------------------- files
@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)               # a stray default storage or output lands here
    storage.close_all()
    yield tmp_path
    storage.close_all()


def test_fuzz_maestro_files(workdir, fuzz_report):
    rng = random.Random(SEED)
    tally = Tally()
    sources = {p: p.read_text() for p in NETWORKS}
    small = (ROOT / "tests" / "costmodel_tests" / "data" / "maestro_mapping" / "vgg16_ckp_ws.m").read_text()
    for i in range(1300):                        # network/mapping files
        path = rng.choice(NETWORKS)
        mutant = workdir / f"net{i % 7}.m"
        mutant.write_bytes(mutate(rng, sources[path]))
        argv = ["eval", mutant, "--num-pes", rng.choice(["1", "64", "256", "1048576"])]
        if rng.random() < 0.2:
            argv += ["--format", rng.choice(["csv", "json"]), "--output", workdir / "out" / "rows.txt"]
            (workdir / "out").mkdir(exist_ok=True)
        run_case(tally, f"network {i} from {path.name}", argv, workdir)
    for i in range(200):                         # dataflow templates applied to a network
        path = rng.choice(DATAFLOWS)
        mutant = workdir / f"df{i % 5}.m"
        mutant.write_bytes(mutate(rng, path.read_text()))
        net = workdir / "small.m"
        net.write_text(small)
        run_case(tally, f"dataflow {i} from {path.name}",
                 ["eval", net, "--dataflow", mutant, "--num-pes", "64"])
    for i in range(200):                         # hardware files
        mutant = workdir / f"hw{i % 5}.m"
        mutant.write_bytes(mutate(rng, HW_TEXT))
        run_case(tally, f"hardware file {i}", ["eval", workdir / "small.m", "--hw-file", mutant])
    for i in range(80):                          # technology tables
        mutant = workdir / f"tech{i % 5}.{rng.choice(['json', 'toml'])}"
        toml = TECH_TEXT.strip("{}\n").replace(", ", "\n").replace('"', "").replace(":", " =")
        mutant.write_bytes(mutate(rng, TECH_TEXT if mutant.suffix == ".json" else toml))
        run_case(tally, f"tech file {i}", ["eval", workdir / "small.m", "--tech", mutant, "--num-pes", "64"])
    tally.check("fuzz .m, hardware and tech files", fuzz_report)


# ----------------------------------------------------------------------------------------- ONNX
def _model(kind: str) -> onnx.ModelProto:
    f = TensorProto.FLOAT
    if kind == "conv":
        x = helper.make_tensor_value_info("x", f, [1, 8, 16, 16])
        w = numpy_helper.from_array(np.zeros((16, 8, 3, 3), np.float32), "w")
        node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[1, 1, 1, 1], strides=[1, 1],
                                dilations=[1, 1], group=1)
    elif kind == "gemm":
        x = helper.make_tensor_value_info("x", f, [4, 32])
        w = numpy_helper.from_array(np.zeros((32, 24), np.float32), "w")
        node = helper.make_node("Gemm", ["x", "w"], ["y"], name="g")
    else:
        x = helper.make_tensor_value_info("x", f, [2, 12, 16, 32])
        w = numpy_helper.from_array(np.zeros((32, 8), np.float32), "w")
        node = helper.make_node("MatMul", ["x", "w"], ["y"], name="m")
    y = helper.make_tensor_value_info("y", f, ["u"])
    graph = helper.make_graph([node], kind, [x], [y], initializer=[w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _damage_model(rng: random.Random, model: onnx.ModelProto) -> bytes:
    values = [-(1 << 40), -1, 0, 1, 2, 3, 1 << 20, 1 << 31, 1 << 40, 1 << 62]
    op = rng.randrange(5)
    if op == 0:                                   # an input dimension
        dims = model.graph.input[0].type.tensor_type.shape.dim
        rng.choice(dims).dim_value = rng.choice(values)
    elif op == 1:                                 # an attribute
        node = model.graph.node[0]
        if node.attribute:
            attr = rng.choice(node.attribute)
            if attr.ints:
                attr.ints[rng.randrange(len(attr.ints))] = rng.choice(values)
            else:
                attr.i = rng.choice(values)
    elif op == 2:                                 # a weight dimension
        w = model.graph.initializer[0]
        w.dims[rng.randrange(len(w.dims))] = rng.choice(values[2:6])
    data = model.SerializeToString()
    if op == 3:                                   # truncated
        return data[:rng.randrange(len(data))]
    if op == 4:                                   # flipped bytes
        data = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    return data


def test_fuzz_onnx_models(workdir, fuzz_report):
    rng = random.Random(SEED + 1)
    tally = Tally()
    for i in range(240):
        kind = rng.choice(["conv", "gemm", "matmul"])
        path = workdir / f"m{i % 4}.onnx"
        path.write_bytes(_damage_model(rng, _model(kind)))
        if rng.random() < 0.5:
            argv = ["import", path, "--output", workdir / "imported.m"]
        else:
            argv = ["eval", path, "--dataflow", "gemm_mnk" if kind != "conv" else "kcp_ws", "--num-pes", "64"]
        run_case(tally, f"onnx {i} ({kind})", argv, workdir)
    tally.check("fuzz ONNX models", fuzz_report)


# ---------------------------------------------------------------------------------------- flags
def _tiny(workdir: Path) -> Path:
    path = workdir / "tiny.m"
    path.write_text(NETWORK)
    return path


CODESIGN_BASE = ["--trials", "1", "--num-pes", "4,8", "--simd-lanes", "1", "--l1-size", "64", "--l2-size",
                 "4096", "--noc-bw", "16", "--offchip-bw", "32", "--noc-hop-latency", "1"]


def _flag_cases(rng: random.Random, workdir: Path) -> list[tuple[str, list]]:
    tiny = _tiny(workdir)
    journal = f"journal:///{workdir / 'j.log'}"
    empty = f"journal:///{workdir / 'empty.log'}"
    storage.open_storage(empty)
    cases: list[tuple[str, list]] = []
    eval_flags = ["--num-pes", "--simd-lanes", "--l1-size", "--l2-size", "--noc-bw", "--noc-hop-latency",
                  "--noc-hops", "--offchip-bw", "--hw-file", "--tech", "--dataflow", "--gemm-dataflow",
                  "--format", "--output"]
    map_flags = ["--num-pes", "--levels", "--time-limit", "--seed", "--searcher", "--objective", "--space",
                 "--spatial", "--tiles", "--cpsat-params", "--output", "--report", "--layer", "--l1-size",
                 "--sampler"]
    sweep_flags = ["--num-pes", "--noc-bw", "--l1-size", "--l2-size", "--max-area-mm2", "--max-rows",
                   "--format", "--output", "--noc-hop-latency", "--max-buffer"]
    codesign_flags = ["--objective", "--max-area-mm2", "--max-power-mw", "--max-pes", "--max-buffer",
                      "--trials", "--timeout", "--sampler", "--seed", "--inner", "--inner-space", "--levels",
                      "--inner-time-limit", "--num-pes", "--l1-size", "--noc-hop-latency", "--noc-hops",
                      "--storage", "--output-dir", "--heartbeat", "--grace-period", "--trial-timeout",
                      "--network", "--study", "--storage-file", "--tech"]
    # Every hostile value with every flag of the cheap commands; with a flag drawn at random per value
    # (twice over) where each case runs a search or a study.
    for flag in eval_flags:
        for value in HOSTILE:
            cases.append((f"eval {flag}", ["eval", tiny, "--dataflow", "kcp_ws", "--num-pes", "64", flag,
                                           value]))
    for flag in sweep_flags:
        for value in HOSTILE:
            cases.append((f"sweep {flag}", ["sweep", tiny, "--dataflow", "gemm_mnk", "--layer", "fc",
                                            "--num-pes", "16,64", "--noc-bw", "64", "--l1-size", "64",
                                            "--l2-size", "4096", flag, value]))
    for i, value in enumerate(HOSTILE * 2):
        flag = rng.choice(map_flags)
        cases.append((f"map {flag}", ["map", tiny, "--layer", "fc", "--num-pes", "16", "--time-limit", "2",
                                      flag, value]))
        flag = rng.choice(codesign_flags)
        cases.append((f"codesign {flag}", ["codesign", "--network", tiny, "--study", f"s{i}", "--storage",
                                           journal, "--output-dir", workdir / "best", *CODESIGN_BASE, flag,
                                           value]))
    for value in HOSTILE:
        cases += [
            ("study show", ["study", "show", value, "--storage", journal]),
            ("study show --storage", ["study", "show", "s0", "--storage", value]),
            ("study show --top", ["study", "show", "base", "--storage", journal, "--top", value]),
            ("study export", ["study", "export", "base", "--storage", journal, "--output", value]),
            ("study export csv", ["study", "export", "base", "--storage", journal, "--output",
                                  f"{value}.csv"]),
            ("study plot", ["study", "plot", "base", "--storage", journal, "--output-dir", value]),
            ("study plot --trial", ["study", "plot", "base", "--storage", journal, "--output-dir",
                                    workdir / "plots", "--trial", value]),
            # Never a server: no such study (in a storage with none), or no such storage (both checked
            # before it listens).
            ("dashboard", ["dashboard", value, "--storage", empty]),
            ("dashboard --port", ["dashboard", "--port", value, "--storage",
                                  f"sqlite:///{workdir / 'none.db'}"]),
            ("study resume", ["study", "resume", "base", "--storage", journal, "--trials", value]),
            ("study resume --timeout", ["study", "resume", "base", "--storage", journal, "--timeout", value]),
            ("study list", ["study", "list", "--storage", value]),
            ("study list --storage-file", ["study", "list", "--storage-file", value]),
            ("query", ["query", "--study", "base", "--storage", journal, "--max-area-mm2", value]),
            ("query --objective", ["query", "--study", "base", "--storage", journal, "--objective", value]),
            ("query --write", ["query", "--study", "base", "--storage", journal, "--write", value]),
            ("worker", ["worker", "--study", value, "--storage", journal]),
            ("worker --index", ["worker", "--study", "base", "--storage", journal, "--index", value]),
            ("import --dim", ["import", workdir / "none.onnx", "--dim", f"N={value}"]),
            ("import --dataflow", ["import", workdir / "none.onnx", "--dataflow", value]),
            ("networks", ["networks", "--format", value]),
            ("argv", [value]),
            ("argv", ["--debug", value, value]),
        ]
    return cases


def test_fuzz_hostile_flags(workdir, fuzz_report):
    rng = random.Random(SEED + 2)
    tally = Tally()
    tiny = _tiny(workdir)
    base = ["codesign", "--network", tiny, "--study", "base", "--storage", f"journal:///{workdir / 'j.log'}",
            "--output-dir", workdir / "best", *CODESIGN_BASE, "--trials", "2"]
    assert run_case(tally, "the study the queries read", base) == 0
    for label, argv in _flag_cases(rng, workdir):
        run_case(tally, label, argv, workdir)
    tally.check("fuzz hostile flags", fuzz_report)


def test_fuzz_as_real_processes(workdir, fuzz_report):
    """A few cases through the real entry point: what a user's shell sees."""
    rng = random.Random(SEED + 3)
    tally = Tally()
    tiny = _tiny(workdir)
    mutant = workdir / "mutant.m"
    cases = []
    for i in range(4):
        mutant_i = workdir / f"mutant{i}.m"
        mutant_i.write_bytes(mutate(rng, (ROOT / "costmodel" / "data" / "resnet50_kcp_ws.m").read_text()))
        cases.append(["eval", mutant_i, "--num-pes", "256"])
    mutant.write_bytes(b"\x00\xff" * 100)
    cases += [["eval", mutant, "--dataflow", "kcp_ws"],
              ["map", tiny, "--num-pes", "1000000000000000000"],
              ["codesign", "--network", tiny, "--storage", "sqlite:///", *CODESIGN_BASE],
              ["codesign", "--network", tiny, "--seed", "-1", *CODESIGN_BASE],
              ["eval", tiny, "--dataflow", "kcp_ws", "--hw-file", "/dev/zero"],
              ["eval", tiny, "--dataflow", "kcp_ws", "--output", "."]]
    for argv in cases:
        start = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-m", "studies.cli", *map(str, argv)], cwd=workdir,
                                  capture_output=True, text=True, timeout=PROCESS_LIMIT_S,
                                  env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
            code, text = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired:
            code, text = "timeout", ""
        tally.cases += 1
        tally.codes[code] += 1
        tally.slowest = max(tally.slowest, time.perf_counter() - start)
        shown = "dse " + " ".join(str(a)[:40] for a in argv)
        if "Traceback" in text:
            tally.tracebacks.append(f"{shown}: {text[-300:]}")
        if code == 1:
            tally.exit1.append(f"{shown}: {text[-300:]}")
        if code == "timeout":
            tally.timeouts.append(shown)
        if code == 2:
            assert len([line for line in text.splitlines() if line.startswith("dse ")]) >= 1, text
    tally.check("fuzz real processes", fuzz_report)
