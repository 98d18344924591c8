"""``dse query``: the best stored design under a (possibly tighter) budget, without running anything."""

from __future__ import annotations

import argparse
import sys

from search import parse_objectives
from spaces.hardware import Budget

from ..lazy import lazy
from ..outputs import check_output_dir
from .codesign import add_study_arguments
from .common import add_budget_arguments, budget_of

cd = lazy("studies.codesign")
results = lazy("studies.results")
winner = lazy("studies.winner")

NO_DESIGN = 1        # like grep: the question was fine, the answer is "none"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "query", help="best stored design under a budget",
        description="Answer from a study's stored trials: the best design (or the Pareto front for two "
                    "objectives) within the given budget, which may be tighter than the study's. Nothing "
                    "is re-run. Exits 1 if no stored design qualifies.")
    add_study_arguments(p, required=True)
    p.add_argument("--objective", help="latency, energy, edp or latency,energy (default: the study's)")
    add_budget_arguments(p)
    p.add_argument("--write", metavar="DIR", help="write the answer's hardware.m and mapping.m here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.write:
        check_output_dir(args.write, "--write")
    study = cd.load(args.study, args.storage)
    spec = cd.stored_spec(study)
    objectives = parse_objectives(args.objective) if args.objective else tuple(spec.objectives)
    budget = Budget(**budget_of(args))
    frame = results.trials_frame(study, spec)
    answer = results.query(frame, budget, objectives)
    limits = ", ".join(f"{k} {v:g}" for k, v in budget_of(args).items()) or "the study's budget"
    if answer.empty:
        stored = int(frame.feasible.sum())
        print(f"no stored design of study {args.study} qualifies under {limits} ({stored} feasible designs "
              f"stored; run more trials with dse study resume, or relax the budget)")
        return NO_DESIGN
    if len(objectives) > 1:
        print(f"Pareto front under {limits} ({len(answer)} of {int(frame.feasible.sum())} stored designs):")
    else:
        print(f"best stored design for {objectives[0]} under {limits}:")
    for _, row in answer.iterrows():
        print("  " + results.describe_row(row))
    trial = study.trials[int(answer.iloc[0].trial)]
    sys.stdout.write(winner.format_layers(winner.layer_rows(study, spec, trial)))
    if args.write:
        hw, mapping = winner.write_design(study, spec, trial, args.write)
        print(f"wrote {hw} and {mapping}")
    return 0


__all__ = ["NO_DESIGN", "add_parser", "run"]
