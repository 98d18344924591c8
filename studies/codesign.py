"""Co-design: an Optuna study over a hardware space, each trial mapping a whole network.

A trial draws an accelerator from the :class:`~spaces.hardware.HardwareSpace`. If it breaks the
budget, the trial is recorded as infeasible with the violated limits (Optuna constraints, so such a
design never wins) and nothing is searched. Otherwise every distinct layer shape of the network is
mapped by the inner searcher, and the trial reports the network's latency (cycles, repeated layers
counted), energy (nJ) or EDP, with its area and power. A study may also take a weighted mix of
networks with per-network latency targets (:mod:`studies.mix`): every distinct shape of every
network is mapped once, the objectives are the weighted sums, and each target is a constraint.

The hardware sampler (:mod:`studies.sampling`) proposes only designs within the budget (area and power
are analytic) that the study has not tried yet; a budget no design of the space meets is refused before
the study starts. Parameters are stored in their own units (``num_pes`` 256), objectives under their
names (Optuna's metric names), so the study reads well in Optuna Dashboard.

Per-layer best mappings are cached in the study's storage, beside the study (:mod:`studies.mapcache`),
under a content hash of (layer shape, accelerator, mapping space, inner objective, inner searcher
settings): resumed runs and parallel workers reuse them, and a layer finished before a crash is not
searched again. Everything a study needs to run is stored with it (system attribute ``dse_spec``: the
network's layers, objectives, budget, hardware space, inner search), so a worker on another machine
needs only the study name and the storage URL; its user attributes hold a short summary for people.

Exactly ``trials`` trials complete: a trial starts only while fewer are complete or running, and a
trial that finds the quota already filled by others ends as PRUNED ("surplus") without work. A design
already complete in the study (once every design within the budget has been tried, or when two workers
drew the same one at the same moment) is answered from storage: the trial copies the stored values,
constraints and figures, with ``duplicate_of`` naming the trial it repeats, and nothing is searched
(a design the watchdog stopped is failed again without running). A resumed worker
seeds its sampler with the study's trial count, so it does not replay the random start of the first
run. A trial interrupted by Ctrl-C or SIGTERM, or whose worker died (heartbeat on SQLite and
PostgreSQL; the recorded worker process on journal files), is queued again with the same hardware. A
trial whose inner searches run longer than ``trial_timeout`` (default :data:`TRIAL_TIMEOUT_S`) is
stopped by a watchdog and recorded as failed with that reason; its design is not retried.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import optuna
from optuna.trial import TrialState

from costmodel import Accelerator, DseError, Layer, SpecError, Tech, limits
from costmodel.mfile import format_network, parse_dataflow, parse_network
from costmodel.workloads import load_network
from search import SEARCHERS, ExhaustiveSearcher, Problem, SearchResult
from search.cpsat import CpSatSearcher
from search.optuna_search import OptunaSearcher, make_sampler
from spaces.hardware import Budget, BudgetRegion, HardwareSpace
from spaces.mapping import FreeSpace
from spaces.union import mapping_space

from . import mapcache, mix, processes
from .sampling import HardwareSampler
from .storage import GRACE_S, is_journal, is_relational, open_storage, quiet, retry_trial
from .watchdog import TRIAL_TIMEOUT_S, DeadlineExceeded, call_with_deadline

SPEC_ATTR = "dse_spec"           # system attribute: the CodesignSpec as JSON
FORMAT_ATTR = "dse_format"       # system attribute: how the study is stored (FORMAT)
# 2: parameters in their own units, spec in system attributes, mapping cache beside the study.
# (1, unmarked: parameters as indices, spec and mapping cache in the user attributes.)
FORMAT = 2
CACHE_PREFIX = mapcache.CACHE_PREFIX
METRIC_NAMES = {"latency": "latency (cycles)", "energy": "energy (nJ)", "edp": "EDP (cycles x nJ)",
                "area": "area (mm^2)"}
MIX_METRIC_NAMES = {"latency": "weighted latency (cycles)", "energy": "weighted energy (nJ)",
                    "edp": "weighted EDP (cycles x nJ)", "area": "area (mm^2)"}
# What a study may minimise: the network's (or the mix's weighted) latency, energy or EDP, and the
# design's area (with another objective: a Pareto front such as energy,area).
STUDY_OBJECTIVES = ("latency", "energy", "edp", "area")
INNER_SEARCHERS = SEARCHERS
# The inner objective each study objective implies: network latency and energy are sums over
# layers, so per-layer optima add up to the network optimum; EDP and a latency-energy front are not
# separable, and each layer is mapped for its own EDP, a balanced compromise.
# Area does not depend on the mappings: energy,area maps each layer for its energy.
INNER_OBJECTIVE = {("latency",): "latency", ("energy",): "energy", ("edp",): "edp", (): "latency"}
# What a trial answered from storage does not copy from the trial that has its design.
_NOT_COPIED = ("cache_hits", "cache_misses", "seconds", "duplicate_of", "surplus", "failed")
# Spec keys that may differ when a study is run again (the rest must match the stored study).
RUN_KEYS = ("trials", "timeout", "seed")
WORKER_ATTR = "dse_worker"      # system attribute: the process running a trial (processes.identity)
LAYERS_ATTR = "dse_layers"      # system attribute of a trial: per layer, its mapping's key and figures
NETWORKS_ATTR = "networks"      # user attribute of a trial: per network, its latency, energy and EDP


def parse_study_objectives(text: str | tuple[str, ...], key: str = "--objective") -> tuple[str, ...]:
    """``latency``, ``energy``, ``edp``, ``area`` or a comma-separated list of them (a Pareto front)."""
    names = tuple(s.strip() for s in text.split(",")) if isinstance(text, str) else tuple(text)
    for n in names:
        if n not in STUDY_OBJECTIVES:
            raise SpecError(f"unknown objective '{n[:40]}' (choose from {', '.join(STUDY_OBJECTIVES)}, or "
                            "two of them joined by a comma for a Pareto front)", key=key)
    if not names or len(set(names)) != len(names):
        raise SpecError(f"give one objective or several distinct ones, got {str(text)[:60]!r}", key=key)
    return names


@dataclass
class CodesignSpec:
    """Everything that defines a co-design study (stored with it as JSON)."""

    network_name: str
    network_text: str                           # the layers, as a MAESTRO network file
    objectives: tuple[str, ...] = ("latency",)
    budget: dict = field(default_factory=dict)  # Budget fields
    hardware: dict = field(default_factory=dict)  # parameter -> spec text (defaults filled in)
    noc_hops: int = 1
    tech: dict = field(default_factory=dict)    # Tech overrides
    inner: str = "auto"
    inner_space: str = "templates"
    levels: int = 2
    inner_time_limit: float = 2.0
    inner_trials: int = 200
    sampler: str = "tpe"
    seed: int = 0
    trials: int = 50
    timeout: float | None = None
    # A mix (several networks): [{"name", "text", "weight"}], and network_name joins their names; empty:
    # the one network above.
    networks: list = field(default_factory=list)
    targets: dict = field(default_factory=dict)   # network -> [kind, value], kind in mix.TARGET_FLAGS
    clock_mhz: float = mix.CLOCK_MHZ

    @classmethod
    def create(cls, network: str | list[str], *, targets=(), **options) -> CodesignSpec:
        """A spec for a network given as a built-in name, a ``.m`` file or an ONNX model, or for a mix
        of them (a list, each ``NAME`` or ``NAME:weight=W``; one network's weight scales nothing).
        ``targets``: ``(kind, NET or None, value)`` triples, kind one of
        :data:`studies.mix.TARGET_FLAGS`."""
        args = [network] if isinstance(network, str) else list(network)
        known: dict[str, str] = {}         # what a target may call a network -> its name
        members = []
        for arg in args:
            path, weight = (arg, 1.0) if os.path.isfile(arg) else mix.parse_network_arg(arg)
            loaded = load_network(path)
            for note in loaded.notes:
                print(f"note: {path}: {note}", file=sys.stderr)
            for op in loaded.unsupported:
                print(f"note: {path}: operator not imported: {op}", file=sys.stderr)
            if any(m["name"] == loaded.name for m in members):
                raise SpecError(f"network {loaded.name} is given twice (give each network once, with its "
                                "weight: NAME:weight=W)", key="--network")
            text = format_network(loaded.name, [(layer, None) for layer, _ in loaded.layers])
            members.append({"name": loaded.name, "text": text, "weight": weight})
            known.update({arg: loaded.name, path: loaded.name, loaded.name: loaded.name})
        options["objectives"] = parse_study_objectives(options.get("objectives", "latency"))
        if len(members) == 1:
            spec = cls(members[0]["name"], members[0]["text"], **options)
        else:
            spec = cls("+".join(m["name"] for m in members), "", networks=members, **options)
        for kind, name, value in targets:
            flag = mix.TARGET_FLAGS.get(kind, kind)
            net = mix.resolve(name, known, flag)
            if net in spec.targets:
                raise SpecError(f"{net} has a target already ({mix.target_text(*spec.targets[net], net)}): "
                                "give one target per network", key=flag)
            spec.targets[net] = [kind, float(value)]
        spec.check()
        return spec

    def check(self) -> None:
        if self.inner not in INNER_SEARCHERS:
            raise SpecError(f"unknown inner searcher '{self.inner}' (choose from "
                            f"{', '.join(INNER_SEARCHERS)})", key="--inner")
        if self.sampler == "cmaes" and len(self.objectives) > 1:
            raise SpecError("CMA-ES optimises one objective; use nsga2 or tpe for a Pareto front",
                            key="--sampler")
        limits.check_int(self.trials, key="--trials", high=limits.MAX_TRIALS)
        limits.check_int(self.inner_trials, key="--inner-trials", high=limits.MAX_TRIALS)
        limits.check_int(self.seed, key="--seed", low=0, high=limits.MAX_SEED)
        limits.check_int(self.levels, key="--levels", high=limits.MAX_LEVELS)
        self.check_mix()
        for key, value in (("--inner-time-limit", self.inner_time_limit), ("--timeout", self.timeout)):
            if value is not None and not 0 < value <= limits.MAX_SECONDS:
                raise SpecError(f"must be a positive number of seconds up to {limits.MAX_SECONDS:,}, got "
                                f"{value}", key=key)
        self.hardware = self.hardware_space().specs()       # defaults filled in, values checked
        region = self.region()                              # some design fits the budget
        if self.inner == "cpsat" and self.inner_space not in ("free", "coarse"):
            raise SpecError(f"the CP-SAT inner searcher works on the free and coarse spaces, not "
                            f"'{self.inner_space}' (use --inner exhaustive or optuna)", key="--inner")
        self.layers()
        if self.targets:
            pes, lanes = self.widest(region)
            mix.check_reachable({net: layers for net, _, layers in self.members()}, self.targets,
                                self.clock_mhz, pes=pes, lanes=lanes)

    def check_mix(self) -> None:
        """Weights, targets and clock: positive, and targets only for the study's networks."""
        parse_study_objectives(self.objectives)
        if not (isinstance(self.clock_mhz, (int, float)) and 0 < self.clock_mhz < math.inf):
            raise SpecError(f"must be a positive number of MHz, got {self.clock_mhz}", key="--clock-mhz")
        for m in self.networks:
            if not 0 < m["weight"] < math.inf:
                raise SpecError(f"the weight of {m['name']} must be a positive number, got {m['weight']}",
                                key="--network")
        names = self.network_names()
        for net, (kind, value) in self.targets.items():
            flag = mix.TARGET_FLAGS.get(kind)
            if flag is None:
                raise SpecError(f"unknown kind of target '{kind}' (known: {', '.join(mix.TARGET_FLAGS)})",
                                key="targets")
            if net not in names:
                raise SpecError(f"'{net}' is not a network of the study (networks: {', '.join(names)})",
                                key=flag)
            if not 0 < value < math.inf:
                raise SpecError(f"the target of {net} must be a positive number, got {value}", key=flag)

    def widest(self, region: BudgetRegion) -> tuple[int, int]:
        """The (PEs, SIMD lanes) of the region with the most MAC units: the compute bound's."""
        hw = region.space
        best = (0, 0, 0)
        for pes in hw.param("num_pes").values:
            for lanes in hw.param("simd_lanes").values:
                if pes * lanes > best[0] and region.fits({"num_pes": pes, "simd_lanes": lanes}):
                    best = (pes * lanes, pes, lanes)
        return best[1], best[2]

    # ------------------------------------------------------------------------------ views
    @property
    def is_mix(self) -> bool:
        return bool(self.networks)

    @property
    def inner_objective(self) -> str:
        mapped = tuple(o for o in self.objectives if o != "area")
        return INNER_OBJECTIVE.get(mapped, "edp")

    def network_names(self) -> list[str]:
        return [m["name"] for m in self.networks] if self.networks else [self.network_name]

    def weights(self) -> dict[str, float]:
        """Network -> weight (1 for a single network)."""
        return {m["name"]: float(m["weight"]) for m in self.networks} or {self.network_name: 1.0}

    def target_limits_ms(self) -> dict[str, float]:
        """Network -> its latency limit in ms (the networks that have a target)."""
        return {net: mix.target_ms(kind, value) for net, (kind, value) in self.targets.items()}

    def metric_names(self) -> list[str]:
        names = MIX_METRIC_NAMES if self.is_mix else METRIC_NAMES
        return [names[o] for o in self.objectives]

    def describe_networks(self) -> str:
        """``resnet50 x2 + bert_base + gpt2_decode``, with the targets."""
        text = " + ".join(f"{n}" + (f" x{w:g}" if w != 1 else "") for n, w in self.weights().items())
        if self.targets:
            text += "; targets " + ", ".join(f"{net} {mix.target_ms(k, v):g} ms" for net, (k, v) in
                                             self.targets.items()) + f" at {self.clock_mhz:g} MHz"
        return text

    def budget_obj(self) -> Budget:
        return Budget(**self.budget)

    def tech_obj(self) -> Tech:
        return Tech.from_mapping(self.tech) if self.tech else Tech()

    def hardware_space(self) -> HardwareSpace:
        return HardwareSpace.from_specs(self.hardware, tech=self.tech_obj(), noc_hops=self.noc_hops)

    def region(self) -> BudgetRegion:
        """The designs of the hardware space within the budget (InfeasibleError if none)."""
        return self.hardware_space().within(self.budget_obj())

    def layers(self) -> list[Layer]:
        """Every layer of the study; in a mix, named ``<network>/<layer>``."""
        return [layer for _, _, layers in self.members() for layer in layers]

    def members(self) -> list[tuple[str, float, list[Layer]]]:
        """(network, weight, its layers) of each network; in a mix, layers named ``<network>/<layer>``."""
        if not self.networks:
            return [(self.network_name, 1.0, _parse_layers(self.network_text, self.network_name))]
        return [(m["name"], float(m["weight"]),
                 [replace(layer, name=f"{m['name']}/{layer.name}")
                  for layer in _parse_layers(m["text"], m["name"])]) for m in self.networks]

    def shapes(self) -> dict[tuple, list[Layer]]:
        """Distinct layer shapes -> the layers that have them (repeat counts on each layer)."""
        out: dict[tuple, list[Layer]] = {}
        for layer in self.layers():
            out.setdefault(layer.shape_key, []).append(layer)
        return out

    def inner_searcher_name(self, space) -> str:
        if self.inner != "auto":
            return self.inner
        return "cpsat" if isinstance(space, FreeSpace) and space.tiles == "divisors" else "exhaustive"

    # ------------------------------------------------------------------------- persistence
    def to_json(self) -> str:
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        if not self.networks and not self.targets and self.clock_mhz == mix.CLOCK_MHZ:
            # A single network without targets is stored as before mixes existed (older versions read it).
            for key in ("networks", "targets", "clock_mhz"):
                del data[key]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CodesignSpec:
        data = json.loads(text)
        data["objectives"] = tuple(data["objectives"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def differences(self, other: CodesignSpec) -> list[str]:
        """The keys (other than :data:`RUN_KEYS`) on which two specs differ."""
        a, b = asdict(self), asdict(other)
        return [k for k in a if k not in RUN_KEYS and a[k] != b[k] and
                not (k == "objectives" and tuple(a[k]) == tuple(b[k]))]


def _parse_layers(text: str, name: str) -> list[Layer]:
    net = parse_network(text, file=f"<network {name}>")
    if net.errors:
        raise net.errors[0]
    return [m.layer for m in net.layers]


# ---------------------------------------------------------------------------------- studies
def create_or_load(spec: CodesignSpec, name: str, url: str) -> optuna.Study:
    """The study ``name`` in ``url``: created with ``spec``, or loaded if it exists with the same spec."""
    storage = open_storage(url)
    directions = ["minimize"] * len(spec.objectives)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    if name in existing:
        stored = stored_spec(optuna.load_study(study_name=name, storage=storage))
        diff = spec.differences(stored)
        if diff:
            raise SpecError(f"study '{name}' exists with a different {', '.join(diff)}; run it with the "
                            "settings it was created with (dse study show shows them) or choose another "
                            "--study name", key="--study")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)     # not "A new study created in RDB ..."
    try:
        study = optuna.create_study(study_name=name, storage=storage, directions=directions,
                                    load_if_exists=True)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if name not in existing:
        store_spec(study, spec)
        with quiet():
            study.set_metric_names(spec.metric_names())
    return study


def store_spec(study: optuna.Study, spec: CodesignSpec) -> None:
    """The spec (for workers) as system attributes, a summary (for people, and Optuna Dashboard) as
    user attributes."""
    study._storage.set_study_system_attr(study._study_id, FORMAT_ATTR, FORMAT)
    study._storage.set_study_system_attr(study._study_id, SPEC_ATTR, spec.to_json())
    budget = ", ".join(f"{k} {v:g}" for k, v in spec.budget.items()) or "none"
    summary = {"network": spec.describe_networks() if spec.is_mix or spec.targets else spec.network_name,
               "objectives": ", ".join(spec.objectives), "budget": budget,
               "hardware space": spec.hardware_space().describe(),
               "inner search": f"{spec.inner} on {spec.inner_space} ({spec.inner_objective} per layer)"}
    for key, value in summary.items():
        study.set_user_attr(key, value)


def stored_spec(study: optuna.Study) -> CodesignSpec:
    attrs = study._storage.get_study_system_attrs(study._study_id)
    text = attrs.get(SPEC_ATTR)
    if text is None:
        if SPEC_ATTR in study.user_attrs:
            raise SpecError(f"study '{study.study_name}' was stored by an earlier version of dataflow-dse "
                            "(hardware parameters as indices, its mapping cache in its attributes), which "
                            "this version does not read: run it again under a new --study name or in "
                            "another storage", key="--study")
        raise SpecError(f"study '{study.study_name}' was not created by dse codesign", key="--study")
    if attrs.get(FORMAT_ATTR, 0) > FORMAT:
        raise SpecError(f"study '{study.study_name}' was stored by a newer version of dataflow-dse (format "
                        f"{attrs[FORMAT_ATTR]}; this one reads format {FORMAT}): upgrade to read it",
                        key="--study")
    return CodesignSpec.from_json(text)


def load(name: str, url: str, *, create: bool = False) -> optuna.Study:
    storage = open_storage(url, create=create)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise SpecError(f"no study named '{name}' (studies here: {', '.join(names) or 'none'})",
                        key="--study") from None


def counts(study: optuna.Study) -> dict[str, int]:
    out = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] += 1
    return out


# ------------------------------------------------------------------------------------ trials
@dataclass
class TrialStats:
    cache_hits: int = 0
    cache_misses: int = 0


class TrialTimedOut(Exception):
    """A trial stopped by the watchdog (recorded as failed, not retried)."""


class Codesign:
    """Runs the trials of one study (one process; see :func:`run_worker`)."""

    def __init__(self, study: optuna.Study, spec: CodesignSpec, *,
                 trial_timeout: float | None = TRIAL_TIMEOUT_S) -> None:
        self.study = study
        self.spec = spec
        self.hw = spec.hardware_space()
        self.budget = spec.budget_obj()
        self.region = spec.region()
        self.shapes = spec.shapes()
        self.members = spec.members()
        self.trial_timeout = trial_timeout
        self.started = time.monotonic()          # of the trial in progress (watchdog)
        self.current: int | None = None          # trial id in progress (for Ctrl-C recovery)
        self.on_recorded: Callable[[], None] = lambda: None   # called once the trial is known
        self.cache = mapcache.for_study(study)
        self.worker = processes.identity()

    # The objective Optuna calls.
    def __call__(self, trial: optuna.Trial) -> tuple[float, ...] | float:
        self.current = trial._trial_id
        self.started = time.monotonic()
        # Who runs it, so that another worker can tell when this process is gone (journal files).
        trial.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, self.worker)
        # A stop held since before Optuna created the trial arrives here: Optuna fails the trial
        # and the worker queues it again.
        self.on_recorded()
        try:
            return self._evaluate(trial)
        except DeadlineExceeded:
            reason = (f"watchdog: the trial ran longer than {self.trial_timeout:g} s (--trial-timeout); "
                      "its design is not run again")
            trial.set_user_attr("failed", reason)
            raise TrialTimedOut(reason) from None

    def _search(self, layer: Layer, acc: Accelerator) -> dict:
        """The inner search of one layer under what is left of the trial's watchdog time. Only the
        search is watched (never a storage write, which the watchdog must not interrupt)."""
        if self.trial_timeout is None:
            return search_layer(self.spec, layer, acc)
        left = self.trial_timeout - (time.monotonic() - self.started)
        if left <= 0:
            raise DeadlineExceeded(self.trial_timeout)
        return call_with_deadline(lambda: search_layer(self.spec, layer, acc), left)

    def _evaluate(self, trial: optuna.Trial) -> tuple[float, ...] | float:
        started = time.perf_counter()
        self._claim(trial)
        acc = self.hw.suggest(trial)
        for name, value in hardware_attrs(acc).items():
            trial.set_user_attr(name, value)
        stored = self._answered(trial)
        if stored is not None:
            return stored
        violations = self.budget.violations(acc)
        for name, v in violations.items():
            trial.set_constraint(name, v)
        broken = self.budget.violated(acc)
        area = Budget.figures(acc)["max_area_mm2"]
        if broken:
            trial.set_constraint("mapping", 0.0)
            self._set_targets(trial, None)
            trial.set_user_attr("infeasible", "budget: " + "; ".join(broken))
            return self._values(None, area)
        stats = TrialStats()
        self.cache.refresh()
        layers, missing = {}, []
        for group in self.shapes.values():
            entry = self._mapping(group[0], acc, stats)
            for layer in group:
                layers[layer.name] = {"count": layer.count, "key": entry["key"],
                                      "runtime": entry.get("runtime_cycles"),
                                      "energy": entry.get("energy_nj")}
            if "runtime_cycles" not in entry:
                missing.append(f"{', '.join(g.name for g in group)}: {entry['message']}")
        # Per layer: its mapping's cache key and figures; a system attribute, which Optuna Dashboard
        # does not send with every trial.
        trial.storage.set_trial_system_attr(trial._trial_id, LAYERS_ATTR, layers)
        trial.set_user_attr("cache_hits", stats.cache_hits)
        trial.set_user_attr("cache_misses", stats.cache_misses)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
        trial.set_constraint("mapping", float(len(missing)))
        if missing:
            self._set_targets(trial, None)
            trial.set_user_attr("infeasible", "no mapping fits: " + "; ".join(missing[:3]))
            return self._values(None, area)
        figures = mix.network_figures(layers, self.members, self.spec.clock_mhz)
        missed = self._set_targets(trial, figures)
        if self.spec.is_mix or self.spec.targets:
            trial.set_user_attr(NETWORKS_ATTR, figures)
        if self.spec.is_mix:
            totals = mix.weighted(figures, self.spec.weights())
        else:
            totals = dict(figures[self.spec.network_name])
            totals["latency_cycles"] = int(totals["latency_cycles"])
        trial.set_user_attr("latency_cycles", totals["latency_cycles"])
        trial.set_user_attr("energy_nj", float(totals["energy_nj"]))
        trial.set_user_attr("edp", float(totals["edp"]))
        if missed:
            trial.set_user_attr("infeasible", "target: " + "; ".join(missed))
        return self._values(totals, area)

    def _set_targets(self, trial: optuna.Trial, figures: dict | None) -> list[str]:
        """Each target's constraint (0 when the trial has no latencies: it is infeasible already); the
        targets missed, as text."""
        missed = []
        for net, limit in self.spec.target_limits_ms().items():
            if figures is None:
                trial.set_constraint(f"latency_{net}", 0.0)
                continue
            got = figures[net]["latency_ms"]
            value = mix.violation(got, limit)
            trial.set_constraint(f"latency_{net}", value)
            if value > 0:
                missed.append(f"{net} {got:.4g} ms > {limit:.4g} ms")
        return missed

    def _values(self, totals: dict | None, area: float):
        """The objective values: ``totals`` (latency_cycles, energy_nj, edp; ``None``: no value, inf)."""
        table = {"area": float(area)}
        for name, column in (("latency", "latency_cycles"), ("energy", "energy_nj"), ("edp", "edp")):
            table[name] = math.inf if totals is None else float(totals[column])
        values = tuple(table[o] for o in self.spec.objectives)
        return values if len(values) > 1 else values[0]

    def _answered(self, trial: optuna.Trial):
        """The stored answer when the study already has this design: a complete trial's values,
        constraints and figures are copied (nothing is searched); a design the watchdog stopped is
        failed again without running. ``None`` for a new design."""
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
            if t.number == trial.number or t.params != trial.params:
                continue
            if t.state == TrialState.FAIL:
                if not str(t.user_attrs.get("failed", "")).startswith("watchdog"):
                    continue                    # a crashed trial: its retry must run
                trial.set_user_attr("duplicate_of", t.number)
                reason = f"watchdog: the same design as trial {t.number}, which the watchdog stopped"
                trial.set_user_attr("failed", reason)
                raise TrialTimedOut(reason)
            for name, value in t.constraints.items():
                trial.set_constraint(name, value)
            for name, value in t.user_attrs.items():
                if name not in _NOT_COPIED:
                    trial.set_user_attr(name, value)
            if LAYERS_ATTR in t.system_attrs:
                trial.storage.set_trial_system_attr(trial._trial_id, LAYERS_ATTR, t.system_attrs[LAYERS_ATTR])
            trial.set_user_attr("duplicate_of", t.number)
            trial.set_user_attr("cache_hits", 0)
            trial.set_user_attr("cache_misses", 0)
            trial.set_user_attr("seconds", 0.0)
            return tuple(t.values) if len(t.values) > 1 else t.values[0]
        return None

    def _claim(self, trial: optuna.Trial) -> None:
        """Prune this trial if ``trials`` others already complete or run (lowest numbers win)."""
        live = sorted(t.number for t in self.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)))
        if trial.number in live and live.index(trial.number) >= self.spec.trials:
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("the study already has its requested number of trials")

    # -------------------------------------------------------------------------- mapping cache
    def cache_key(self, layer: Layer, acc: Accelerator) -> str:
        s = self.spec
        content = {"shape": repr(layer.shape_key), "acc": hardware_attrs(acc, figures=False),
                   "noc_hops": acc.noc_hops, "tech": s.tech, "space": s.inner_space, "levels": s.levels,
                   "inner": s.inner, "objective": s.inner_objective, "limit": s.inner_time_limit,
                   "trials": s.inner_trials, "seed": s.seed}
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:24]
        return CACHE_PREFIX + digest

    def _mapping(self, layer: Layer, acc: Accelerator, stats: TrialStats) -> dict:
        key = self.cache_key(layer, acc)
        entry = self.cache.entries.get(key)
        if entry is not None:
            stats.cache_hits += 1
            return entry
        stats.cache_misses += 1
        entry = {"key": key, **self._search(layer, acc)}
        self.cache.put(key, entry)
        return entry


