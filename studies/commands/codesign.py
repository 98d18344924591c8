"""``dse codesign``: the best accelerator and mappings for a network, or a weighted mix of networks with
latency targets, under area/power budgets."""

from __future__ import annotations

import argparse
import sys
import time

from costmodel import Tech
from search import SEARCHERS
from search.optuna_search import SAMPLERS
from spaces.hardware import DEFAULT_SPECS, HW_PARAMS
from spaces.union import SPACE_KINDS

from ..lazy import lazy
from ..mix import CLOCK_MHZ, TARGET_FLAGS
from ..outputs import check_output_dir
from ..storage import DEFAULT_STORAGE, GRACE_S, HEARTBEAT_S, STORAGE_ENV, redact
from ..watchdog import TRIAL_TIMEOUT_S
from .common import (
    add_budget_arguments,
    budget_of,
    count_arg,
    hardware_int,
    levels_arg,
    positive_float,
    seconds,
    seed_arg,
    whole_seconds,
    workers_arg,
)

cd = lazy("studies.codesign")
progress = lazy("studies.progress")
results = lazy("studies.results")
winner = lazy("studies.winner")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "codesign", help="co-design an accelerator and its mappings for a network or a mix of networks",
        description="An Optuna study over a hardware space: each trial builds an accelerator, rejects it "
                    "if it breaks the budget, else maps every distinct layer shape (of every network of "
                    "a mix, shared shapes once) with the inner searcher and scores the network, or the "
                    "mix's weighted sum, with each network's latency held to its target. Persistent: "
                    "running the same command again resumes the study up to --trials complete trials.")
    p.add_argument("--network", required=True, action="append", metavar="NAME|FILE[:weight=W]",
                   help="a built-in network (dse networks), a MAESTRO .m network file or an ONNX model; "
                        "give it several times for a mix, each with an optional weight (default 1): one "
                        "accelerator for them all, objectives the weighted sums")
    p.add_argument("--objective", default="latency",
                   help="latency, energy, edp, area, or two of them for a Pareto front (latency,energy; "
                        "energy,area)")
    add_budget_arguments(p)
    add_target_arguments(p)
    add_study_arguments(p)
    p.add_argument("--trials", type=count_arg, default=50, help="complete trials wanted (default 50)")
    p.add_argument("--timeout", type=seconds, metavar="S", help="stop starting trials after S seconds")
    p.add_argument("--workers", type=workers_arg, default=1, help="local worker processes (default 1)")
    p.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="hardware sampler (default tpe; nsga2 for latency,energy)")
    p.add_argument("--seed", type=seed_arg, default=0)
    g = p.add_argument_group("inner mapping search (per distinct layer shape and accelerator)")
    g.add_argument("--inner", choices=SEARCHERS, default="auto",
                   help="auto (default): exhaustive on template spaces, cpsat on free ones")
    g.add_argument("--inner-space", default="templates", metavar="|".join(SPACE_KINDS) + "|TEMPLATE",
                   help="templates (default: every shipped dataflow template, tile sizes tuned), coarse, "
                        "free, or one template (name or file)")
    g.add_argument("--levels", type=levels_arg, default=2, help="cluster levels of the free space")
    g.add_argument("--inner-time-limit", type=seconds, default=2.0, metavar="S",
                   help="seconds per layer search (cpsat, optuna)")
    g.add_argument("--inner-trials", type=count_arg, default=200, help="trials per layer (optuna)")
    h = p.add_argument_group("hardware space (start:stop:step, start:stop:*factor or a,b,c)")
    for name in HW_PARAMS:
        h.add_argument(f"--{name.replace('_', '-')}", dest=f"hw_{name}", metavar="SPEC",
                       help=f"default {DEFAULT_SPECS[name]}")
    h.add_argument("--noc-hops", type=hardware_int("noc_hops"), default=1,
                   help="average NoC hops (default 1)")
    h.add_argument("--tech", metavar="FILE", help="technology table overrides (.json or .toml)")
    p.add_argument("--output-dir", metavar="DIR",
                   help="where to write the best design's hardware.m and mapping.m (default: <study>-best)")
    add_heartbeat_arguments(p)
    p.set_defaults(run=run)


