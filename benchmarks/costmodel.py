"""Cost-model speed: single evaluations, batched evaluations, hardware sweeps.

    python -m benchmarks.costmodel [--quick]

Prints ``key: value`` lines. Times are wall-clock on one core; each figure is the best (or median)
of repeated runs because shared machines are noisy. Targets (issue: cost model): <= 1 ms per single
evaluation, >= 500k batched evaluations/s, >= 10M sweep designs/s. MAESTRO's paper reports 0.17M
designs/s for its exploration; the public MAESTRO binary evaluates well under 1,000 designs/s
(``wall_ms_O2`` in the public oracle: median one process per design).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from costmodel import Accelerator, evaluate, evaluate_batch, parse_dataflow, read_network
from costmodel.networks import DATA
from costmodel.sweep import sweep_hardware

ACC = Accelerator(num_pes=256, noc_bw=256, noc_hop_latency=1, l1_size=512, l2_size=131072)
# KC-P weight-stationary with holes: C tile, output-tile rows/columns and the cluster size.
TEMPLATE = parse_dataflow("""
Dataflow {
    SpatialMap(1,1) K; TemporalMap(?c,?c) C; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S;
    TemporalMap(?ty,?ty) Y'; TemporalMap(?tx,?tx) X'; Cluster(?p, P);
    SpatialMap(1,1) C; TemporalMap(Sz(R),1) Y; TemporalMap(Sz(S),1) X; TemporalMap(Sz(R),Sz(R)) R;
    TemporalMap(Sz(S),Sz(S)) S;
}""")


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def single_eval(repeats: int) -> dict[str, float]:
    net = read_network(DATA / "resnet50_kcp_ws.m")
    per_layer = []
    for m in net.layers:
        evaluate(m.layer, m.dataflow, ACC)          # warm-up
        per_layer.append(_best(lambda m=m: evaluate(m.layer, m.dataflow, ACC), repeats))
    return {"single_eval_us": 1e6 * statistics.median(per_layer),
            "single_eval_us_max": 1e6 * max(per_layer), "single_eval_layers": len(per_layer)}


def batched(n: int, repeats: int) -> dict[str, float]:
    layer = next(m.layer for m in read_network(DATA / "resnet50_kcp_ws.m").layers
                 if m.layer.name == "conv2_x_b")              # 3x3, 64 -> 64 channels, 56x56 output
    rng = np.random.default_rng(0)
    c_opts, p_opts = np.array([1, 2, 4, 8, 16, 32, 64]), 2 ** np.arange(9)
    space = len(c_opts) * 56 * 56 * len(p_opts)
    pick = rng.choice(space, size=n, replace=False)           # n distinct designs
    c, rest = np.divmod(pick, 56 * 56 * len(p_opts))
    ty, rest = np.divmod(rest, 56 * len(p_opts))
    tx, p = np.divmod(rest, len(p_opts))
    holes = {"c": c_opts[c], "ty": ty + 1, "tx": tx + 1, "p": p_opts[p]}
    evaluate_batch(layer, TEMPLATE, accelerator=ACC, holes={k: v[:64] for k, v in holes.items()})
    seconds = _best(lambda: evaluate_batch(layer, TEMPLATE, accelerator=ACC, holes=holes), repeats)
    cost = evaluate_batch(layer, TEMPLATE, accelerator=ACC, holes={k: v[:4096] for k, v in holes.items()})
    return {"batched_evals_per_s": n / seconds, "batched_designs": n, "batched_seconds": seconds,
            "batched_valid_fraction": float(np.mean(cost.valid))}


def sweep(repeats: int) -> dict[str, float]:
    net = read_network(DATA / "resnet50_kcp_ws.m")
    m = next(m for m in net.layers if m.layer.name == "conv2_x_b")
    pes = 64 * np.arange(1, 17)                               # 64 .. 1024
    bws = 2 ** np.arange(16)                                  # 1 .. 32768
    l1 = np.arange(1, 65) * 16                                # 16 .. 1024 elements per PE
    l2 = np.arange(1, 65) * 4096                              # 4 Ki .. 256 Ki elements
    acc = Accelerator(noc_hop_latency=1)
    result = sweep_hardware(m.layer, m.dataflow, num_pes=pes, noc_bw=bws, l1_size=l1, l2_size=l2,
                            accelerator=acc)
    seconds = _best(lambda: sweep_hardware(m.layer, m.dataflow, num_pes=pes, noc_bw=bws, l1_size=l1,
                                           l2_size=l2, accelerator=acc), repeats)
    return {"sweep_designs_per_s": result.size / seconds, "sweep_designs": result.size,
            "sweep_seconds": seconds, "sweep_valid_designs": int(result.valid.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and a smaller batch")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    figures = {}
    figures.update(single_eval(repeats))
    figures.update(batched(20_000 if args.quick else 100_000, max(1, repeats // 2)))
    figures.update(sweep(repeats))
    for key, value in figures.items():
        print(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
