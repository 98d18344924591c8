"""``dse query``: the best stored design under a (possibly tighter) budget, other weights of a mix or
other latency targets, without running anything."""

from __future__ import annotations

import argparse
import sys

from costmodel import SpecError
from spaces.hardware import Budget

from ..lazy import lazy
from ..outputs import check_output_dir
from .codesign import add_study_arguments, add_target_arguments, targets_of
from .common import add_budget_arguments, budget_of

cd = lazy("studies.codesign")
mix = lazy("studies.mix")
results = lazy("studies.results")
winner = lazy("studies.winner")

NO_DESIGN = 1        # like grep: the question was fine, the answer is "none"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "query", help="best stored design under a budget, weights or latency targets",
        description="Answer from a study's stored trials: the best design (or the Pareto front for two "
                    "objectives) within the given budget, which may be tighter than the study's; for a mix "
                    "of networks, under other weights, and for any study under other latency targets "
                    "(each replaces the study's target of its network, tighter or looser). Nothing is "
                    "re-run. Exits 1 if no stored design qualifies, saying which target binds.")
    add_study_arguments(p, required=True)
    p.add_argument("--objective", help="latency, energy, edp, area or two of them (default: the study's)")
    add_budget_arguments(p)
    p.add_argument("--weight", action="append", default=[], metavar="NET=W",
                   help="another weight for a network of the mix (repeat; unnamed networks keep theirs)")
    add_target_arguments(p, clock=False)
    p.add_argument("--write", metavar="DIR", help="write the answer's hardware.m and mapping.m here")
    p.set_defaults(run=run)


def question_of(args: argparse.Namespace, spec) -> results.Question:
    """The query's budget, weights and targets, checked against the study (SpecError naming the flag)."""
    known = {name: name for name in spec.network_names()}
    weights = {}
    for text in args.weight:
        net, value = mix.parse_assignment(text, "--weight", what="weight")
        net = mix.resolve(net, known, "--weight")
        if not spec.is_mix:
            raise SpecError(f"study {args.study} has one network: a weight changes nothing (weights are "
                               "for a mix of networks)", key="--weight")
        weights[net] = value
    limits = {}
    for kind, net, value in targets_of(args):
        flag = mix.TARGET_FLAGS[kind]
        net = mix.resolve(net, known, flag)
        if net in limits:
            raise SpecError(f"{net} has a target already: give one target per network", key=flag)
        limits[net] = mix.target_ms(kind, value)
    if limits and not (spec.is_mix or spec.targets):
        raise SpecError(f"study {args.study} was run without latency targets, so it stored no per-network "
                           "latencies to check them against; run it with --max-latency-ms or --min-fps",
                           key="--max-latency-ms")
    return results.Question(budget=Budget(**budget_of(args)), weights=weights, targets_ms=limits)


def run(args: argparse.Namespace) -> int:
    if args.write:
        check_output_dir(args.write, "--write")
    study = cd.load(args.study, args.storage)
    spec = cd.stored_spec(study)
    objectives = cd.parse_study_objectives(args.objective) if args.objective else tuple(spec.objectives)
    question = question_of(args, spec)
    frame = results.trials_frame(study, spec)
    answer = results.query(frame, question.budget, objectives, spec=spec, question=question)
    asked = [f"{k} {v:g}" for k, v in budget_of(args).items()]
    asked += [f"weight {net}={w:g}" for net, w in question.weights.items()]
    asked += [f"{net} <= {ms:.4g} ms" for net, ms in question.targets_ms.items()]
    limits = ", ".join(asked) or "the study's budget"
    if answer.empty:
        stored = int(frame.mapped.sum()) if "mapped" in frame else int(frame.feasible.sum())
        inside = len(results.within(frame, question.budget, column="mapped"))
        if inside and question.limits_of(spec):
            print(f"no stored design of study {args.study} meets every latency target under {limits}: "
                  f"{inside} stored design(s) are within the budget; per target:")
            for line in results.binding_targets(frame, spec, question):
                print("  " + line)
            print("the first binds: relax it, or run more trials with dse study resume")
        else:
            print(f"no stored design of study {args.study} qualifies under {limits} ({stored} mapped designs "
                  f"within the study's budget stored; run more trials with dse study resume, or relax the "
                  "budget)")
        return NO_DESIGN
    if len(objectives) > 1:
        print(f"Pareto front under {limits} ({len(answer)} of {int(frame.feasible.sum())} stored designs):")
    else:
        print(f"best stored design for {objectives[0]} under {limits}:")
    for _, row in answer.iterrows():
        print("  " + results.describe_row(row, mix=spec.is_mix))
    if spec.is_mix or spec.targets:
        sys.stdout.write(results.format_networks(answer.iloc[0], spec, question.weights_of(spec),
                                                 question.limits_of(spec)))
    trial = study.trials[int(answer.iloc[0].trial)]
    sys.stdout.write(winner.format_layers(winner.layer_rows(study, spec, trial)))
    if args.write:
        hw, mapping = winner.write_design(study, spec, trial, args.write)
        print(f"wrote {hw} and {mapping}")
    return 0


__all__ = ["NO_DESIGN", "add_parser", "question_of", "run"]