def search_layer(spec: CodesignSpec, layer: Layer, acc: Accelerator) -> dict:
    """The inner search of one layer on one accelerator, as a JSON-able cache entry."""
    try:
        space = mapping_space(layer, acc.num_pes, spec.inner_space, levels=spec.levels)
    except SpecError as exc:
        return {"message": str(exc)}
    name = spec.inner_searcher_name(space)
    problem = Problem(space, acc, (spec.inner_objective,))
    if name == "cpsat":
        searcher = CpSatSearcher(time_limit=spec.inner_time_limit, seed=spec.seed, top_k=1)
    elif name == "optuna":
        searcher = OptunaSearcher(trials=spec.inner_trials, seed=spec.seed, top_k=1,
                                  time_limit=spec.inner_time_limit)
    else:
        searcher = ExhaustiveSearcher(top_k=1)
    result: SearchResult = searcher.search(problem)
    if not result.best:
        return {"message": result.message or result.status, "searcher": name, "status": result.status}
    best = result.best[0]
    c = best.cost
    return {"runtime_cycles": int(c.runtime_cycles), "energy_nj": float(c.energy_nj),
            "l1_size_req": int(c.l1_size_req), "l2_size_req": int(c.l2_size_req),
            "utilization": float(c.utilization), "dataflow": str(best.dataflow), "searcher": name,
            "status": result.status, "gap": result.gap, "evaluations": result.evaluations,
            "seconds": round(result.seconds, 3)}


