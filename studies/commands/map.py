"""``dse map``: find the best dataflow of every layer on one accelerator."""

from __future__ import annotations

import argparse
import sys
import time

from costmodel import Layer, format_network, limits, set_jobs
from costmodel.errors import InfeasibleError, SpecError
from costmodel.workloads import LoadedNetwork, load_network
from search import ExhaustiveSearcher, Problem, SearchResult, parse_objectives
from search.exhaustive import text_progress
from search.optuna_search import SAMPLERS, OptunaSearcher
from spaces import Constraints, FreeSpace
from spaces.union import mapping_space

from ..outputs import check_output_file, open_output, write_text
from ..tables import write_rows
from .common import (
    accelerator_from_args,
    add_hardware_arguments,
    add_jobs_argument,
    count_arg,
    levels_arg,
    seconds_or_zero,
    seed_arg,
)

AUTO_EXHAUSTIVE_LIMIT = 2_000_000

REPORT_COLUMNS = ("layer", "count", "searcher", "status", "objective", "value", "bound", "gap",
                  "evaluations", "seconds", "runtime_cycles", "energy_nj", "num_macs", "true_macs",
                  "utilization", "l1_size_req", "l2_size_req", "peak_noc_bw_req", "valid", "violations",
                  "pareto_index", "dataflow")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "map", help="search the best dataflow of each layer",
        description="Search the best mapping (dataflow) of every layer of a MAESTRO network file on one "
                    "accelerator, with CP-SAT, Optuna or exhaustive enumeration; layers with identical "
                    "shapes are searched once. Writes the best mappings as a MAESTRO .m file.")
    p.add_argument("file", metavar="NETWORK",
                   help="a MAESTRO .m network file (its layers' own dataflows are ignored), an ONNX model "
                        "or a built-in network name (dse networks)")
    p.add_argument("--layer", action="append", metavar="NAME", help="only these layers (repeatable)")
    add_hardware_arguments(p)
    add_jobs_argument(p)
    p.add_argument("--searcher", choices=("auto", "cpsat", "optuna", "exhaustive"), default="auto",
                   help="auto (default): cpsat on free spaces with dividing tiles, exhaustive on templates "
                        f"of up to {AUTO_EXHAUSTIVE_LIMIT:,} points, optuna otherwise")
    p.add_argument("--objective", default="latency",
                   help="latency, energy, edp, or a comma-separated pair such as latency,energy (Pareto)")
    p.add_argument("--space", default="free", metavar="free|coarse|templates|TEMPLATE",
                   help="'free' (default); 'coarse' (a small free space: tiles 1, ~sqrt and whole); "
                        "'templates' (every shipped template that applies); or one dataflow template with "
                        "?holes, by file or shipped name (kcp_ws_holes, rs, yxp_os, xp_ws, nlr, "
                        "gemm_mnk_holes)")
    p.add_argument("--levels", type=levels_arg, default=2, help="cluster levels of the free space (1-3)")
    p.add_argument("--spatial", help="comma-separated dimensions that may be mapped spatially")
    p.add_argument("--tiles", choices=("divisors", "any"), default="divisors",
                   help="tile sizes: divisors (default) or any size (edge tiles)")
    p.add_argument("--enforce-bw", action="store_true",
                   help="also require the NoC and off-chip bandwidth requirements to be met")
    p.add_argument("--time-limit", type=seconds_or_zero, default=10.0, metavar="S",
                   help="seconds per layer shape (0: none, for exhaustive and optuna)")
    p.add_argument("--trials", type=count_arg, default=1000, help="Optuna trials per layer shape")
    p.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="Optuna sampler (default tpe; nsga2 for several objectives)")
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--cpsat-params", metavar="TEXT",
                   help="OR-Tools CP-SAT parameters as text proto, e.g. "
                        "'max_time_in_seconds:10,num_workers:2'")
    p.add_argument("--output", metavar="BEST.m", help="write the best mapping of every layer here")
    p.add_argument("--report", metavar="REPORT.csv", help="write the per-layer report (CSV) here")
    p.set_defaults(run=run)


