"""``dse eval``: evaluate MAESTRO ``.m`` files layer by layer on one accelerator."""

from __future__ import annotations

import argparse
import sys

from costmodel import DseError, MappedLayer, evaluate_batch, limits
from costmodel.cost import FIGURES
from costmodel.diagnostics import LOCKSTEP_SKIPS, PART_OF_LAYER

from ..outputs import check_output_file, open_output
from ..tables import write_rows
from .common import (
    accelerator_from_args,
    add_gemm_dataflow_argument,
    add_hardware_arguments,
    dataflow_for,
    gemm_dataflow_of,
    gemm_hint,
    read_network_file,
    resolve_dataflow,
)

# The columns of the CSV/JSON output, in order: identification, MAESTRO's figures, validity, extras.
COLUMNS = ("file", "network", "layer", "layer_type", *FIGURES, "valid", "violations", "error",
           "count", "utilization", "pe_peak_cycles", "used_pes", "deviations")
TABLE_COLUMNS = (
    ("layer", "layer", None), ("type", "layer_type", None), ("x", "count", "d"),
    ("runtime (cycles)", "runtime_cycles", ","),
    ("MACs", "num_macs", ","), ("util", "utilization", "%"), ("energy (nJ)", "energy_nj", ",.1f"),
    ("L1 req", "l1_size_req", ","), ("L2 req", "l2_size_req", ","), ("NoC BW", "peak_noc_bw_req", ","),
    ("status", "status", None),
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate MAESTRO .m files on one accelerator",
        description="Evaluate every layer of one or more MAESTRO network/mapping files with the cost "
                    "model (MAESTRO's figures, physically consistent). Exits 2 if any layer or file "
                    "cannot be evaluated, after reporting all the others.")
    p.add_argument("files", nargs="+", metavar="NETWORK",
                   help="MAESTRO network/mapping files (.m), ONNX models (.onnx) or built-in network names "
                        "(dse networks); the last two need --dataflow")
    p.add_argument("--dataflow", metavar="DATAFLOW",
                   help="apply this dataflow to every layer (instead of the files' own): a .m file with a "
                        "Dataflow block, or a shipped dataflow name (kcp_ws, yxp_os, xp_ws, nlr, gemm_mnk)")
    add_gemm_dataflow_argument(p)
    add_hardware_arguments(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="output format (default: table)")
    p.add_argument("--output", metavar="PATH", help="write the output here instead of stdout")
    p.add_argument("--maestro-exact", action="store_true",
                   help="reproduce MAESTRO's analysis of edge tiles exactly (for validation: can report "
                        "runtimes below the PE-peak bound)")
    p.add_argument("--engine", choices=("auto", "compiled", "reference"), default="auto",
                   help=f"cost-model engine; both give the same figures (default auto: the numpy reference "
                        f"for up to {AUTO_REFERENCE_LAYERS} layers, where loading the compiled kernel "
                        "would take longer than evaluating, else the compiled kernel)")
    p.set_defaults(run=run)


# Below this many layers the reference engine (~3 ms a layer) finishes before the compiled kernel
# would have loaded (~0.8 s: Numba's import and the cached machine code).
AUTO_REFERENCE_LAYERS = 100


NO_DATAFLOW = "no Dataflow block in this layer or an earlier one"


def _layer_rows(path: str, net, args, acc, templates, engine: str) -> tuple[list[dict], list[tuple]]:
    rows, problems = [], []
    for mapped in net.layers:
        row = {"file": path, "network": net.name, "layer": mapped.name}
        error = _evaluate(mapped, acc, templates, args, row, engine)
        if error:
            row["error"] = error
            problems.append((path, mapped.name, error))
        rows.append(row)
    return rows, problems


def _evaluate(mapped: MappedLayer, acc, templates, args, row: dict, engine: str) -> str | None:
    if mapped.error is not None:
        return str(mapped.error)
    row["layer_type"] = mapped.layer.layer_type.value
    row["count"] = mapped.layer.count
    template, gemm_template = templates
    dataflow = dataflow_for(mapped.layer, template, gemm_template) or mapped.dataflow
    if dataflow is None:
        return NO_DATAFLOW
    try:
        limits.check_mapping(mapped.layer, dataflow)        # a --dataflow meets the layer only here
        cost = evaluate_batch(mapped.layer, dataflow, accelerator=acc, maestro_exact=args.maestro_exact,
                              engine=engine).row(0)
    except DseError as exc:
        reason = exc.reason if hasattr(exc, "reason") else str(exc)
        return reason + (gemm_hint(mapped.layer, gemm_template) if template is not None else "")
    if cost.error:
        return cost.error
    for name in COLUMNS:
        if hasattr(cost, name) and name not in ("layer", "layer_type"):
            row[name] = getattr(cost, name)
    row["error"] = ""
    return None