def hardware_attrs(acc: Accelerator, *, figures: bool = True) -> dict:
    out = {"num_pes": acc.num_pes, "simd_lanes": acc.simd_lanes, "l1_size": acc.l1_size,
           "l2_size": acc.l2_size, "noc_bw": acc.noc_bw, "offchip_bw": acc.offchip_bw,
           "noc_hop_latency": acc.noc_hop_latency}
    if figures:
        f = Budget.figures(acc)
        out.update(area_mm2=f["max_area_mm2"], power_mw=f["max_power_mw"], buffer=f["max_buffer"])
    return out


def accelerator_of(trial: optuna.trial.FrozenTrial, spec: CodesignSpec) -> Accelerator:
    a = trial.user_attrs
    return Accelerator(num_pes=a["num_pes"], simd_lanes=a["simd_lanes"], l1_size=a["l1_size"],
                       l2_size=a["l2_size"], noc_bw=a["noc_bw"], offchip_bw=a["offchip_bw"],
                       noc_hop_latency=a["noc_hop_latency"], noc_hops=spec.noc_hops, tech=spec.tech_obj())


def mapping_of(study: optuna.Study, trial: optuna.trial.FrozenTrial, spec: CodesignSpec,
               network: str | None = None) -> list:
    """The network's layers with the dataflows a trial chose (from the mapping cache); in a mix, those
    of ``network``, under their own names."""
    cache = mapcache.for_study(study)
    chosen = trial.system_attrs.get(LAYERS_ATTR, {})
    out = []
    for net, _, layers in spec.members():
        if spec.is_mix and net != network:
            continue
        for layer in layers:
            entry = cache.get(chosen.get(layer.name, {}).get("key", "")) or {}
            text = entry.get("dataflow")
            own = replace(layer, name=layer.name[len(net) + 1:]) if spec.is_mix else layer
            out.append((own, parse_dataflow("Dataflow {\n" + text + "\n}") if text else None))
    return out