def add_target_arguments(p: argparse.ArgumentParser, *, clock: bool = True) -> None:
    g = p.add_argument_group("latency targets (one inference of a network; constraints, like the budget)")
    g.add_argument("--max-latency-ms", action="append", default=[], metavar="NET=MS",
                   help="NET must run in at most MS milliseconds (repeat per network; NET may be left "
                        "out with one network)")
    g.add_argument("--min-fps", action="append", default=[], metavar="NET=FPS",
                   help="NET must run at least FPS times a second (a limit of 1000/FPS ms)")
    if clock:
        g.add_argument("--clock-mhz", type=positive_float, default=CLOCK_MHZ, metavar="MHZ",
                       help=f"clock that turns cycles into ms (default {CLOCK_MHZ:g} MHz)")


def targets_of(args: argparse.Namespace) -> list[tuple[str, str | None, float]]:
    """The targets given, as ``(kind, NET or None, value)`` (bad syntax: SpecError naming the flag)."""
    from ..mix import parse_assignment

    out = []
    for kind, flag in TARGET_FLAGS.items():
        what = "ms" if kind == "max_latency_ms" else "fps"
        for text in getattr(args, kind, None) or []:
            net, value = parse_assignment(text, flag, what=what)
            out.append((kind, net, value))
    return out


def add_study_arguments(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    p.add_argument("--study", required=required, metavar="NAME",
                   help="the study's name (required)" if required else
                   "study name (default: <network>-<objective>)")
    add_storage_arguments(p)


def add_storage_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", metavar="URL",
                   help=f"sqlite:///PATH, journal:///PATH or postgresql://USER@HOST/DB (default: "
                        f"${STORAGE_ENV}, else {DEFAULT_STORAGE}); a password here shows in the process "
                        "list: prefer PGPASSWORD, ~/.pgpass, $DSE_STORAGE or --storage-file")
    p.add_argument("--storage-file", metavar="FILE", help="read the storage URL from this file")


def add_heartbeat_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dead workers (heartbeats: SQLite, PostgreSQL) and hung trials")
    g.add_argument("--heartbeat", type=whole_seconds, default=HEARTBEAT_S, metavar="S",
                   help=f"seconds between a running trial's heartbeats (default {HEARTBEAT_S})")
    g.add_argument("--grace-period", type=whole_seconds, default=GRACE_S, metavar="S",
                   help=f"a trial silent for S seconds is failed and queued again (default {GRACE_S})")
    g.add_argument("--trial-timeout", type=seconds, default=TRIAL_TIMEOUT_S, metavar="S",
                   help=f"a trial running longer is stopped and recorded as failed, not retried (default "
                        f"{TRIAL_TIMEOUT_S:g}): a cap for hangs, not a budget")


def run(args: argparse.Namespace) -> int:
    objectives = tuple(s.strip() for s in args.objective.split(","))
    sampler = args.sampler or ("nsga2" if len(objectives) > 1 else "tpe")
    tech = Tech.from_file(args.tech).to_dict() if args.tech else {}
    if tech == Tech().to_dict():
        tech = {}
    network = args.network[0] if len(args.network) == 1 else args.network
    spec = cd.CodesignSpec.create(
        network, targets=targets_of(args), clock_mhz=args.clock_mhz, objectives=args.objective,
        budget=budget_of(args),
        hardware={n: getattr(args, f"hw_{n}") for n in HW_PARAMS if getattr(args, f"hw_{n}") is not None},
        noc_hops=args.noc_hops, tech=tech, inner=args.inner, inner_space=args.inner_space,
        levels=args.levels, inner_time_limit=args.inner_time_limit, inner_trials=args.inner_trials,
        sampler=sampler, seed=args.seed, trials=args.trials, timeout=args.timeout)
    name = args.study or f"{spec.network_name}-{'-'.join(objectives)}"
    output_dir = check_output_dir(args.output_dir or f"{name}-best")     # before any trial runs
    study = cd.create_or_load(spec, name, args.storage)
    return execute(study, spec, name, args.storage, workers=args.workers, trials=args.trials,
                   timeout=args.timeout, output_dir=output_dir, heartbeat=args.heartbeat,
                   grace=args.grace_period, trial_timeout=args.trial_timeout)


