"""Co-design speed and quality.

    python -m benchmarks.codesign [--quick | --smoke] [--case all|single|mix]

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
3. Mix quality: one accelerator for a weighted mix of a CNN, a transformer encoder and an LLM decode
   step (:data:`MIX`: ResNet-50 x2, BERT-base x1, GPT-2 decode x10), objective the weighted latency,
   under the same budget plus a latency target per network (:data:`TARGETS`, at 1000 MHz), on the same
   4,500-design grid and inner search. The exhaustive sweep gives every network's latency on every
   budget-feasible design (shapes shared between networks evaluated once); the optimum is the best
   weighted latency among the designs that meet all three targets. TPE studies (three seeds) report
   their best after 50 and 200 trials, the gap, the seconds per study and the trials spent over budget
   or on repeats; target: within 2 % after 200 trials.
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
from studies import mix
from studies.commands.sweep import sweep_network

HARDWARE = {"num_pes": "32:512:*2", "simd_lanes": "1,2,4", "l1_size": "128:2048:*2",
            "l2_size": "32768:1048576:*2", "noc_bw": "16:256:*2", "offchip_bw": "32,128",
            "noc_hop_latency": "1"}
BUDGET = {"max_area_mm2": 25.0, "max_power_mw": 5000.0}
# A phone's mix: a vision backbone, a language encoder, and many decode steps of a small LLM; the
# energy of the mix is minimised, each network held to a deadline.
MIX = ["resnet50:weight=2", "bert_base", "gpt2_decode:weight=10"]
MIX_OBJECTIVE = "energy"
# Per-network limits (ms at 1000 MHz). The grid's most frugal design misses two of them (ResNet-50 122
# ms, BERT 3.3 s): they bind, and only about one budget-feasible design in twelve meets all three.
TARGETS = [("max_latency_ms", "resnet50", 60.0), ("max_latency_ms", "bert_base", 1000.0),
           ("min_fps", "gpt2_decode", 250.0)]
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


def grid_sweep(spec: cd.CodesignSpec) -> tuple[list[tuple[Accelerator, dict, dict]], int]:
    """Every budget-feasible design of the grid with each network's latency (cycles) and energy (nJ)
    under the per-layer mappings the study's inner objective picks (inf where a layer has no mapping),
    and the grid's size. Each distinct layer shape (over all networks) is evaluated once per (PEs, SIMD
    lanes, NoC bandwidth, off-chip bandwidth)."""
    hw = spec.hardware_space()
    budget = spec.budget_obj()
    values = {p.name: np.array(p.values, dtype=np.int64) for p in hw.params}
    l1, l2 = values["l1_size"], values["l2_size"]
    shapes = spec.shapes()
    members = [(net, [(layer.shape_key, layer.count) for layer in layers])
               for net, _, layers in spec.members()]
    out = []
    for pes in values["num_pes"]:
        spaces = {key: template_union(group[0], int(pes)) for key, group in shapes.items()}
        for simd in values["simd_lanes"]:
            for bw in values["noc_bw"]:
                for off in values["offchip_bw"]:
                    acc = Accelerator(num_pes=int(pes), simd_lanes=int(simd), noc_bw=int(bw),
                                      offchip_bw=int(off), noc_hop_latency=int(values["noc_hop_latency"][0]))
                    best = {key: _layer_best(space, acc, l1, l2, spec.inner_objective)
                            for key, space in spaces.items()}
                    latency = {net: sum(count * best[key][1] for key, count in layers)
                               for net, layers in members}
                    energy = {net: sum(count * best[key][2] for key, count in layers)
                              for net, layers in members}
                    for i, a in enumerate(l1):
                        for j, b in enumerate(l2):
                            design = Accelerator(num_pes=int(pes), simd_lanes=int(simd), l1_size=int(a),
                                                 l2_size=int(b), noc_bw=int(bw), offchip_bw=int(off),
                                                 noc_hop_latency=acc.noc_hop_latency)
                            if not budget.violated(design):
                                out.append((design, {net: float(t[i, j]) for net, t in latency.items()},
                                            {net: float(t[i, j]) for net, t in energy.items()}))
    return out, hw.size()


def grid_optimum(spec: cd.CodesignSpec) -> tuple[float, Accelerator, dict]:
    """The best (weighted) latency over the grid's designs within the budget that map every layer and
    meet every latency target, that design, and counts: the grid's designs, those within the budget
    that map every layer, those of them that also meet every target, and those within 2 % of the
    optimum; with the optimum's latency per network."""
    designs, size = grid_sweep(spec)
    weights, limits = spec.weights(), spec.target_limits_ms()
    best, best_design, best_latency, mapped, meeting, values = np.inf, None, {}, 0, 0, []
    for design, latency, energy in designs:
        if not all(np.isfinite(v) for v in latency.values()):
            continue
        mapped += 1
        if any(mix.violation(mix.cycles_to_ms(latency[net], spec.clock_mhz), ms) > 0
               for net, ms in limits.items()):
            continue
        meeting += 1
        value = latency if spec.objectives[0] == "latency" else energy
        total = sum(weights[net] * value[net] for net in weights)
        values.append(total)
        if total < best:
            best, best_design, best_latency = total, design, latency
    near = sum(v <= 1.02 * best for v in values)          # designs within 2 % of the optimum
    return float(best), best_design, {"designs": size, "budget_feasible": mapped, "meeting_targets": meeting,
                                      "near": near, "latency": best_latency}