# ----------------------------------------------------------------------------------- workers
def run_worker(name: str, url: str, *, worker: int = 0, trials: int | None = None,
               timeout: float | None = None, heartbeat: int | None = None, grace: int | None = None,
               trial_timeout: float | None = TRIAL_TIMEOUT_S, on_trial: Callable | None = None,
               poll: float = 1.0) -> int:
    """Run trials of study ``name`` until it has ``trials`` complete ones (default: its spec's), every
    design of its hardware space is done, the timeout passes, or Ctrl-C. Returns the number of trials
    this worker completed."""
    kwargs = {k: v for k, v in (("heartbeat", heartbeat), ("grace", grace)) if v is not None}
    storage = open_storage(url, **kwargs) if is_relational(url) else open_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    spec = stored_spec(study)
    if trials is not None:
        spec = replace(spec, trials=trials)
    seed = sampler_seed(spec.seed, worker, len(study.get_trials(deepcopy=False)))
    runner = Codesign(study, spec, trial_timeout=trial_timeout)
    study.sampler = hardware_sampler(spec, seed, region=runner.region)
    size = runner.region.size()        # the designs the sampler can propose
    deadline = time.monotonic() + timeout if timeout else math.inf
    done = 0
    waiting_since = None
    # Optuna logs a failed trial with its traceback: our own lines say what failed and why.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    while time.monotonic() < deadline:
        with quiet():
            optuna.storages.fail_stale_trials(study)
        if is_journal(url):
            fail_dead_workers(study)            # no heartbeat: look at the recorded processes
        c = counts(study)
        if c["COMPLETE"] >= spec.trials:
            break
        if c["COMPLETE"] + c["RUNNING"] >= spec.trials and not c["WAITING"]:
            # The last trials run elsewhere: wait in case one dies (its heartbeat stops, or its
            # process is gone, and it is queued again). A trial that records no worker process
            # (another tool's) cannot be judged: say how to retry it.
            waiting_since = waiting_since or time.monotonic()
            if not is_relational(url) and time.monotonic() - waiting_since > GRACE_S:
                print(f"waiting for {c['RUNNING']} running trial(s) of study {name}; if their workers "
                      f"died, stop this one and run: dse study resume {name} --retry-running",
                      file=sys.stderr)
                waiting_since = time.monotonic()
            time.sleep(poll)
            continue
        if len(timed_out_designs(study)) >= size:
            print(f"study {name}: the watchdog stopped every design within the budget; "
                  f"{c['COMPLETE']} complete trials", file=sys.stderr)
            break
        waiting_since = None
        runner.current = None
        # A stop between Optuna creating a trial and the objective learning its id would leave the
        # trial running with no worker recorded: hold it until the id is known.
        runner.on_recorded = processes.hold()
        try:
            try:
                study.optimize(runner, n_trials=1, catch=(TrialTimedOut,))
            finally:
                runner.on_recorded()         # if the objective never ran
        except KeyboardInterrupt:
            requeue_interrupted(study, runner.current)
            raise
        except AssertionError as exc:
            # Optuna hides a storage error while recording a trial's end behind an AssertionError
            # ("Should not reach."): report the storage error itself.
            cause = _dse_cause(exc)
            if cause is None:
                raise
            raise cause from None
        if runner.current is not None:
            t = study._storage.get_trial(runner.current)
            if t.state == TrialState.COMPLETE:
                done += 1
            if on_trial and t.state in (TrialState.COMPLETE, TrialState.FAIL):
                on_trial(t)
    return done


