"""The sampler of a co-design study: any Optuna sampler, held to designs within the budget and new to
the study.

:class:`HardwareSampler` wraps the sampler a study asked for (TPE, NSGA-II, CMA-ES, GP, random). It
samples every hardware parameter at once, at the start of a trial (Optuna's relative sampling): it asks
the wrapped sampler for a proposal, then

1. snaps each value to the hardware space's values and projects the design into the budget
   (:meth:`spaces.hardware.BudgetRegion.project`: area and power are analytic, so a design over budget
   is never proposed, let alone evaluated);
2. if the study has already tried that design (complete, running, queued, or stopped by the watchdog),
   draws an untried design of the region at random instead, so no trial is spent on a design the study
   has. Only when every design within the budget has been tried does a trial repeat one; the study
   then answers it from storage (``duplicate_of``) without evaluating it again.

The wrapped sampler sees the designs as stored, so it learns from what was evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from spaces.hardware import BudgetRegion


def distributions(region: BudgetRegion) -> dict[str, IntDistribution]:
    """The Optuna distribution of every varying hardware parameter (the units of the hardware)."""
    return {p.name: IntDistribution(**p.distribution()) for p in region.space.varying()}


def tried(trial: FrozenTrial) -> bool:
    """Whether a trial's design counts as tried: evaluated, being evaluated, queued, or stopped by the
    watchdog (which is not run again). A surplus trial (pruned before any work) and a crashed trial
    (queued again as a new trial) do not count."""
    if trial.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING):
        return True
    return trial.state == TrialState.FAIL and str(trial.user_attrs.get("failed", "")).startswith("watchdog")


class HardwareSampler(optuna.samplers.BaseSampler):
    """``base`` held to ``region`` and to designs the study has not tried (module docstring)."""

    def __init__(self, base: optuna.samplers.BaseSampler, region: BudgetRegion, *, seed: int) -> None:
        self.base = base
        self.region = region
        self.space = region.space
        self._distributions = distributions(region)
        self._rng = np.random.default_rng(seed)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return dict(self._distributions)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, int]:
        if not search_space:
            return {}
        proposal: dict[str, float] = {}
        own = {name: d for name, d in self.base.infer_relative_search_space(study, trial).items()
               if name in self._distributions}
        if own:
            proposal.update(self.base.sample_relative(study, trial, own))
        for name, distribution in self._distributions.items():
            if name not in proposal:
                proposal[name] = self.base.sample_independent(study, trial, name, distribution)
        design = self.region.project(proposal)
        seen = self.seen(study, trial)
        if self.space.key(design) in seen:
            design = self.region.unseen(seen, self._rng) or design
        return design

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution):
        # Reached only for a parameter outside the hardware space, or when some parameters of a trial
        # were fixed (enqueued) and the others not: keep within the budget given what is chosen.
        value = self.base.sample_independent(study, trial, param_name, param_distribution)
        if param_name not in self._distributions:
            return value
        param = self.space.param(param_name)
        chosen = {k: v for k, v in trial.params.items() if k in self._distributions}
        return param.values[min(param.nearest_index(value), max(self.region.top(chosen, param), 0))]

    def seen(self, study: optuna.Study, trial: FrozenTrial) -> set[tuple[int, ...]]:
        """The designs other trials of the study have tried (:func:`tried`)."""
        names = self._distributions
        out = set()
        for t in study.get_trials(deepcopy=False):
            if t.number == trial.number or not tried(t):
                continue
            params = t.params or t.system_attrs.get("fixed_params", {})
            if all(n in params for n in names):
                out.add(self.space.key(params))
        return out

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        # Optuna reseeds only samplers shared by threads (n_jobs > 1), which dse never runs.
        self.base.reseed_rng()
        self._rng = np.random.default_rng()


__all__ = ["HardwareSampler", "distributions", "tried"]