def _layer_best(space, acc: Accelerator, l1: np.ndarray, l2: np.ndarray, objective: str = "latency"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over the space's points that fit each (L1, L2) capacity pair, the best on ``objective``
    (latency or energy; ties: the first point, as the exhaustive searcher keeps), with its runtime and
    energy (inf if no point fits)."""
    shape = (len(l1), len(l2))
    best, runtime_at, energy_at = np.full(shape, np.inf), np.full(shape, np.inf), np.full(shape, np.inf)
    for structure, holes in space.chunks(8192):
        cost = evaluate_batch(space.layer, space.structures[structure], accelerator=acc, holes=holes)
        ok = np.asarray(cost.error) == ""
        runtime = np.where(ok, cost.runtime_cycles, np.inf).astype(float)
        energy = np.where(ok, cost.energy_nj, np.inf).astype(float)
        value = runtime if objective == "latency" else energy
        fits = (cost.l1_size_req[:, None, None] <= l1[None, :, None]) & \
            (cost.l2_size_req[:, None, None] <= l2[None, None, :])
        masked = np.where(fits, value[:, None, None], np.inf)
        index = masked.argmin(axis=0)
        chunk = np.take_along_axis(masked, index[None], axis=0)[0]
        better = chunk < best
        best = np.where(better, chunk, best)
        runtime_at = np.where(better, runtime[index], runtime_at)
        energy_at = np.where(better, energy[index], energy_at)
    return best, runtime_at, energy_at


def inner_search_value(spec: cd.CodesignSpec, design: Accelerator) -> tuple[float, dict[str, int]]:
    """The (weighted) latency or energy the study's own inner search finds on one design, and each
    network's latency (cycles)."""
    column = "runtime_cycles" if spec.objectives[0] == "latency" else "energy_nj"
    entries = {key: cd.search_layer(spec, group[0], design) for key, group in spec.shapes().items()}
    value = sum(weight * sum(layer.count * entries[layer.shape_key][column] for layer in layers)
                for _, weight, layers in spec.members())
    latency = {net: sum(layer.count * entries[layer.shape_key]["runtime_cycles"] for layer in layers)
               for net, _, layers in spec.members()}
    return value, latency


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
    column = {"latency": "latency_cycles", "energy": "energy_nj"}[spec.objectives[0]]
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if t.state.name != "COMPLETE":
            continue
        over += str(t.user_attrs.get("infeasible", "")).startswith("budget")
        repeated += "duplicate_of" in t.user_attrs
        if all(v <= 0 for v in t.constraints.values()) and column in t.user_attrs:
            best = min(best, t.user_attrs[column])
        curve.append(best)
    return curve, over, repeated


def study_quality(spec: cd.CodesignSpec, seeds, trials: int, prefix: str) -> dict:
    """The grid's exhaustive optimum, and how close TPE studies come after 50 and ``trials`` trials."""
    out = {}
    column = {"latency": "cycles", "energy": "nj"}[spec.objectives[0]]
    start = time.perf_counter()
    optimum, design, count = grid_optimum(spec)
    out.update({f"{prefix}grid_designs": count["designs"],
                f"{prefix}grid_budget_feasible": count["budget_feasible"]})
    if spec.targets:
        out[f"{prefix}grid_meeting_targets"] = count["meeting_targets"]
    out[f"{prefix}grid_within_2pct_of_optimum"] = count["near"]
    out.update({f"{prefix}grid_exhaustive_seconds": time.perf_counter() - start,
                f"{prefix}grid_optimum_{column}": optimum,
                f"{prefix}grid_optimum_design": design.describe() if design else "none"})
    if design is not None:
        value, latency = inner_search_value(spec, design)
        out[f"{prefix}grid_check_matches_inner_search"] = bool(
            np.isclose(value, optimum, rtol=1e-9, atol=0) and latency == count["latency"])
    gaps50, gaps200, seconds, cpu, wasted = [], [], [], [], [0, 0]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            start, start_cpu = time.perf_counter(), time.process_time()
            curve, over, repeated = study_curve(spec, seed, trials, Path(tmp))
            wasted[0] += over
            wasted[1] += repeated
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            gaps50.append(curve[49] / optimum - 1)
            gaps200.append(curve[-1] / optimum - 1)
            out[f"{prefix}study_seed{seed}_best_after_50"] = curve[49]
            out[f"{prefix}study_seed{seed}_best_after_{trials}"] = curve[-1]
    out.update({f"{prefix}study_trials": trials, f"{prefix}study_seeds": len(seeds),
                f"{prefix}study_gap_after_50_median_pct": 100 * statistics.median(gaps50),
                f"{prefix}study_gap_after_{trials}_median_pct": 100 * statistics.median(gaps200),
                f"{prefix}study_gap_after_{trials}_max_pct": 100 * max(gaps200),
                f"{prefix}study_within_2pct_after_{trials}":
                    f"{sum(g <= 0.02 for g in gaps200)}/{len(seeds)}",
                f"{prefix}study_seconds_median": statistics.median(seconds),
                # CPU seconds of this process: what the study costs, whatever else the machine runs.
                f"{prefix}study_cpu_seconds_median": statistics.median(cpu),
                f"{prefix}study_trials_over_budget": wasted[0],
                f"{prefix}study_trials_on_repeated_designs": wasted[1]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one sweep run, one seed of 100 trials")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that checks the script works")
    parser.add_argument("--case", choices=("all", "single", "mix"), default="all",
                        help="all (default): sweep speed, ResNet-50 and the mix; single: the first two; "
                             "mix: the mix only")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    hardware = SMOKE_HARDWARE if args.smoke else HARDWARE
    seeds, trials = ((0,), 100) if args.quick else ((0,), 50) if args.smoke else ((0, 1, 2), 200)
    out = {}
    if args.case in ("all", "single"):
        out.update(sweep_speed(1 if args.quick or args.smoke else 3, small=args.smoke))
        spec = cd.CodesignSpec.create("resnet50", hardware=hardware, budget=BUDGET, inner="exhaustive",
                                      inner_space="templates")
        out.update(study_quality(spec, seeds, trials, ""))
    if args.case in ("all", "mix"):
        # The smoke grid is small and slow: targets four times looser, so that some design meets them.
        targets = [(kind, net, value * 4 if kind == "max_latency_ms" else value / 4)
                   for kind, net, value in TARGETS] if args.smoke else TARGETS
        spec = cd.CodesignSpec.create(MIX, targets=targets, objectives=MIX_OBJECTIVE, hardware=hardware,
                                      budget=BUDGET, inner="exhaustive", inner_space="templates")
        out["mix"] = f"{spec.describe_networks()}; {len(spec.shapes())} distinct layer shapes"
        out.update(study_quality(spec, seeds, trials, "mix_"))
    for k, v in out.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