def hardware_sampler(spec: CodesignSpec, seed: int, *, region: BudgetRegion | None = None
                     ) -> HardwareSampler:
    """The study's sampler (``spec.sampler``, seeded) held to the budget and to untried designs."""
    return HardwareSampler(make_sampler(spec.sampler, seed, len(spec.objectives) > 1),
                           region or spec.region(), seed=seed)


def sampler_seed(seed: int, worker: int, trials_before: int) -> int:
    """The sampler seed of a worker: ``seed + worker`` on a fresh study; on a study that already has
    trials, a seed drawn from (seed, worker, trial count), so a resumed run draws new designs instead of
    replaying the first run's random start."""
    if trials_before == 0:
        return (seed + worker) % (limits.MAX_SEED + 1)
    return int(np.random.SeedSequence([seed, worker, trials_before]).generate_state(1)[0])


def timed_out_designs(study: optuna.Study) -> set:
    """The designs (hardware parameters) the watchdog stopped."""
    return {tuple(sorted(t.params.items()))
            for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if str(t.user_attrs.get("failed", "")).startswith("watchdog")}


def fail_dead_workers(study: optuna.Study) -> int:
    """Fail and re-queue running trials whose worker process is gone (storages without heartbeat).
    Called between trials: a running trial of this process is one left behind."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if processes.is_dead(t.system_attrs.get(WORKER_ATTR), idle=True):
            requeue_interrupted(study, t._trial_id)
            n += 1
    return n


def _dse_cause(exc: BaseException) -> DseError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DseError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def requeue_interrupted(study: optuna.Study, trial_id: int | None) -> None:
    """Queue a copy of a trial a Ctrl-C interrupted (same hardware), as a dead worker's would be."""
    if trial_id is None:
        return
    with processes.uninterrupted():
        _requeue(study, trial_id)


