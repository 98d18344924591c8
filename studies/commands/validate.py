"""``dse validate``: the cost model against the reference executor, layer by layer."""

from __future__ import annotations

import argparse
import sys

from ..lazy import lazy
from .common import accelerator_from_args, add_hardware_arguments, read_network_file

check = lazy("costmodel.executor_validate")

PROG = "dse validate"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "validate", help="check the cost model against a literal execution of each layer's dataflow",
        description="Evaluate every layer of a MAESTRO .m file with the cost model and with the reference "
                    "executor (costmodel/executor.py: the directives played out step by step, PE by PE), "
                    "and print both values of each figure and whether they agree. Small layers only "
                    "(at most 10^7 MACs and 10^6 level steps). Exits 0 when every figure of every "
                    "layer agrees, 1 when some differ, 2 on bad input.")
    p.add_argument("file", metavar="FILE.m", help="MAESTRO network/mapping file with Dataflow blocks")
    add_hardware_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from costmodel import DseError

    acc = accelerator_from_args(args)
    if not args.file.lower().endswith(".m"):
        print(f"{PROG}: {args.file}: expected a MAESTRO .m file", file=sys.stderr)
        return 2
    net = read_network_file(args.file, prog=PROG)
    print(f"accelerator: {acc.describe()}")
    bad_input = False
    differ = False
    for mapped in net.layers:
        where = f"{args.file}: layer {mapped.name}"
        if mapped.error is not None:
            print(f"{PROG}: {mapped.error}", file=sys.stderr)
            bad_input = True
            continue
        if mapped.dataflow is None:
            print(f"{PROG}: {where}: no Dataflow block in this layer or an earlier one", file=sys.stderr)
            bad_input = True
            continue
        try:
            v = check.validate(mapped.layer, mapped.dataflow, acc)
        except DseError as exc:
            print(f"{PROG}: {where}: {exc}", file=sys.stderr)
            bad_input = True
            continue
        print(f"\n{where}")
        for line in check.describe(v):
            print("  " + line)
        differ |= not v.agree
    if bad_input:
        return 2
    return 1 if differ else 0
