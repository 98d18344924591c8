"""``dse import``: convert an ONNX model to a MAESTRO network file."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from costmodel import Dataflow, LayerType, format_network, limits, read_dataflow
from costmodel.networks import bundled_dataflow
from costmodel.onnx_import import import_onnx

from ..outputs import open_output
from .common import UsageError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "import", help="convert an ONNX model to a MAESTRO network file",
        description="Read an ONNX model (needs the onnx package: pip install 'dataflow-dse[onnx]') and write "
                    "its Conv, ConvTranspose, Gemm and MatMul layers as a MAESTRO network file, padding "
                    "folded into the input sizes and identical layers written once with a //@repeat "
                    "count. Operators without MACs are skipped; other operators are left out and listed "
                    "(an error with --strict). Commands that take a network also accept the .onnx file "
                    "directly.")
    p.add_argument("model", metavar="MODEL.onnx", help="ONNX model")
    p.add_argument("--output", metavar="NET.m", help="write the network file here (default: stdout)")
    p.add_argument("--dataflow", metavar="TEMPLATE.m",
                   help="give every layer this dataflow (a file, or a shipped template name such as "
                        "kcp_ws); default: no Dataflow blocks")
    p.add_argument("--gemm-dataflow", metavar="TEMPLATE.m",
                   help="dataflow for the GEMM layers instead of --dataflow (e.g. the shipped gemm_mnk)")
    p.add_argument("--strict", action="store_true", help="fail if the model has unsupported operators")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=N",
                   help="size of a symbolic dimension of the model's inputs (repeatable)")
    p.set_defaults(run=run)


def _template(text: str | None, flag: str) -> Dataflow | None:
    if text is None:
        return None
    path = Path(text)
    try:
        if not path.exists() and bundled_dataflow(text).exists():
            path = bundled_dataflow(text)
        found = path.exists()
    except OSError as exc:                   # a name too long
        raise UsageError(f"{flag}: {text[:60]}: {exc.strerror}") from None
    if not found:
        raise UsageError(f"{flag}: no file {text[:100]} (and no shipped template of that name)")
    return read_dataflow(path)


def _dims(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        shown = item if len(item) <= 40 else item[:37] + "..."
        if not sep or not name or not re.fullmatch(r"[0-9]{1,30}", value) or int(value) < 1:
            raise UsageError(f"--dim: expected NAME=N with a positive integer N, got '{shown}'")
        if int(value) > limits.MAX_DIM:
            raise UsageError(f"--dim: {name} = {int(value):,} is above the limit of {limits.MAX_DIM:,}")
        out[name] = int(value)
    return out


def _mismatched(dataflow: Dataflow, layers) -> dict[str, list[str]]:
    """Dimensions the dataflow maps that a layer lacks: {layer type: [dims]}."""
    mapped = {d.dim for d in dataflow.directives if not d.is_cluster}
    out: dict[str, list[str]] = {}
    for layer in layers:
        missing = sorted(mapped - set(layer.full_dims()))
        if missing:
            out.setdefault(layer.layer_type.value, missing)
    return out


def run(args: argparse.Namespace) -> int:
    dims = _dims(args.dim)
    dataflow = _template(args.dataflow, "--dataflow")
    gemm_dataflow = _template(args.gemm_dataflow, "--gemm-dataflow") or dataflow
    result = import_onnx(args.model, strict=args.strict, dims=dims)
    net = result.network
    pairs = [(layer, gemm_dataflow if layer.layer_type is LayerType.GEMM else dataflow)
             for layer in net.layers]
    header = [f"{net.name}: {net.num_layers} layers in one inference ({len(net.layers)} distinct), "
              f"{net.total_macs:,} MACs.",
              f"Imported from {net.source} by dse import; padding folded into Y/X, transposed "
              "convolutions in scatter form, identical layers merged (//@repeat)."]
    if result.skipped:
        header.append(f"Skipped (no MACs): {', '.join(result.skipped)}.")
    if result.unsupported:
        header.append(f"Left out (unsupported): {', '.join(result.unsupported)}.")
    header += result.notes
    text = format_network(net.name, pairs, "\n".join(header))
    with open_output(args.output) as out:
        out.write(text)
    for note in result.notes:
        print(f"dse import: note: {note}", file=sys.stderr)
    checks = []
    if dataflow is not None:
        checks.append(("--dataflow", dataflow, [layer for layer in net.layers if args.gemm_dataflow is None
                                                or layer.layer_type is not LayerType.GEMM]))
    if args.gemm_dataflow is not None:
        checks.append(("--gemm-dataflow", gemm_dataflow,
                       [layer for layer in net.layers if layer.layer_type is LayerType.GEMM]))
    for flag, df, targets in checks:
        for layer_type, missing in _mismatched(df, targets).items():
            hint = " (give GEMM layers their own with --gemm-dataflow)" if layer_type == "GEMM" else ""
            print(f"dse import: warning: {flag} maps {', '.join(missing)}, which the {layer_type} layers "
                  f"do not have: they will not evaluate with it{hint}", file=sys.stderr)
    if result.unsupported:
        print(f"dse import: warning: left out unsupported operators: {', '.join(result.unsupported)} "
              "(--strict makes this an error)", file=sys.stderr)
    print(f"dse import: {net.name}: {len(net.layers)} distinct layers, {net.num_layers} per inference, "
          f"{net.total_macs:,} MACs" + (f" -> {args.output}" if args.output else "")
          + (f"; skipped without MACs: {', '.join(result.skipped)}" if result.skipped else ""),
          file=sys.stderr)
    return 0