def _requeue(study: optuna.Study, trial_id: int) -> None:
    trial = study._storage.get_trial(trial_id)
    if trial.state == TrialState.RUNNING:
        try:
            study._storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            return                  # another worker failed (and re-queued) it first
        trial = study._storage.get_trial(trial_id)
    elif trial.state != TrialState.FAIL:
        return
    if trial.params:                # a trial stopped before it drew its design has nothing to re-run
        retry_trial(study, trial)


def retry_running(study: optuna.Study) -> int:
    """Fail and re-queue every running trial (after a crash, on storages without heartbeat)."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        requeue_interrupted(study, t._trial_id)
        n += 1
    return n


WORKER_BAD_INPUT = 2             # a --workers child's exit code for a DseError (storage, input)


def _worker_main(name: str, url: str, worker: int, options: dict, parent: int) -> None:
    """Entry point of a ``--workers`` child process: it stops (its trial queued again) when the parent
    goes, and reports errors as one line, as the command line does."""
    try:
        processes.die_with_parent(parent)
        run_worker(name, url, worker=worker, **options)
    except KeyboardInterrupt:
        pass
    except DseError as exc:
        print(f"dse worker {worker}: {exc}", file=sys.stderr)
        sys.exit(WORKER_BAD_INPUT)
    except Exception as exc:  # a bug of ours: one line, like the command line's
        print(f"dse worker {worker}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


def run_workers(name: str, url: str, workers: int, *, progress: Callable[[dict], None] | None = None,
                **options) -> None:
    """``workers`` local processes on one study (``options`` as for :func:`run_worker`); returns when
    they are all done. The children get the storage URL through the process-start pipe, never on a
    command line, and die with this process."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(name, url, w, options, os.getpid()), daemon=False)
             for w in range(workers)]
    for p in procs:
        p.start()
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(timeout=1.0 / len(procs))
            if progress:
                progress(counts(study))
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=30)
        raise
    failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if failed and all(code == WORKER_BAD_INPUT for code in failed):
        raise SpecError(f"{len(failed)} worker process(es) stopped (their messages are above); completed "
                        "trials are kept: run the same command again to continue", key="--workers")
    if failed:
        raise RuntimeError(f"{len(failed)} worker process(es) failed (exit codes {failed})")


def worker_count_warning(url: str, workers: int) -> str | None:
    if workers > 1 and url.startswith("sqlite:"):
        return (f"warning: {workers} workers on SQLite: its writes are serialised and may time out under "
                "load; a journal file (journal:///PATH) or PostgreSQL suits several workers better")
    return None


__all__ = ["CodesignSpec", "create_or_load", "load", "run_worker", "run_workers", "stored_spec"]
