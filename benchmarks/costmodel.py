"""Cost-model speed: the compiled kernel against the numpy reference engine, side by side.

    python -m benchmarks.costmodel [--quick]

Each figure is measured for both engines in the same run (median of repeated timings, so the ratio
holds on any machine, however loaded), once with one worker thread and once with every core:

* ``single_eval_us``: one ``evaluate`` call, median over the 30 distinct layers of the bundled
  ResNet-50 kcp_ws file;
* ``batched_evals_per_s``: one structure (KC-P weight-stationary with holes), 100,000 tile sizes;
* ``mixed_evals_per_s``: 500 structures of the free 2-level space x 10 points, one call (what
  CP-SAT rings and exhaustive chunks produce);
* ``sweep_designs_per_s``: one mapping on a 16 x 16 x 64 x 64 hardware grid (``sweep_hardware``);
* ``jit_compile_s``: the kernel's first call in a new process with an empty cache; ``jit_load_s``
  the same with the cache filled; ``cli_eval_one_layer_s``: ``dse eval`` of one layer, whole process.

Wall seconds and CPU seconds are both printed. Targets (issue 9, one core): single <= 100 us,
batched >= 1,000,000/s, mixed >= 200,000/s, sweep >= 100M/s, CLI <= 0.5 s. MAESTRO's paper reports
0.17M designs/s for its exploration; the public MAESTRO binary evaluates well under 1,000 designs/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from costmodel import (
    Accelerator,
    evaluate,
    evaluate_batch,
    evaluate_mixed,
    parse_dataflow,
    read_network,
    set_jobs,
)
from costmodel.networks import DATA
from costmodel.sweep import sweep_hardware
from spaces import FreeSpace

ACC = Accelerator(num_pes=256, noc_bw=256, noc_hop_latency=1, l1_size=512, l2_size=131072)
ENGINES = ("reference", "compiled")
REPO = Path(__file__).resolve().parents[1]
# KC-P weight-stationary with holes: C tile, output-tile rows/columns and the cluster size.
TEMPLATE = parse_dataflow("""
Dataflow {
    SpatialMap(1,1) K; TemporalMap(?c,?c) C; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(?ty,?ty) Y'; TemporalMap(?tx,?tx) X'; Cluster(?p, P);
    SpatialMap(1,1) C; TemporalMap(Sz(R),1) Y; TemporalMap(Sz(S),1) X; TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
}""")


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()`` over ``repeats`` runs (after one warm-up)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def _layer(name: str):
    return next(m.layer for m in read_network(DATA / "resnet50_kcp_ws.m").layers if m.layer.name == name)


def single_eval(engine: str, repeats: int) -> dict[str, float]:
    net = read_network(DATA / "resnet50_kcp_ws.m")
    per_layer = [_timed(lambda m=m: evaluate(m.layer, m.dataflow, ACC, engine=engine), repeats)
                 for m in net.layers]
    return {"single_eval_us": 1e6 * statistics.median(w for w, _ in per_layer),
            "single_eval_cpu_us": 1e6 * statistics.median(c for _, c in per_layer),
            "single_eval_layers": len(per_layer)}


def _batched_holes(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    c_opts, p_opts = np.array([1, 2, 4, 8, 16, 32, 64]), 2 ** np.arange(9)
    space = len(c_opts) * 56 * 56 * len(p_opts)
    pick = rng.choice(space, size=n, replace=False)           # n distinct designs
    c, rest = np.divmod(pick, 56 * 56 * len(p_opts))
    ty, rest = np.divmod(rest, 56 * len(p_opts))
    tx, p = np.divmod(rest, len(p_opts))
    return {"c": c_opts[c], "ty": ty + 1, "tx": tx + 1, "p": p_opts[p]}


def batched(engine: str, n: int, repeats: int) -> dict[str, float]:
    layer = _layer("conv2_x_b")                                # 3x3, 64 -> 64 channels, 56x56 output
    holes = _batched_holes(n)
    wall, cpu = _timed(lambda: evaluate_batch(layer, TEMPLATE, accelerator=ACC, holes=holes, engine=engine),
                       repeats)
    return {"batched_evals_per_s": n / wall, "batched_evals_per_cpu_s": n / cpu, "batched_designs": n}


def _mixed_points(structures: int, per: int):
    layer = _layer("conv2_x_b")
    space = FreeSpace(layer, ACC.num_pes)
    rng = np.random.default_rng(1)
    by: dict[int, list] = {}
    for p in space.sample(rng, 40 * structures):
        by.setdefault(p.structure, []).append(p)
    chosen = sorted(by, key=lambda s: -len(by[s]))[:structures]
    index, rows = [], []
    for k, s in enumerate(chosen):
        names = space.structures[s].holes
        for p in (by[s] * per)[:per]:
            m = p.value_map()
            index.append(k)
            rows.append([m[h] for h in names])
    width = max(len(r) for r in rows)
    values = np.array([r + [0] * (width - len(r)) for r in rows], dtype=np.int64)
    order = rng.permutation(len(index))                        # interleaved, as searchers produce them
    return layer, [space.structures[s] for s in chosen], np.array(index)[order], values[order]


def mixed(engine: str, structures: int, per: int, repeats: int) -> dict[str, float]:
    layer, flows, index, values = _mixed_points(structures, per)
    wall, cpu = _timed(lambda: evaluate_mixed(layer, flows, index, values, accelerator=ACC, engine=engine),
                       repeats)
    return {"mixed_evals_per_s": len(index) / wall, "mixed_evals_per_cpu_s": len(index) / cpu,
            "mixed_designs": len(index), "mixed_structures": len(flows)}


def sweep(engine: str, repeats: int) -> dict[str, float]:
    net = read_network(DATA / "resnet50_kcp_ws.m")
    m = next(m for m in net.layers if m.layer.name == "conv2_x_b")
    grid = {"num_pes": 64 * np.arange(1, 17), "noc_bw": 2 ** np.arange(16),
            "l1_size": np.arange(1, 65) * 16, "l2_size": np.arange(1, 65) * 4096}
    acc = Accelerator(noc_hop_latency=1)
    result = sweep_hardware(m.layer, m.dataflow, accelerator=acc, engine=engine, **grid)
    wall, cpu = _timed(lambda: sweep_hardware(m.layer, m.dataflow, accelerator=acc, engine=engine, **grid),
                       repeats)
    return {"sweep_designs_per_s": result.size / wall, "sweep_designs_per_cpu_s": result.size / cpu,
            "sweep_designs": result.size, "sweep_valid_designs": int(result.valid.sum())}


def _python(code: str, env: dict) -> float:
    """Seconds the snippet reports (it times itself, after its imports)."""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def jit_times(cold: bool = True) -> dict[str, float]:
    code = ("import time\nfrom costmodel import Accelerator, evaluate, read_network\n"
            "from costmodel.networks import DATA\n"
            "m = read_network(DATA / 'resnet50_kcp_ws.m').layers[3]\n"
            "t = time.perf_counter(); evaluate(m.layer, m.dataflow, Accelerator(num_pes=256))\n"
            "print(time.perf_counter() - t)\n")
    if not cold:                       # the user's cache, already filled by this run
        return {"jit_load_s": _python(code, dict(os.environ))}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        return {"jit_compile_s": _python(code, env), "jit_load_s": _python(code, env)}


def cli_eval(repeats: int) -> dict[str, float]:
    net = read_network(DATA / "resnet50_kcp_ws.m")
    m = net.layers[3]
    from costmodel import format_network

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one_layer.m"
        path.write_text(format_network(net.name, [(m.layer, m.dataflow)]))
        dse = Path(sys.executable).with_name("dse")
        cmd = [str(dse) if dse.exists() else sys.executable, *([] if dse.exists() else ["-m", "studies.cli"]),
               "eval", str(path), "--num-pes", "256", "--noc-bw", "256"]
        times = []
        for _ in range(repeats + 1):
            t = time.perf_counter()
            subprocess.run(cmd, cwd=tmp, capture_output=True, check=True)
            times.append(time.perf_counter() - t)
    return {"cli_eval_one_layer_s": statistics.median(times[1:])}


def measure(repeats: int, n_batched: int, mixed_shape: tuple[int, int]) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for engine in ENGINES:
        # The reference engine gets fewer designs and runs of the slow figures (its cost per design
        # does not fall with batch size, and it is the slower engine by far).
        n = n_batched if engine == "compiled" else n_batched // 10
        slow_repeats = repeats if engine == "compiled" else 2
        set_jobs(1)
        f = single_eval(engine, repeats)
        f.update(batched(engine, n, repeats))
        f.update(mixed(engine, *mixed_shape, slow_repeats))
        f.update(sweep(engine, repeats))
        set_jobs(None)
        for key, value in {**batched(engine, n, repeats), **mixed(engine, *mixed_shape, slow_repeats),
                           **sweep(engine, repeats)}.items():
            if key.endswith("_per_s"):
                f[key.replace("_per_s", "_per_s_all_cores")] = value
        figures[engine] = f
    return figures


TARGETS = {"single_eval_us": ("<=", 100), "batched_evals_per_s": (">=", 1_000_000),
           "mixed_evals_per_s": (">=", 200_000), "sweep_designs_per_s": (">=", 100_000_000),
           "cli_eval_one_layer_s": ("<=", 0.5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller batches")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny batches, one repetition, no cold compile (checks the script runs)")
    args = parser.parse_args()
    repeats = 1 if args.smoke else 3 if args.quick else 5
    n_batched = 2_000 if args.smoke else 20_000 if args.quick else 100_000
    mixed_shape = (20, 5) if args.smoke else (100, 10) if args.quick else (500, 10)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# cost model, reference (numpy) vs compiled (Numba) engine; medians of {repeats} runs; "
          f"{cores} cores; 'all cores' = set_jobs(None)")
    figures = measure(repeats, n_batched, mixed_shape)
    ref, com = figures["reference"], figures["compiled"]
    print(f"{'figure':<36} {'reference':>14} {'compiled':>14} {'ratio':>9}  target")
    for key in com:
        r, c = ref.get(key), com[key]
        if key.endswith(("_designs", "_layers", "_structures")):
            print(f"{key:<36} {r:>14,} {c:>14,}")
            continue
        ratio = (r / c if key.endswith("_us") else c / r) if r else float("nan")
        print(f"{key:<36} {r:>14,.6g} {c:>14,.6g} {ratio:>8.1f}x  {_target(key, c)}")
    for key, value in {**jit_times(cold=not args.smoke), **cli_eval(repeats)}.items():
        print(f"{key:<36} {'':>14} {value:>14.3f} {'':>9}  {_target(key, value)}")


def _target(key: str, value: float) -> str:
    if key not in TARGETS:
        return ""
    op, target = TARGETS[key]
    met = value <= target if op == "<=" else value >= target
    return f"{op} {target:,} ({'met' if met else 'not met'})"


if __name__ == "__main__":
    main()
