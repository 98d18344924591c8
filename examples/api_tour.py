"""dataflow-dse from Python: evaluate a layer, map a network, run and query a small co-design study.

    .venv/bin/python examples/api_tour.py [--storage sqlite:///tour.db] [--output-dir DIR]

Every call here is public API, as the README's "Python API" section describes it; ``make test`` runs
this script (tests/test_examples.py). Without ``--storage`` the study lives in a temporary folder, and
without ``--output-dir`` so does the design it writes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from costmodel import Accelerator, Layer, evaluate, evaluate_batch, evaluate_mixed, read_dataflow
from costmodel.networks import bundled_dataflow, resnet50
from search import ExhaustiveSearcher, Problem
from spaces.hardware import Budget
from spaces.union import mapping_space
from studies import codesign, results, winner


def evaluate_a_layer() -> None:
    print("1. One layer, one dataflow, one accelerator")
    layer = Layer.conv("conv3x3", K=64, C=64, R=3, S=3, Y=58, X=58)          # 56x56 output
    kcp_ws = read_dataflow(bundled_dataflow("kcp_ws"))                      # NVDLA-like KC-P
    acc = Accelerator(num_pes=256, noc_bw=256, noc_hop_latency=1, l1_size=512, l2_size=131072)
    cost = evaluate(layer, kcp_ws, acc)
    print(f"   {cost.runtime_cycles:,} cycles, {cost.energy_nj:,.1f} nJ, utilisation "
          f"{cost.utilization:.1%}, valid {cost.valid}")

    # One structure, many designs: a template's holes and hardware fields take arrays.
    template = read_dataflow(bundled_dataflow("kcp_ws_holes"))              # holes ?c and ?p
    batch = evaluate_batch(layer, template, accelerator=acc, holes={"c": [8, 16, 32, 64], "p": 64},
                           noc_bw=[32, 64, 128, 256])
    frame = batch.to_frame()[["runtime_cycles", "energy_nj", "l1_size_req", "valid"]].round(1)
    print("   kcp_ws_holes, ?c = 8, 16, 32, 64 and NoC 32 .. 256 el/cycle:")
    print("\n".join("   " + line for line in frame.to_string().splitlines()))

    # Many structures in one call: design d is dataflows[structure[d]] with row d as its hole values,
    # in the order of that dataflow's holes (rs: ?c, ?k, ?x).
    rs = read_dataflow(bundled_dataflow("rs"))                               # row-stationary (Eyeriss)
    mixed = evaluate_mixed(layer, [template, rs], structure=[0, 0, 1],
                           hole_values=[[16, 64, 0], [64, 64, 0], [16, 16, 8]], accelerator=acc)
    print(f"   one mixed batch (kcp_ws_holes twice, rs once): {list(map(int, mixed.runtime_cycles))} "
          "cycles")


def map_a_network() -> None:
    print("2. The best mapping of every distinct layer shape (ResNet-50's first five), exhaustively")
    acc = Accelerator(num_pes=256, noc_bw=64, noc_hop_latency=1, l1_size=512, l2_size=131072)
    total = 0
    for layer in resnet50().unique_shapes()[:5]:
        space = mapping_space(layer, acc.num_pes, "templates")             # every shipped template
        result = ExhaustiveSearcher(top_k=1).search(Problem(space, acc, ("latency",)))
        best = result.best[0]
        total += layer.count * best.cost.runtime_cycles
        first = str(best.dataflow).split(";")[0].strip()
        print(f"   {layer.name:<10} x{layer.count}: {best.cost.runtime_cycles:>9,} cycles "
              f"({result.status}, {result.evaluations:,} mappings; {first}; ...)")
    print(f"   together, repeats counted: {total:,} cycles")


def run_and_query_a_study(url: str, out: Path) -> None:
    print(f"3. A small co-design study, stored in {url}")
    spec = codesign.CodesignSpec.create(
        "resnet50", objectives="latency", budget={"max_area_mm2": 20.0, "max_power_mw": 4000.0},
        hardware={"num_pes": "64:256:*2", "simd_lanes": "1,2", "l1_size": "256:1024:*2",
                  "l2_size": "65536,262144", "noc_bw": "32:128:*2", "offchip_bw": "64",
                  "noc_hop_latency": "1"},
        trials=6, seed=1)
    study = codesign.create_or_load(spec, "api-tour", url)
    codesign.run_worker("api-tour", url)                   # resumes if the study already has trials
    frame = results.trials_frame(study, spec)              # one row per trial (the export format)
    best, why = results.chosen_row(frame, spec.objectives)
    print(f"   {int(frame.feasible.sum())} feasible of {len(frame)} trials; {why}: "
          f"{results.describe_row(best)}")
    tighter = results.query(frame, Budget(max_area_mm2=10.0), spec.objectives)   # nothing re-run
    print("   best stored design within 10 mm^2: "
          + (results.describe_row(tighter.iloc[0]) if len(tighter) else "none"))
    hw, mapping = winner.write_design(study, spec, study.trials[int(best.trial)], out)
    print(f"   wrote {hw} and {mapping}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", help="study storage URL (default: a temporary SQLite file)")
    parser.add_argument("--output-dir", help="where to write the best design (default: a temporary folder)")
    args = parser.parse_args()
    evaluate_a_layer()
    map_a_network()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.storage or f"sqlite:///{Path(tmp) / 'tour.db'}"
        run_and_query_a_study(url, Path(args.output_dir or Path(tmp) / "best"))


if __name__ == "__main__":
    main()
