"""``dse study list|show|export|plot|resume``: what is stored, and carrying on."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:                  # imported where used: start-up time
    import optuna

from costmodel import DseError

from ..lazy import lazy
from ..outputs import check_output_dir, output_path
from ..storage import open_storage, redact
from ..tables import format_table
from .codesign import add_heartbeat_arguments, add_storage_arguments, execute
from .common import UsageError, count_arg, int_in, seconds, workers_arg

cd = lazy("studies.codesign")
results = lazy("studies.results")
winner = lazy("studies.winner")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("study", help="list, show, export, plot or resume stored studies",
                              description="Read what co-design studies have stored, or resume one.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    sub.required = True

    storage_arg = add_storage_arguments

    q = sub.add_parser("list", help="the studies in a storage")
    storage_arg(q)
    q.set_defaults(run=run_list)

    q = sub.add_parser("show", help="a study's settings, best design(s) and Pareto front")
    q.add_argument("name")
    storage_arg(q)
    q.add_argument("--top", type=count_arg, default=5, help="how many best designs to list")
    q.add_argument("--write", metavar="DIR", help="write the best design's hardware.m and mapping.m")
    q.set_defaults(run=run_show)

    q = sub.add_parser("export", help="every trial as CSV or Parquet (columns: see docs)")
    q.add_argument("name")
    storage_arg(q)
    q.add_argument("--output", required=True, metavar="PATH.csv|PATH.parquet")
    q.set_defaults(run=run_export)

    q = sub.add_parser("plot", help="Pareto front, history, area and power, per-layer runtimes as PNG")
    q.add_argument("name")
    storage_arg(q)
    q.add_argument("--output-dir", default=".", metavar="DIR", help="folder for the PNG files (created)")
    q.add_argument("--trial", type=int_in(0, None), metavar="N",
                   help="the design to mark and break down by layer (default: the best, or the Pareto "
                        "front's lowest-latency point)")
    q.set_defaults(run=run_plot)

    q = sub.add_parser("resume", help="continue a study up to its requested trials")
    q.add_argument("name")
    storage_arg(q)
    q.add_argument("--trials", type=count_arg, help="a new total of complete trials")
    q.add_argument("--timeout", type=seconds, metavar="S")
    q.add_argument("--workers", type=workers_arg, default=1)
    q.add_argument("--retry-running", action="store_true",
                   help="fail and re-queue trials left running by a crash (storages without heartbeat: "
                        "journal files); only when no worker is alive")
    q.add_argument("--output-dir", metavar="DIR")
    add_heartbeat_arguments(q)
    q.set_defaults(run=run_resume)


def run_list(args: argparse.Namespace) -> int:
    import optuna
    storage = open_storage(args.storage, create=False)
    rows = []
    for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        c = cd.counts(study)
        try:
            spec = cd.stored_spec(study)
        except DseError:                    # another tool's study, or an older format: listed all the same
            spec = None
        rows.append({"study": s.study_name, "network": spec.network_name if spec else "-",
                     "objective": ",".join(spec.objectives) if spec else "-",
                     "complete": c["COMPLETE"], "requested": spec.trials if spec else None,
                     "running": c["RUNNING"], "failed": c["FAIL"],
                     "started": s.datetime_start.strftime("%Y-%m-%d %H:%M") if s.datetime_start else "-"})
    if not rows:
        print(f"no studies in {redact(args.storage)}")
        return 0
    cols = (("study", "study", None), ("network", "network", None), ("objective", "objective", None),
            ("complete", "complete", "d"), ("of", "requested", "d"), ("running", "running", "d"),
            ("failed", "failed", "d"), ("started", "started", None))
    sys.stdout.write(format_table(rows, cols))
    return 0


def _open(args) -> tuple[optuna.Study, cd.CodesignSpec]:
    study = cd.load(args.name, args.storage)
    return study, cd.stored_spec(study)


def run_show(args: argparse.Namespace) -> int:
    if args.write:
        check_output_dir(args.write, "--write")
    study, spec = _open(args)
    frame = results.trials_frame(study, spec)
    c = cd.counts(study)
    budget = ", ".join(f"{k} {v:g}" for k, v in spec.budget.items()) or "none"
    what = (f"networks {spec.describe_networks()}" if spec.is_mix or spec.targets
            else f"network {spec.network_name}")
    print(f"study {args.name}: {what}, objective {', '.join(spec.objectives)}, "
          f"budget {budget}")
    print(f"hardware space: {spec.hardware_space().describe()}")
    print(f"inner search: {spec.inner} on {spec.inner_space} space ({spec.inner_objective} per layer); "
          f"sampler {spec.sampler}, seed {spec.seed}")
    print(f"trials: {c['COMPLETE']} complete of {spec.trials} ({int(frame.feasible.sum())} feasible), "
          f"{c['RUNNING']} running, {c['FAIL']} failed, {results.pruned_summary(frame)}")
    reasons = frame[(frame.state == "COMPLETE") & ~frame.feasible.astype(bool)].infeasible
    if len(reasons):
        kinds = reasons.str.split(":").str[0].value_counts()
        print("infeasible trials: " + ", ".join(f"{n} {k}" for k, n in kinds.items()))
    if frame.feasible.sum() == 0:
        print("no feasible design yet")
        return 0
    if len(spec.objectives) > 1:
        listed = results.pareto_rows(frame, spec.objectives)
        print(f"Pareto front ({len(listed)} designs):")
    else:
        listed = results.best_rows(frame, spec.objectives, n=args.top)
        print(f"best {len(listed)} design(s):")
    for _, row in listed.iterrows():
        print("  " + results.describe_row(row, mix=spec.is_mix))
    chosen, why = results.chosen_row(frame, spec.objectives)
    trial = study.trials[int(chosen.trial)]
    if spec.is_mix or spec.targets:
        print(f"networks of trial {trial.number} ({why}):")
        sys.stdout.write(results.format_networks(chosen, spec))
    print(f"layers of trial {trial.number} ({why}):")
    sys.stdout.write(winner.format_layers(winner.layer_rows(study, spec, trial)))
    if args.write:
        hw, mapping = winner.write_design(study, spec, trial, args.write)
        print(f"wrote {hw} and {mapping}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    path = Path(args.output)
    if path.suffix not in (".csv", ".parquet"):
        raise UsageError(f"--output must end in .csv or .parquet, got {path.name}")
    if path.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError("Parquet output needs pyarrow (pip install 'dataflow-dse[parquet]')") from None
    study, spec = _open(args)
    frame = results.trials_frame(study, spec)
    with output_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    print(f"wrote {len(frame)} trials x {len(frame.columns)} columns to {path}")
    if spec.is_mix:            # and one row per (trial, network)
        per_network = results.networks_frame(frame, spec)
        net_path = path.with_name(f"{path.stem}-networks{path.suffix}")
        with output_path(net_path) as tmp:
            if path.suffix == ".parquet":
                per_network.to_parquet(tmp, index=False)
            else:
                per_network.to_csv(tmp, index=False)
        print(f"wrote {len(per_network)} (trial, network) rows x {len(per_network.columns)} columns to "
              f"{net_path}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from ..plots import plot_study

    study, spec = _open(args)
    paths = plot_study(study, spec, Path(args.output_dir), trial=args.trial)
    for p in paths:
        print(f"wrote {p}")
    return 0


def run_resume(args: argparse.Namespace) -> int:
    study, spec = _open(args)
    if args.retry_running:
        n = cd.retry_running(study)
        print(f"re-queued {n} trial(s) left running", file=sys.stderr)
    trials = args.trials or spec.trials
    if args.trials and args.trials != spec.trials:
        spec.trials = args.trials
        cd.store_spec(study, spec)
    return execute(study, spec, args.name, args.storage, workers=args.workers, trials=trials,
                   timeout=args.timeout, output_dir=args.output_dir, heartbeat=args.heartbeat,
                   grace=args.grace_period, trial_timeout=args.trial_timeout)


__all__ = ["add_parser"]
