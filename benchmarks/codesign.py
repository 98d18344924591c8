"""Co-design speed and quality.

    python -m benchmarks.codesign [--quick]

1. Sweep speed: ``dse sweep``'s engine on ResNet-50 (54 layers, 21 distinct) with the bundled KC-P
   dataflow over a grid of 268M designs (256 PE counts x 64 NoC bandwidths x 128 L1 x 128 L2 sizes,
   MAESTRO's DSE scale: its paper sweeps 480M designs at 0.17M designs/s), with an area budget;
   designs per second, median of 3 runs. Target >= 10M/s on one core.
2. Study quality: ResNet-50 under a fixed budget (25 mm^2, 5 W) on a 4,500-design hardware grid, the
   inner search being the default one (every shipped template with its tile sizes, searched
   exhaustively, latency per layer). The grid's true optimum comes from an exhaustive sweep: runtime
   and buffer requirements do not depend on the L1 and L2 capacities, so each template point is
   evaluated once per (PEs, SIMD lanes, NoC bandwidth, off-chip bandwidth) and its feasibility is then
   broadcast over L1 x L2. A few grid points are checked against the study's own inner search. Then
   TPE studies (three seeds) report their best latency after 50 and 200 trials and the gap to the
   optimum, and the trials spent on designs over budget or already tried (none, by construction);
   target: within 2 % after 200 trials.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

from costmodel import Accelerator, evaluate_batch, read_network
from costmodel.networks import DATA
from spaces.hardware import Budget
from spaces.union import template_union
from studies import codesign as cd
from studies.commands.sweep import sweep_network

HARDWARE = {"num_pes": "32:512:*2", "simd_lanes": "1,2,4", "l1_size": "128:2048:*2",
            "l2_size": "32768:1048576:*2", "noc_bw": "16:256:*2", "offchip_bw": "32,128",
            "noc_hop_latency": "1"}
BUDGET = {"max_area_mm2": 25.0, "max_power_mw": 5000.0}
SMOKE_HARDWARE = {"num_pes": "64,128", "simd_lanes": "1", "l1_size": "512,2048", "l2_size": "131072,262144",
                  "noc_bw": "32,64", "offchip_bw": "128", "noc_hop_latency": "1"}


def sweep_speed(runs: int = 3, *, small: bool = False) -> dict:
    net = read_network(DATA / "resnet50_kcp_ws.m")
    pairs = [(m.layer, m.dataflow) for m in net.layers]
    axes = {"num_pes": np.arange(16, 4097, 16), "noc_bw": np.arange(8, 513, 8),
            "l1_size": np.arange(16, 2049, 16), "l2_size": np.arange(8192, 1048577, 8192)}
    if small:
        axes = {k: v[::8] for k, v in axes.items()}
    designs = int(np.prod([len(a) for a in axes.values()]))
    acc = Accelerator(noc_hop_latency=1)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sweep_network(pairs, acc, axes, Budget(max_area_mm2=100.0))
        times.append(time.perf_counter() - start)
    return {"sweep_designs": designs, "sweep_seconds_median": statistics.median(times),
            "sweep_designs_per_s": designs / statistics.median(times)}


def grid_optimum(spec: cd.CodesignSpec) -> tuple[float, dict, int, int]:
    """The best network latency over the budget-feasible grid, its design, and counts."""
    hw = spec.hardware_space()
    budget = spec.budget_obj()
    values = {p.name: np.array(p.values, dtype=np.int64) for p in hw.params}
    l1, l2 = values["l1_size"], values["l2_size"]
    shapes = list(spec.shapes().values())
    best, best_design, feasible = np.inf, {}, 0
    for pes in values["num_pes"]:
        spaces = [template_union(group[0], int(pes)) for group in shapes]
        for simd in values["simd_lanes"]:
            for bw in values["noc_bw"]:
                for off in values["offchip_bw"]:
                    acc = Accelerator(num_pes=int(pes), simd_lanes=int(simd), noc_bw=int(bw),
                                      offchip_bw=int(off), noc_hop_latency=int(values["noc_hop_latency"][0]))
                    total = np.zeros((len(l1), len(l2)))
                    for group, space in zip(shapes, spaces, strict=True):
                        total += sum(g.count for g in group) * _layer_best(space, acc, l1, l2)
                    for i, a in enumerate(l1):
                        for j, b in enumerate(l2):
                            design = Accelerator(num_pes=int(pes), simd_lanes=int(simd), l1_size=int(a),
                                                 l2_size=int(b), noc_bw=int(bw), offchip_bw=int(off),
                                                 noc_hop_latency=acc.noc_hop_latency)
                            if budget.violated(design) or not np.isfinite(total[i, j]):
                                continue
                            feasible += 1
                            if total[i, j] < best:
                                best, best_design = total[i, j], design
    return float(best), best_design, feasible, hw.size()


def _layer_best(space, acc: Accelerator, l1: np.ndarray, l2: np.ndarray) -> np.ndarray:
    """min runtime over the space's points that fit each (L1, L2) capacity pair (inf if none)."""
    best = np.full((len(l1), len(l2)), np.inf)
    for structure, holes in space.chunks(8192):
        cost = evaluate_batch(space.layer, space.structures[structure], accelerator=acc, holes=holes)
        ok = np.asarray(cost.error) == ""
        runtime = np.where(ok, cost.runtime_cycles, np.inf).astype(float)
        fits = (cost.l1_size_req[:, None, None] <= l1[None, :, None]) & \
            (cost.l2_size_req[:, None, None] <= l2[None, None, :])
        best = np.minimum(best, np.where(fits, runtime[:, None, None], np.inf).min(axis=0))
    return best


