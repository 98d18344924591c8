"""``dse map``: find the best dataflow of every layer on one accelerator.

Each distinct layer shape is searched once (``search.mapper.map_layer``: the best shipped template as
the incumbent, then the requested space), shapes in parallel over ``--jobs`` processes. Every search
stops on a budget of work, so the answer is the same for any ``--jobs`` and on a busy machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from costmodel import Layer, format_network, set_jobs
from costmodel.errors import InfeasibleError, SpecError
from costmodel.workloads import LoadedNetwork, load_network
from search import SearchResult, parse_objectives
from search._base import CPSAT_EVALUATIONS, CPSAT_SOLVER_TIME, STOP_REASONS
from search.mapper import AUTO_EXHAUSTIVE_LIMIT, MapSettings, map_layer
from search.optuna_search import SAMPLERS

from ..outputs import check_output_file, open_output, write_text
from ..tables import write_rows
from .common import (
    accelerator_from_args,
    add_gemm_dataflow_argument,
    add_hardware_arguments,
    add_jobs_argument,
    count_arg,
    gemm_dataflow_of,
    gemm_hint,
    levels_arg,
    positive_float,
    seconds,
    seed_arg,
)

REPORT_COLUMNS = ("layer", "count", "searcher", "status", "stop", "objective", "value", "bound", "gap",
                  "evaluations", "seen", "seconds", "cpu_seconds", "runtime_cycles", "energy_nj", "num_macs",
                  "true_macs", "utilization", "l1_size_req", "l2_size_req", "peak_noc_bw_req", "valid",
                  "violations", "pareto_index", "dataflow")
EXIT_NO_MAPPING = 3          # a budget ended before any feasible mapping of some layer was found
LARGE_GAP = 0.05             # above this, the summary says what to change


def add_parser(subparsers) -> None:
    evaluations, solver_time = CPSAT_EVALUATIONS, CPSAT_SOLVER_TIME
    p = subparsers.add_parser(
        "map", help="search the best dataflow of each layer",
        description="Search the best mapping (dataflow) of every layer of a MAESTRO network file on one "
                    "accelerator, with CP-SAT, Optuna or exhaustive enumeration; layers with identical "
                    "shapes are searched once, in parallel. Every search starts from the best shipped "
                    "template that fits and stops on a budget of work, so the same command gives the "
                    "same mappings on any machine. Writes the best mappings as a MAESTRO .m file.",
        epilog="exit status: 0 every layer mapped; 2 bad input, or a layer proven to have no mapping "
               "that fits (the binding constraint is named); 3 a budget ended before any feasible "
               "mapping of some layer was found (raise --evaluations or --trials).")
    p.add_argument("file", metavar="NETWORK",
                   help="a MAESTRO .m network file (its layers' own dataflows are ignored), an ONNX model "
                        "or a built-in network name (dse networks)")
    p.add_argument("--layer", action="append", metavar="NAME", help="only these layers (repeatable)")
    add_hardware_arguments(p)
    add_jobs_argument(p)
    p.add_argument("--searcher", choices=("auto", "cpsat", "optuna", "exhaustive"), default="auto",
                   help="auto (default): cpsat on free spaces with dividing tiles, exhaustive on other "
                        f"spaces of up to {AUTO_EXHAUSTIVE_LIMIT:,} points, optuna otherwise")
    p.add_argument("--objective", default="latency",
                   help="latency (default), energy, edp, or a comma-separated pair such as latency,energy "
                        "(Pareto)")
    p.add_argument("--space", default="free", metavar="free|coarse|templates|TEMPLATE",
                   help="'free' (default); 'coarse' (a small free space: tiles 1, ~sqrt and whole); "
                        "'templates' (every shipped template that applies); or one dataflow template with "
                        "?holes, by file or shipped name (kcp_ws_holes, rs, yxp_os, xp_ws, nlr, "
                        "gemm_mnk_holes)")
    add_gemm_dataflow_argument(p, text="the space of the GEMM layers when --space names a convolution's "
                                       "template: a GEMM template (gemm_mnk_holes) or dataflow file "
                                       "(default: --space for every layer)")
    p.add_argument("--levels", type=levels_arg, default=2,
                   help="cluster levels of the free space, 1-3 (default 2; 3 is seeded with the best of 2)")
    p.add_argument("--spatial", help="comma-separated dimensions that may be mapped spatially (default all)")
    p.add_argument("--tiles", choices=("divisors", "any"), default="divisors",
                   help="tile sizes: divisors (default) or any size (edge tiles)")
    p.add_argument("--enforce-bw", action="store_true",
                   help="also require the NoC and off-chip bandwidth requirements to be met")
    b = p.add_argument_group("budgets per layer shape (work, not seconds: the same answer on any machine)")
    b.add_argument("--evaluations", type=count_arg, default=None, metavar="N",
                   help=f"cost-model evaluations (default: cpsat {evaluations:,}; exhaustive: the whole "
                        "space)")
    b.add_argument("--solver-time", type=positive_float, default=None, metavar="S",
                   help=f"CP-SAT deterministic seconds (default {solver_time:g}; one worker, fixed seed)")
    b.add_argument("--trials", type=count_arg, default=1000, help="Optuna trials (default 1000)")
    b.add_argument("--time-limit", type=seconds, default=None, metavar="S",
                   help="optional wall-clock cap per layer shape (default: none); with it, results may "
                        "depend on the machine's load")
    p.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="Optuna sampler (default tpe; nsga2 for several objectives)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of every searcher (default 0)")
    p.add_argument("--cpsat-params", metavar="TEXT",
                   help="OR-Tools CP-SAT parameters as text proto, e.g. 'max_deterministic_time:8' "
                        "(more than one worker makes CP-SAT nondeterministic)")
    p.add_argument("--output", metavar="BEST.m", help="write the best mapping of every layer here")
    p.add_argument("--report", metavar="REPORT.csv", help="write the per-layer report (CSV) here")
    p.set_defaults(run=run)


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
    for flag, path in (("--output", args.output), ("--report", args.report)):
        if path:
            check_output_file(path, flag)      # before searching, not after
    if args.cpsat_params:
        _check_cpsat_params(args.cpsat_params)
    acc = accelerator_from_args(args)
    objectives = parse_objectives(args.objective)
    gemm_dataflow_of(args, prog="dse map", holes=True)          # refused now, not on the first GEMM
    settings = MapSettings(objectives=objectives, space=args.space, gemm_space=args.gemm_dataflow,
                           levels=args.levels,
                           spatial=tuple(args.spatial.split(",")) if args.spatial else None, tiles=args.tiles,
                           searcher=args.searcher, evaluations=args.evaluations,
                           solver_time=args.solver_time, trials=args.trials, sampler=args.sampler,
                           seed=args.seed, time_limit=args.time_limit, cpsat_params=args.cpsat_params,
                           enforce_bw=args.enforce_bw)
    net = load_network(args.file)
    for op in net.unsupported:
        print(f"dse map: {args.file}: operator not imported: {op}", file=sys.stderr)
    layers = _select(args, net)
    shapes: dict[tuple, list[Layer]] = {}
    for layer in layers:
        shapes.setdefault(layer.shape_key, []).append(layer)
    start = time.perf_counter()
    results = _search_shapes(shapes, acc, settings, set_jobs(args.jobs))
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
    return _exit_code(shapes, results)


def _exit_code(shapes: dict, results: dict) -> int:
    infeasible, unmapped = [], []
    for key, group in shapes.items():
        res = results[key]
        if res.best:
            continue
        names = ", ".join(g.name for g in group)
        line = res.message or f"layer {names}: {STOP_REASONS.get(res.stop, res.stop)}"
        (infeasible if res.stop in ("infeasible", "error") else unmapped).append(line)
    for line in infeasible + unmapped:
        print(f"dse map: {line}", file=sys.stderr)
    if infeasible:
        return 2
    return EXIT_NO_MAPPING if unmapped else 0


def _map_shape(layer: Layer, acc, settings: MapSettings) -> SearchResult:
    names = layer.name
    try:
        return map_layer(layer, acc, settings)
    except (SpecError, InfeasibleError) as exc:   # e.g. a template that does not fit this layer
        template = settings.space not in ("free", "coarse", "templates")      # a convolution's, perhaps
        hint = gemm_hint(layer, settings.gemm_space, suggest="gemm_mnk_holes") if template else ""
        return SearchResult(settings.searcher, settings.objectives, [], "error", 0, 0.0,
                            message=f"layer {names}: {exc}{hint}", stop="error")


def _worker_init(parent: int) -> None:
    from studies.processes import die_with_parent

    die_with_parent(parent)
    set_jobs(1)                                  # the shapes share the cores


def _search_shapes(shapes: dict[tuple, list[Layer]], acc, settings: MapSettings,
                   jobs: int) -> dict[tuple, SearchResult]:
    """Every shape's search, in parallel over ``jobs`` processes (each search is deterministic and
    alone, so the results are the same for any ``jobs``)."""
    results: dict[tuple, SearchResult] = {}
    progress = _Progress(len(shapes))
    workers = min(jobs, len(shapes))
    if workers <= 1:
        for key, group in shapes.items():
            results[key] = _map_shape(group[0], acc, settings)
            progress.done(group, results[key])
        return results
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_map_shape, group[0], acc, settings): key for key, group in shapes.items()}
        for future in as_completed(futures):
            key = futures[future]
            results[key] = future.result()
            progress.done(shapes[key], results[key])
    return {key: results[key] for key in shapes}


class _Progress:
    """One line per finished shape: n/N, the shape's summary and an estimate of the time left."""

    def __init__(self, total: int) -> None:
        self.total, self.count, self.start = total, 0, time.perf_counter()

    def done(self, group: list[Layer], result: SearchResult) -> None:
        self.count += 1
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.count * (self.total - self.count)
        left = f", about {eta:.0f} s left" if self.count < self.total else ""
        names = ", ".join(g.name for g in group)
        print(f"[{self.count}/{self.total}{left}] {names}: {_summary(result)}", file=sys.stderr, flush=True)