def run(args: argparse.Namespace) -> int:
    if args.output:
        check_output_file(args.output)
    acc = accelerator_from_args(args)
    templates = (resolve_dataflow(args.dataflow, prog="dse eval") if args.dataflow else None,
                 gemm_dataflow_of(args, prog="dse eval"))
    rows: list[dict] = []
    problems: list[tuple] = []
    networks = []                 # (path, network or None); problems are reported in the files' order
    for path in args.files:
        try:
            networks.append((path, read_network_file(path, prog="dse eval")))
        except DseError as exc:
            networks.append((path, str(exc)))
    engine = args.engine
    if engine == "auto":
        layers = sum(len(net.layers) for _, net in networks if not isinstance(net, str))
        engine = "reference" if layers <= AUTO_REFERENCE_LAYERS else "compiled"
    for path, net in networks:
        if isinstance(net, str):
            problems.append((None, None, net))
            continue
        file_rows, file_problems = _layer_rows(path, net, args, acc, templates, engine)
        rows += file_rows
        problems += file_problems
    with open_output(args.output) as out:
        if args.format == "table":
            _write_table(out, rows, acc)
        else:
            write_rows(out, rows, COLUMNS, args.format)
    for line in problem_lines(problems):
        print(f"dse eval: {line}", file=sys.stderr)
    return 2 if problems else 0


def problem_lines(problems: list[tuple]) -> list[str]:
    """One line per distinct problem of a file: the same message for many layers (a built-in network
    without dataflows, a dataflow that fits no layer) names the layers once."""
    grouped: dict[tuple, list[str]] = {}
    for path, layer, message in problems:
        grouped.setdefault((path, message), []).append(layer)
    lines = []
    for (path, message), layers in grouped.items():
        if path is None:
            lines.append(message)
            continue
        if message == NO_DATAFLOW:
            message = ("no dataflow (no Dataflow block in the file; built-in networks and ONNX models carry "
                       "none): give one with --dataflow, e.g. --dataflow kcp_ws --gemm-dataflow gemm_mnk"
                       if len(layers) > 1 else message + " (give one with --dataflow)")
        if len(layers) == 1:
            lines.append(f"{path}: layer {layers[0]}: {message}")
        else:
            shown = ", ".join(layers[:4]) + (f" and {len(layers) - 4} more" if len(layers) > 4 else "")
            lines.append(f"{path}: {len(layers)} layers ({shown}): {message}")
    return lines


def _write_table(out, rows: list[dict], acc) -> None:
    from ..tables import format_table

    out.write(f"accelerator: {acc.describe()}\n")
    for row in rows:
        if row.get("error"):
            row["status"] = "error: " + row["error"]
        elif not row.get("valid", True):
            row["status"] = "invalid: " + row["violations"]
        else:
            row["status"] = "ok"
    by_file: dict[str, list[dict]] = {}
    for row in rows:
        by_file.setdefault(row["file"], []).append(row)
    for path, file_rows in by_file.items():
        out.write(f"\n{path} (network {file_rows[0]['network'] or '-'})\n")
        out.write(format_table(file_rows, TABLE_COLUMNS))
        good = [r for r in file_rows if not r.get("error")]
        if good:
            runtime = sum(r["runtime_cycles"] * r["count"] for r in good)
            energy = sum(r["energy_nj"] * r["count"] for r in good)
            macs = sum(r["num_macs"] * r["count"] for r in good)
            layers = sum(r["count"] for r in good)
            out.write(f"total over {layers} evaluated layer(s), repeats counted: {runtime:,} cycles, "
                      f"{macs:,} MACs, {energy:,.1f} nJ\n")
        short = [r["layer"] for r in file_rows if PART_OF_LAYER in (r.get("violations") or "")]
        if short:
            out.write(f"{', '.join(short)}: the mapping executes fewer MACs than the layer has (its tiles "
                      f"leave outputs uncomputed); dse validate {path} with the same hardware flags shows "
                      f"which\n")
        paired = [r["layer"] for r in file_rows if LOCKSTEP_SKIPS in (r.get("violations") or "")]
        if paired:
            out.write(f"{', '.join(paired)}: two SpatialMaps of a level move in lockstep over independent "
                      f"dimensions, so sub-cluster i only pairs window i of each and the other pairs are "
                      f"never computed (MAESTRO counts them); dse validate {path} shows the coverage\n")
