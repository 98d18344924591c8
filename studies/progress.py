"""One line per co-design trial while a study runs: where it stands (n of N complete, time so far, an
estimate of the time left), what the trial built and scored, and the best so far.

    [12/100  1 min 5 s, about 8 min left] trial 11: 256 PEs x 2, L1 512, L2 256K, NoC 64, off-chip 32,
        12.31 mm^2, 2,104 mW: latency 1,234,567 cycles; best so far 1,100,002 (trial 7)

(one line on the terminal). The estimate is the mean time of this run's complete trials times the
trials still to come; numbers are written out, never in exponent notation.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

import numpy as np

from search.pareto import pareto_mask
from spaces.hardware import format_value

from .codesign import CodesignSpec, counts
from .results import OBJECTIVE_COLUMN

UNITS = {"latency": "cycles", "energy": "nJ", "edp": "cycles x nJ", "area": "mm^2"}


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``."""
    s = round(seconds)
    if seconds < 1:
        return "< 1 s"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def size(elements: int) -> str:
    """A buffer size in elements, short: ``512``, ``256K``, ``4M`` (K = 1024)."""
    for unit, scale in (("M", 1 << 20), ("K", 1 << 10)):
        if elements >= scale and elements % scale == 0:
            return f"{elements // scale}{unit}"
    return f"{elements:,}"


def hardware(a: dict) -> str:
    """A trial's design in a few words (its user attributes)."""
    return (f"{a['num_pes']} PEs x {a['simd_lanes']}, L1 {size(a['l1_size'])}, L2 {size(a['l2_size'])}, "
            f"NoC {a['noc_bw']}, off-chip {a['offchip_bw']}")


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def infeasible(reason: str) -> str:
    """Why a trial is infeasible, in a few words: the layers no mapping fits and what binds."""
    if not reason.startswith("no mapping fits: "):
        return _short(reason)
    layers = reason[len("no mapping fits: "):].split(":", 1)[0]
    binding = re.search(r"binding constraint: ([a-z_0-9]+)", reason)
    return _short(f"no mapping fits {layers}" + (f" ({binding.group(1)} binds)" if binding else ""))


class TrialProgress:
    """Progress lines of one run of a study (``clock``: seconds, for the estimate)."""

    def __init__(self, study, spec: CodesignSpec, trials: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.trials = trials
        self.clock = clock
        self.start = clock()
        self.complete_before = counts(study)["COMPLETE"]
        self.best: tuple[float, int] | None = None           # (value, trial) of the first objective
        self.values: dict[int, tuple[float, ...]] = {}       # feasible trials' objective values
        for t in study.get_trials(deepcopy=False):
            self._note(t)

    def _feasible(self, t) -> bool:
        return (t.state.name == "COMPLETE" and bool(t.constraints)
                and all(v <= 0 for v in t.constraints.values()) and t.values is not None
                and all(math.isfinite(v) for v in t.values))

    def _note(self, t) -> None:
        if not self._feasible(t):
            return
        self.values[t.number] = tuple(t.values)
        value = t.values[0]
        if self.best is None or value < self.best[0]:
            self.best = (value, t.number)

    def where(self, complete: int) -> str:
        elapsed = self.clock() - self.start
        done = complete - self.complete_before
        text = f"[{complete}/{self.trials}  {duration(elapsed)}"
        left = self.trials - complete
        if done > 0 and left > 0:
            eta = elapsed / done * left
            text += f", about {duration(eta)} left" if eta >= 1 else ", under a second left"
        return text + "]"

    def best_text(self) -> str:
        if self.best is None:
            return "no feasible design yet"
        first = self.spec.objectives[0]
        text = f"best so far {format_value(self.best[0])} {UNITS[first]} (trial {self.best[1]})"
        if len(self.spec.objectives) > 1:
            front = int(pareto_mask(np.array(list(self.values.values()), dtype=float)).sum())
            text = f"best {first} so far {text[len('best so far '):]}, Pareto front {front} design(s)"
        return text

    def trial_line(self, t, complete: int) -> str:
        """The line of a trial that ended (complete or failed); ``complete``: the study's count."""
        self._note(t)
        a = t.user_attrs
        head = f"  {self.where(complete)} trial {t.number}"
        if t.state.name != "COMPLETE" or "num_pes" not in a:
            return f"{head}: {t.state.name.lower()}: {_short(a.get('failed', ''))}"
        design = f"{hardware(a)}, {a['area_mm2']:.2f} mm^2, {format_value(a['power_mw'])} mW"
        if "duplicate_of" in a:
            what = f"the design of trial {a['duplicate_of']}, answered from storage"
        elif a.get("infeasible"):
            what = infeasible(a["infeasible"])
        else:
            what = ", ".join(f"{name} {format_value(a[OBJECTIVE_COLUMN[name]])} {UNITS[name]}"
                             for name in dict.fromkeys((*self.spec.objectives, "latency", "energy")))
        return f"{head}: {design}: {what}; {self.best_text()}"

    def counts_line(self, c: dict, study) -> str:
        """The line of several workers' progress (``c``: state counts)."""
        for t in study.get_trials(deepcopy=False):
            self._note(t)
        return f"  {self.where(c['COMPLETE'])} {c['RUNNING']} running; {self.best_text()}"


__all__ = ["TrialProgress", "duration", "hardware", "infeasible", "size"]