def _summary(result: SearchResult) -> str:
    if not result.best:
        reason = STOP_REASONS.get(result.stop, result.stop)
        return f"no mapping: {result.message or reason}"
    v = result.best[0].values
    parts = [f"{result.searcher}: {result.stop or result.status}",
             ", ".join(f"{o} {x:,.6g}" for o, x in zip(result.objectives, v, strict=True))]
    if result.gap is not None:
        parts.append(f"gap {100 * result.gap:.3g}% to bound {result.bound:,.6g}")
    seen = f" of {result.total:,}" if result.total else ""
    parts.append(f"{result.evaluations:,}{seen} points, {result.cpu_seconds:.1f} CPU-s")
    text = "; ".join(parts)
    if result.gap is not None and result.gap > LARGE_GAP and result.stop == "budget":
        text += (" -- a large gap: search longer (--evaluations, --solver-time) or wider (--levels 3); "
                 "the bound is a floor from compute and NoC traffic and may itself be loose")
    return text


def _report_rows(layers: list[Layer], results: dict) -> list[dict]:
    rows = []
    for layer in layers:
        res = results[layer.shape_key]
        designs = res.pareto if res.pareto else res.best[:1]
        common = {"layer": layer.name, "count": layer.count, "searcher": res.searcher, "status": res.status,
                  "stop": res.stop, "evaluations": res.evaluations, "seen": res.seen,
                  "seconds": round(res.seconds, 3), "cpu_seconds": round(res.cpu_seconds, 3)}
        if not designs:
            rows.append({**common, "violations": res.message})
            continue
        for i, f in enumerate(designs):
            c = f.cost
            rows.append({
                **common, "objective": ",".join(res.objectives), "value": f.values[0],
                "bound": res.bound, "gap": res.gap, "runtime_cycles": c.runtime_cycles,
                "energy_nj": c.energy_nj, "num_macs": c.num_macs, "true_macs": c.true_macs,
                "utilization": c.utilization, "l1_size_req": c.l1_size_req, "l2_size_req": c.l2_size_req,
                "peak_noc_bw_req": c.peak_noc_bw_req, "valid": c.valid, "violations": c.violations,
                "pareto_index": i if res.pareto else None, "dataflow": str(f.dataflow)})
    return rows