def _space(args, layer: Layer, num_pes: int):
    if args.space == "free":
        spatial = args.spatial.split(",") if args.spatial else None
        return FreeSpace(layer, num_pes, levels=args.levels, spatial=spatial, tiles=args.tiles)
    return mapping_space(layer, num_pes, args.space, levels=args.levels, tiles=args.tiles)


def _points(space) -> int:
    """The space's size, or for free spaces its configurations (a lower bound): counting a free
    space's points walks all of it."""
    return space.config_count() if isinstance(space, FreeSpace) else space.count()


def _searcher_name(args, space) -> str:
    if args.searcher != "auto":
        return args.searcher
    if isinstance(space, FreeSpace) and space.tiles == "divisors":
        return "cpsat"
    return "exhaustive" if _points(space) <= AUTO_EXHAUSTIVE_LIMIT else "optuna"


def _searcher(args, name: str, objectives):
    progress = text_progress() if sys.stderr.isatty() else None
    if name == "exhaustive":
        return ExhaustiveSearcher(time_limit=args.time_limit if args.time_limit > 0 else None,
                                  progress=progress)
    if name == "optuna":
        sampler = args.sampler or ("nsga2" if len(objectives) > 1 else "tpe")
        return OptunaSearcher(sampler=sampler, trials=args.trials, seed=args.seed,
                              time_limit=args.time_limit if args.time_limit > 0 else None)
    from search.cpsat import CpSatSearcher  # OR-Tools: only for the searches that use it

    return CpSatSearcher(time_limit=args.time_limit, params=args.cpsat_params, seed=args.seed)


def _select(args, net: LoadedNetwork) -> list[Layer]:
    layers = [layer for layer, _ in net.layers if not args.layer or layer.name in args.layer]
    if args.layer:
        missing = sorted(set(args.layer) - {layer.name for layer in layers})
        if missing:
            raise SpecError(f"no layer named {', '.join(missing)} in {args.file}", key="--layer")
    if not layers:
        raise SpecError(f"{args.file} has no layers", key="file")
    return layers


def _check_cpsat_params(text: str) -> None:
    """Refuse bad CP-SAT parameters here, in one line (OR-Tools' own parser prints C++ log lines)."""
    from google.protobuf import text_format
    from ortools.sat import sat_parameters_pb2

    try:
        text_format.Parse(text, sat_parameters_pb2.SatParameters())
    except text_format.ParseError as exc:
        raise SpecError(f"not valid CP-SAT parameters ({exc}); e.g. 'max_time_in_seconds:10,num_workers:2'",
                        key="--cpsat-params") from None


