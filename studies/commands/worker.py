"""``dse worker``: join a co-design study from any machine that reaches its storage."""

from __future__ import annotations

import argparse
import sys

from costmodel import limits

from ..lazy import lazy
from ..storage import redact
from .codesign import add_heartbeat_arguments, add_study_arguments
from .common import count_arg, int_in, seconds

cd = lazy("studies.codesign")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "worker", help="run trials of an existing co-design study",
        description="Join a study created by dse codesign: everything it needs (network, budget, hardware "
                    "space, inner search) is stored with the study. Runs until the study has its "
                    "requested number of complete trials.")
    add_study_arguments(p, required=True)
    p.add_argument("--trials", type=count_arg, help="override the study's requested trials")
    p.add_argument("--timeout", type=seconds, metavar="S", help="stop starting trials after S seconds")
    p.add_argument("--index", type=int_in(0, limits.MAX_SEED), default=0,
                   help="worker index: offsets the sampler's seed so workers do not propose alike")
    add_heartbeat_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    study = cd.load(args.study, args.storage)
    spec = cd.stored_spec(study)
    print(f"worker {args.index} on study {args.study} in {redact(args.storage)}", file=sys.stderr)
    done = cd.run_worker(args.study, args.storage, worker=args.index, trials=args.trials,
                         timeout=args.timeout, heartbeat=args.heartbeat, grace=args.grace_period)
    c = cd.counts(study)
    print(f"worker {args.index}: {done} trial(s) completed; the study has {c['COMPLETE']} of "
          f"{args.trials or spec.trials}", file=sys.stderr)
    return 0