def _print_table(rows: list[dict], objectives) -> None:
    from ..tables import format_table

    columns = (("layer", "layer", None), ("x", "count", "d"), ("searcher", "searcher", None),
               ("stop", "stop", None),
               ("runtime (cycles)", "runtime_cycles", ","), ("energy (nJ)", "energy_nj", ",.1f"),
               ("util", "utilization", "%"), ("L1 req", "l1_size_req", ","), ("L2 req", "l2_size_req", ","),
               ("gap", "gap", ".2%"), ("evals", "evaluations", ","), ("CPU s", "cpu_seconds", ".1f"))
    sys.stdout.write(format_table(rows, columns))
    good = [r for r in rows if r.get("runtime_cycles") is not None and not r.get("pareto_index")]
    if good and len(objectives) == 1:
        total = sum(r["runtime_cycles"] * r["count"] for r in good)
        energy = sum(r["energy_nj"] * r["count"] for r in good)
        missing = sum(r["count"] for r in rows if r.get("runtime_cycles") is None)
        note = f" ({missing} layer(s) without a mapping not counted)" if missing else ""
        sys.stdout.write(f"network total (repeats counted): {total:,} cycles, {energy:,.1f} nJ{note}\n")


__all__ = ["InfeasibleError", "add_parser", "run"]