def run(args: argparse.Namespace) -> int:
    set_jobs(args.jobs)
    for flag, path in (("--output", args.output), ("--report", args.report)):
        if path:
            check_output_file(path, flag)      # before searching, not after
    if args.cpsat_params:
        _check_cpsat_params(args.cpsat_params)
    acc = accelerator_from_args(args)
    objectives = parse_objectives(args.objective)
    constraints = Constraints(enforce_noc_bw=args.enforce_bw, enforce_offchip_bw=args.enforce_bw)
    net = load_network(args.file)
    for op in net.unsupported:
        print(f"dse map: {args.file}: operator not imported: {op}", file=sys.stderr)
    layers = _select(args, net)
    shapes: dict[tuple, list[Layer]] = {}
    for layer in layers:
        shapes.setdefault(layer.shape_key, []).append(layer)
    results: dict[tuple, SearchResult] = {}
    failures = []
    start = time.perf_counter()
    for n, (key, group) in enumerate(shapes.items(), start=1):
        layer = group[0]
        names = ", ".join(g.name for g in group)
        try:
            space = _space(args, layer, acc.num_pes)
        except SpecError as exc:          # e.g. a template that does not fit this layer: skip it
            result = SearchResult(args.searcher, objectives, [], "error", 0, 0.0,
                                  message=f"layer {names}: {exc}")
        else:
            name = _searcher_name(args, space)
            if name == "exhaustive" and not args.time_limit and _points(space) > limits.MAX_UNTIMED_POINTS:
                result = SearchResult(name, objectives, [], "error", 0, 0.0, message=(
                    f"layer {names}: the space has over {_points(space):,} points: an exhaustive search "
                    f"without --time-limit would run for hours (limit {limits.MAX_UNTIMED_POINTS:,}); give "
                    "--time-limit or narrow the space"))
            else:
                problem = Problem(space, acc, objectives, constraints)
                result = _searcher(args, name, objectives).search(problem)
        results[key] = result
        print(f"[{n}/{len(shapes)}] {names}: {_summary(result)}", file=sys.stderr)
        if not result.best:
            failures.append(result.message or f"layer {names}: no feasible mapping found")
    rows = _report_rows(layers, results)
    if args.report:
        with open_output(args.report, "--report") as out:
            write_rows(out, rows, REPORT_COLUMNS, "csv")
    if args.output:
        pairs = [(layer, results[layer.shape_key].best[0].dataflow) for layer in layers
                 if results[layer.shape_key].best]
        used = ", ".join(sorted({r.searcher for r in results.values()}))
        write_text(args.output, format_network(net.name or "mapped", pairs,
                                               header=f"best mappings found by dse map ({used}, "
                                                      f"{args.objective})"), "--output")
    _print_table(rows, objectives)
    print(f"searched {len(shapes)} distinct layer shape(s) in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    if failures:
        for line in failures:
            print(f"dse map: {line}", file=sys.stderr)
        return 2
    return 0


def _summary(result: SearchResult) -> str:
    if not result.best:
        return f"{result.status} ({result.message})" if result.message else result.status
    v = result.best[0].values
    parts = [f"{result.searcher}: {result.status}", ", ".join(f"{o} {x:,.6g}" for o, x in zip(
        result.objectives, v, strict=True))]
    if result.gap is not None:
        parts.append(f"gap {100 * result.gap:.3g}%")
    parts.append(f"{result.evaluations:,} evaluations in {result.seconds:.1f} s")
    return "; ".join(parts)


def _report_rows(layers: list[Layer], results: dict) -> list[dict]:
    rows = []
    for layer in layers:
        res = results[layer.shape_key]
        designs = res.pareto if res.pareto else res.best[:1]
        if not designs:
            rows.append({"layer": layer.name, "count": layer.count, "searcher": res.searcher,
                         "status": res.status, "evaluations": res.evaluations, "seconds": res.seconds,
                         "violations": res.message})
            continue
        for i, f in enumerate(designs):
            c = f.cost
            rows.append({
                "layer": layer.name, "count": layer.count, "searcher": res.searcher, "status": res.status,
                "objective": ",".join(res.objectives), "value": f.values[0],
                "bound": res.bound, "gap": res.gap, "evaluations": res.evaluations,
                "seconds": round(res.seconds, 3), "runtime_cycles": c.runtime_cycles,
                "energy_nj": c.energy_nj, "num_macs": c.num_macs, "true_macs": c.true_macs,
                "utilization": c.utilization, "l1_size_req": c.l1_size_req, "l2_size_req": c.l2_size_req,
                "peak_noc_bw_req": c.peak_noc_bw_req, "valid": c.valid, "violations": c.violations,
                "pareto_index": i if res.pareto else None, "dataflow": str(f.dataflow)})
    return rows


def _print_table(rows: list[dict], objectives) -> None:
    from ..tables import format_table

    columns = (("layer", "layer", None), ("x", "count", "d"), ("searcher", "searcher", None),
               ("status", "status", None),
               ("runtime (cycles)", "runtime_cycles", ","), ("energy (nJ)", "energy_nj", ",.1f"),
               ("util", "utilization", "%"), ("L1 req", "l1_size_req", ","), ("L2 req", "l2_size_req", ","),
               ("gap", "gap", ".2%"), ("evals", "evaluations", ","), ("s", "seconds", ".1f"))
    sys.stdout.write(format_table(rows, columns))
    good = [r for r in rows if r.get("runtime_cycles") is not None and not r.get("pareto_index")]
    if good and len(objectives) == 1:
        total = sum(r["runtime_cycles"] * r["count"] for r in good)
        energy = sum(r["energy_nj"] * r["count"] for r in good)
        missing = sum(r["count"] for r in rows if r.get("runtime_cycles") is None)
        note = f" ({missing} layer(s) without a mapping not counted)" if missing else ""
        sys.stdout.write(f"network total (repeats counted): {total:,} cycles, {energy:,.1f} nJ{note}\n")


__all__ = ["InfeasibleError", "add_parser", "run"]
