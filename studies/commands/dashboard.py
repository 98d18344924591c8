"""``dse dashboard``: Optuna Dashboard on a study storage, on this machine."""

from __future__ import annotations

import argparse
import sys

from ..lazy import lazy
from ..storage import redact
from .codesign import add_storage_arguments
from .common import int_in

cd = lazy("studies.codesign")
dashboard = lazy("studies.dashboard")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "dashboard", help="Optuna Dashboard on the studies of a storage",
        description="Serve Optuna Dashboard (pip install 'dataflow-dse[dashboard]') on the studies of a "
                    "storage, until Ctrl-C. It listens on 127.0.0.1 by default: it has no login and can "
                    "rename and delete studies.")
    p.add_argument("study", nargs="?", metavar="STUDY", help="print the address of this study's page")
    add_storage_arguments(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_in(0, 65535), default=8080,
                   help="port (default 8080; 0: any free port)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    page = "/dashboard"
    if args.study is not None:
        study = cd.load(args.study, args.storage)
        page = f"/dashboard/studies/{study._study_id}"

    def ready(base: str) -> None:
        print(f"Optuna Dashboard on {base}{page} (studies of {redact(args.storage)}); Ctrl-C stops it",
              flush=True)

    try:
        dashboard.serve(args.storage, host=args.host, port=args.port, ready=ready)
    except KeyboardInterrupt:
        print("dashboard stopped", file=sys.stderr)
    return 0


__all__ = ["add_parser", "run"]