def inner_search_latency(spec: cd.CodesignSpec, design: Accelerator) -> int:
    """The network latency the study's own inner search finds on one design."""
    total = 0
    for group in spec.shapes().values():
        entry = cd.search_layer(spec, group[0], design)
        total += sum(g.count for g in group) * entry["runtime_cycles"]
    return total


def study_curve(spec: cd.CodesignSpec, seed: int, trials: int, directory: Path
                ) -> tuple[list[float], int, int]:
    """Best feasible network latency after each trial of one TPE study, and how many trials were spent
    on designs over budget and on designs the study had already tried (both 0 by construction)."""
    spec = cd.CodesignSpec.from_json(spec.to_json())
    spec.seed, spec.trials = seed, trials
    url = f"sqlite:///{directory / f'seed{seed}.db'}"
    study = cd.create_or_load(spec, f"bench-{seed}", url)
    cd.run_worker(f"bench-{seed}", url, trials=trials)
    curve, best, over, repeated = [], np.inf, 0, 0
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if t.state.name != "COMPLETE":
            continue
        over += str(t.user_attrs.get("infeasible", "")).startswith("budget")
        repeated += "duplicate_of" in t.user_attrs
        if all(v <= 0 for v in t.constraints.values()) and "latency_cycles" in t.user_attrs:
            best = min(best, t.user_attrs["latency_cycles"])
        curve.append(best)
    return curve, over, repeated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one sweep run, one seed of 100 trials")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that checks the script works")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = sweep_speed(1 if args.quick or args.smoke else 3, small=args.smoke)
    spec = cd.CodesignSpec.create("resnet50", hardware=SMOKE_HARDWARE if args.smoke else HARDWARE,
                                  budget=BUDGET, inner="exhaustive", inner_space="templates")
    start = time.perf_counter()
    optimum, design, feasible, size = grid_optimum(spec)
    out.update({"grid_designs": size, "grid_budget_feasible": feasible,
                "grid_exhaustive_seconds": time.perf_counter() - start, "grid_optimum_cycles": optimum,
                "grid_optimum_design": design.describe()})
    out["grid_check_matches_inner_search"] = inner_search_latency(spec, design) == optimum
    seeds, trials = ((0,), 100) if args.quick else ((0,), 50) if args.smoke else ((0, 1, 2), 200)
    gaps50, gaps200, seconds, wasted = [], [], [], [0, 0]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            start = time.perf_counter()
            curve, over, repeated = study_curve(spec, seed, trials, Path(tmp))
            wasted[0] += over
            wasted[1] += repeated
            seconds.append(time.perf_counter() - start)
            gaps50.append(curve[49] / optimum - 1)
            gaps200.append(curve[-1] / optimum - 1)
            out[f"study_seed{seed}_best_after_50"] = curve[49]
            out[f"study_seed{seed}_best_after_{trials}"] = curve[-1]
    out.update({"study_trials": trials, "study_seeds": len(seeds),
                "study_gap_after_50_median_pct": 100 * statistics.median(gaps50),
                f"study_gap_after_{trials}_median_pct": 100 * statistics.median(gaps200),
                f"study_gap_after_{trials}_max_pct": 100 * max(gaps200),
                f"study_within_2pct_after_{trials}": f"{sum(g <= 0.02 for g in gaps200)}/{len(seeds)}",
                "study_seconds_median": statistics.median(seconds),
                "study_trials_over_budget": wasted[0], "study_trials_on_repeated_designs": wasted[1]})
    for k, v in out.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
