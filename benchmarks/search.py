"""Search quality and speed: CP-SAT and Optuna TPE against the exhaustive optimum.

    python -m benchmarks.search [--quick]

On a fixed accelerator (256 PEs, NoC 64 elements/cycle, hop latency 1, L1 512, L2 131072), for layers
of different kinds (ResNet-50 1x1, 3x3 and strided 7x7 convolutions, MobileNetV2 depthwise, VGG16,
BERT-base and GPT-2 GEMMs), each in a free space small enough to enumerate (2 levels, two spatial
candidates, three tile sizes per dimension, three cluster sizes), it finds the latency optimum by
exhaustive enumeration, then measures the gap to it of CP-SAT (time limit 10 s) and of Optuna TPE
(1,000 trials), and the seconds each takes. Then one layer's latency-energy Pareto front, and the
fraction of it NSGA-II and CP-SAT's epsilon-constraint sweep recover. Last, the anchor against a genetic
mapper driving MAESTRO: ResNet-50 CONV2_1_2 on 256 PEs in 10 s (target <= 419,911 cycles).

Targets (issue: mapping search): CP-SAT within 1 % on >= 95 % of the layers with a median under 5 s;
TPE within 5 % after 1,000 trials on >= 80 %.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import numpy as np
import optuna

from costmodel import Accelerator, Layer
from costmodel.networks import builtin
from search import ExhaustiveSearcher, Problem
from search._base import COST_MODEL
from search.cpsat import CpSatSearcher
from search.optuna_search import OptunaSearcher
from spaces import FreeSpace

ACC = Accelerator(num_pes=256, noc_bw=64, noc_hop_latency=1, l1_size=512, l2_size=131072)

LAYERS = (  # (network, layer name, label)
    ("resnet50", "conv1", "ResNet-50 7x7 s2"), ("resnet50", "conv2_1_a", "ResNet-50 1x1 64"),
    ("resnet50", "conv2_x_b", "ResNet-50 3x3 56"), ("resnet50", "conv3_1_b", "ResNet-50 3x3 28"),
    ("resnet50", "conv3_1_proj", "ResNet-50 1x1 s2"), ("resnet50", "conv4_x_a", "ResNet-50 1x1 1024"),
    ("resnet50", "conv5_x_b", "ResNet-50 3x3 7"), ("resnet50", "fc1000", "ResNet-50 FC"),
    ("mobilenetv2", "b1_1_dw", "MobileNetV2 dw 112"), ("mobilenetv2", "b2_x_dw", "MobileNetV2 dw 56"),
    ("mobilenetv2", "b4_x_dw", "MobileNetV2 dw 14"), ("mobilenetv2", "b3_x_expand", "MobileNetV2 1x1 exp"),
    ("vgg16", "conv1_2", "VGG16 3x3 224"), ("vgg16", "conv3_x", "VGG16 3x3 56"),
    ("vgg16", "conv5_x", "VGG16 3x3 14"), ("vgg16", "fc7", "VGG16 FC"),
    ("bert_base", "q_proj", "BERT QKV proj"), ("bert_base", "attn_qk", "BERT QK^T"),
    ("bert_base", "attn_av", "BERT AV"), ("bert_base", "ffn1", "BERT FFN1"),
    ("gpt2_decode", "mlp_fc", "GPT-2 decode FC"),
)

SMOKE = (("vgg16", "fc7", "VGG16 FC"), ("gpt2_decode", "mlp_fc", "GPT-2 decode FC"))
FRONT = ("resnet50", "conv2_x_b", "ResNet-50 3x3 56")


def benchmark_space(layer: Layer) -> FreeSpace:
    """Two levels; two spatial candidates; tiles 1, about sqrt(D) and D; clusters 4, 16, 64."""
    return FreeSpace.coarse(layer, ACC.num_pes)


def _gap(found: float, optimum: float) -> float:
    return (found - optimum) / optimum if math.isfinite(found) else math.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="7 layers, 200 TPE trials, 5 s CP-SAT")
    parser.add_argument("--smoke", action="store_true",
                        help="2 small layers, 50 trials, 2 s CP-SAT (checks the script runs)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.smoke:
        layers, trials, cp_limit, front_layer, front_trials = SMOKE, 50, 2.0, SMOKE[0], 100
    elif args.quick:
        layers, trials, cp_limit, front_layer, front_trials = LAYERS[::3], 200, 5.0, FRONT, 500
    else:
        layers, trials, cp_limit, front_layer, front_trials = LAYERS, 1000, 10.0, FRONT, 2000
    rows = []
    header = (f"{'layer':<22} {'points':>9} {'optimum':>12} {'exh s':>6} {'cpsat gap':>10} {'cp s':>6} "
              f"{'cp status':>9} {'tpe gap':>8} {'tpe s':>6} {'cm% exh':>7} {'cm% cp':>6} {'cm% tpe':>7}")
    print(header)
    print("-" * len(header))
    for net, name, label in layers:
        layer = _layer(net, name)
        problem = Problem(benchmark_space(layer), ACC)
        exact, exh_share = _with_cost_share(ExhaustiveSearcher(chunk=8192), problem)
        optimum = exact.best[0].values[0]
        cp, cp_share = _with_cost_share(CpSatSearcher(time_limit=cp_limit),
                                        Problem(benchmark_space(layer), ACC))
        tpe, tpe_share = _with_cost_share(OptunaSearcher(sampler="tpe", trials=trials, seed=0),
                                          Problem(benchmark_space(layer), ACC))
        cp_gap = _gap(cp.best[0].values[0] if cp.best else math.inf, optimum)
        tpe_gap = _gap(tpe.best[0].values[0] if tpe.best else math.inf, optimum)
        rows.append((label, exact.evaluations, optimum, exact.seconds, cp_gap, cp.seconds, cp.status,
                     tpe_gap, tpe.seconds, exh_share, cp_share, tpe_share))
        print(f"{label:<22} {exact.evaluations:>9,} {optimum:>12,.0f} {exact.seconds:>6.1f} "
              f"{100 * cp_gap:>9.3f}% {cp.seconds:>6.1f} {cp.status:>9} {100 * tpe_gap:>7.2f}% "
              f"{tpe.seconds:>6.1f} {100 * exh_share:>6.1f}% {100 * cp_share:>5.1f}% "
              f"{100 * tpe_share:>6.1f}%", flush=True)
    cp_ok = sum(r[4] <= 0.01 for r in rows)
    tpe_ok = sum(r[7] <= 0.05 for r in rows)
    summary = {
        "search_layers": len(rows),
        "cpsat_within_1pct": f"{cp_ok}/{len(rows)}",
        "cpsat_within_1pct_fraction": cp_ok / len(rows),
        "cpsat_median_s": statistics.median(r[5] for r in rows),
        "cpsat_proven_optimal": sum(r[6] == "optimal" for r in rows),
        "cpsat_max_gap_pct": 100 * max(r[4] for r in rows),
        "tpe_trials": trials,
        "tpe_within_5pct": f"{tpe_ok}/{len(rows)}",
        "tpe_within_5pct_fraction": tpe_ok / len(rows),
        "tpe_median_s": statistics.median(r[8] for r in rows),
        "tpe_median_gap_pct": 100 * statistics.median(r[7] for r in rows),
        "exhaustive_median_s": statistics.median(r[3] for r in rows),
        "exhaustive_median_points": statistics.median(r[1] for r in rows),
        # The cost model's share of each search's CPU time (target <= 30 % for mapping search).
        "cost_model_share_exhaustive_median": statistics.median(r[9] for r in rows),
        "cost_model_share_cpsat_median": statistics.median(r[10] for r in rows),
        "cost_model_share_tpe_median": statistics.median(r[11] for r in rows),
    }
    summary.update(pareto_recovery(front_layer, trials=front_trials, cp_limit=cp_limit))
    if not args.smoke:
        summary.update(anchor())
    print()
    for k, v in summary.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    sys.stdout.flush()


def _with_cost_share(searcher, problem):
    """(search result, the fraction of its CPU seconds spent in the cost model)."""
    before, start = COST_MODEL.cpu_s, time.process_time()
    result = searcher.search(problem)
    spent = time.process_time() - start
    return result, (COST_MODEL.cpu_s - before) / spent if spent > 0 else 0.0


def anchor(time_limit: float = 10.0) -> dict:
    """ResNet-50 CONV2_1_2 (K 64, C 64, 3x3, 56x56 input) on 256 PEs, hop latency 1, everything else
    unlimited, latency: a genetic mapper driving MAESTRO reached 419,911 cycles after about 1,000
    evaluations (the PE-peak bound is 419,904). CP-SAT on the default free space (2 levels)."""
    layer = Layer.conv("CONV2_1_2", K=64, C=64, R=3, S=3, Y=56, X=56)
    acc = Accelerator(num_pes=256, noc_hop_latency=1)
    result = CpSatSearcher(time_limit=time_limit).search(Problem(FreeSpace(layer, 256), acc))
    return {"anchor_conv2_1_2_cycles": int(result.best[0].values[0]), "anchor_target_cycles": 419911,
            "anchor_pe_peak_cycles": -(-layer.true_macs // 256), "anchor_seconds": result.seconds,
            "anchor_evaluations": result.evaluations}


def _layer(net: str, name: str) -> Layer:
    return next(layer for layer in builtin(net).layers if layer.name == name)


def pareto_recovery(which: tuple[str, str, str], *, trials: int, cp_limit: float) -> dict:
    """The latency-energy front of one layer: how much of it NSGA-II and CP-SAT recover."""
    layer = _layer(*which[:2])
    objectives = ("latency", "energy")
    exact = ExhaustiveSearcher(chunk=8192).search(Problem(benchmark_space(layer), ACC, objectives))
    front = {f.values for f in exact.pareto}
    nsga = OptunaSearcher(sampler="nsga2", trials=trials, seed=0).search(
        Problem(benchmark_space(layer), ACC, objectives))
    cp = CpSatSearcher(time_limit=cp_limit).search(Problem(benchmark_space(layer), ACC, objectives))

    def recovered(result) -> float:
        return len(front & {f.values for f in result.pareto}) / len(front)

    return {"pareto_layer": which[2], "pareto_front_size": len(front), "pareto_nsga2_trials": trials,
            "pareto_nsga2_recovered": recovered(nsga), "pareto_cpsat_recovered": recovered(cp),
            "pareto_cpsat_seconds": cp.seconds, "pareto_exhaustive_points": exact.evaluations,
            "pareto_nsga2_hypervolume_ratio": _hv_ratio(exact, nsga),
            "pareto_cpsat_hypervolume_ratio": _hv_ratio(exact, cp)}


def _hv_ratio(exact, other) -> float:
    from search import hypervolume_2d

    ref = np.array([max(f.values[0] for f in exact.pareto), max(f.values[1] for f in exact.pareto)]) * 1.1
    full = hypervolume_2d(np.array([f.values for f in exact.pareto]), ref)
    mine = hypervolume_2d(np.array([f.values for f in other.pareto]), ref) if other.pareto else 0.0
    return mine / full if full else 0.0


if __name__ == "__main__":
    main()