def execute(study, spec: cd.CodesignSpec, name: str, url: str, *, workers: int, trials: int,
            timeout: float | None, output_dir: str | None, heartbeat: int = HEARTBEAT_S,
            grace: int = GRACE_S, trial_timeout: float | None = TRIAL_TIMEOUT_S) -> int:
    """Run (or resume) a study to ``trials`` complete trials, then report and write its best design."""
    output_dir = check_output_dir(output_dir or f"{name}-best")
    before = cd.counts(study)["COMPLETE"]
    hw = spec.hardware_space()
    what = spec.describe_networks() if spec.is_mix or spec.targets else spec.network_name
    print(f"study {name} in {redact(url)}: {what} ({len(spec.shapes())} distinct layer shapes), "
          f"objective {', '.join(spec.objectives)}, {hw.size():,} hardware designs; "
          f"{before} of {trials} trials complete", file=sys.stderr)
    warning = cd.worker_count_warning(url, workers)
    if warning:
        print(warning, file=sys.stderr)
    start = time.perf_counter()
    if before < trials:
        options = {"trials": trials, "timeout": timeout, "heartbeat": heartbeat, "grace": grace,
                   "trial_timeout": trial_timeout}
        shown = progress.TrialProgress(study, spec, trials)
        if workers > 1:
            last = [-1]

            def show_counts(c: dict) -> None:
                if c["COMPLETE"] != last[0]:
                    last[0] = c["COMPLETE"]
                    print(shown.counts_line(c, study), file=sys.stderr)

            cd.run_workers(name, url, workers, progress=show_counts, **options)
        else:
            def show_trial(t) -> None:
                print(shown.trial_line(t, cd.counts(study)["COMPLETE"]), file=sys.stderr)

            cd.run_worker(name, url, on_trial=show_trial, **options)
    return report(study, spec, name, output_dir, seconds=time.perf_counter() - start)


def report(study, spec: cd.CodesignSpec, name: str, output_dir: str | None, *, seconds: float) -> int:
    frame = results.trials_frame(study, spec)
    c = cd.counts(study)
    print(f"study {name}: {c['COMPLETE']} complete trials ({int(frame.feasible.sum())} feasible), "
          f"{c['FAIL']} failed, {results.pruned_summary(frame)}; {seconds:.1f} s this run")
    if not frame.feasible.astype(bool).any():
        print("no feasible design yet: every trial left a layer unmapped or failed (dse study show lists "
              "why)")
        return 0
    best, why = results.chosen_row(frame, spec.objectives)
    if len(spec.objectives) > 1:
        front = results.pareto_rows(frame, spec.objectives)
        print(f"Pareto front ({len(front)} designs):")
        for _, row in front.iterrows():
            print("  " + results.describe_row(row, mix=spec.is_mix))
        print(f"chosen ({why}): trial {int(best.trial)}")
    else:
        print("best design: " + results.describe_row(best, mix=spec.is_mix))
    if spec.is_mix or spec.targets:
        sys.stdout.write(results.format_networks(best, spec))
    trial = study.trials[int(best.trial)]
    sys.stdout.write(winner.format_layers(winner.layer_rows(study, spec, trial)))
    hw_path, map_path = winner.write_design(study, spec, trial, output_dir or f"{name}-best")
    print(f"wrote {hw_path} and {map_path}")
    return 0


__all__ = ["add_heartbeat_arguments", "add_parser", "add_storage_arguments",
           "add_study_arguments", "add_target_arguments", "execute", "report", "run", "targets_of"]
