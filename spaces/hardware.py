"""Hardware spaces and budgets: which accelerators a co-design study may build.

A :class:`HardwareSpace` gives every accelerator parameter a discrete set of values, written as

- ``start:stop:step``  an arithmetic range, stop included (``128:1024:128``),
- ``start:stop:*f``    a geometric range, each value f times the last (``16:4096:*2``),
- ``a,b,c``            a list (``1,2,4``), or a single value (``256``).

Samplers see every parameter that has more than one value under its own name and in its own units
(:meth:`HwParam.distribution`): an arithmetic range is an integer with that step; a geometric range or
a list is an integer between its smallest and largest value, on a log scale when all are positive, and
a proposal is snapped to the nearest value of the list (:meth:`HwParam.snap`). So what a study stores
(and Optuna Dashboard plots) is the hardware itself: ``num_pes`` 256, not an index.

A :class:`Budget` caps area (mm^2), power (mW), PEs and total buffer (PEs x L1 + L2, elements), with
area and power from the cost model's ``Tech`` table for the accelerator as provisioned.
:class:`BudgetRegion` is the part of a space within a budget. Area, power, PEs and buffer never fall
when a parameter grows (every ``Tech`` coefficient is non-negative, the arbiter's constant aside), so
the region is closed downwards: a design fits if it fits with every later parameter at its smallest
value. That makes the region cheap to test, to sample and to project a proposal into, parameter by
parameter, without listing it. (A ``Tech`` table with negative coefficients can break this; a
projected design may then still exceed the budget, and a study records it as infeasible without
searching it, as it always did.)
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from costmodel import Accelerator, InfeasibleError, SpecError, Tech, limits
from costmodel.tech import DEFAULT_TECH

# Every parameter a hardware space may vary, in Accelerator's field names.
HW_PARAMS = ("num_pes", "simd_lanes", "l1_size", "l2_size", "noc_bw", "offchip_bw", "noc_hop_latency")

# Edge to cloud: 16-4096 PEs, 64-4096 elements of L1 per PE, 16K-4M elements of L2.
DEFAULT_SPECS = {
    "num_pes": "16:4096:*2",
    "simd_lanes": "1,2,4",
    "l1_size": "64:4096:*2",
    "l2_size": "16384:4194304:*2",
    "noc_bw": "16:1024:*2",
    "offchip_bw": "8:256:*2",
    "noc_hop_latency": "1",
}

MAX_VALUES = limits.MAX_HW_VALUES   # per parameter: a typo such as 1:1e9:1 should not exhaust memory


@dataclass(frozen=True, slots=True)
class HwParam:
    """One hardware parameter: its name, its values (sorted) and how samplers see them."""

    name: str
    spec: str
    values: tuple[int, ...]
    step: int | None = None           # arithmetic ranges: the step; lists and geometric ranges: None

    @property
    def key(self) -> str:
        """The sampler's parameter name: the hardware parameter's own."""
        return self.name

    @property
    def varies(self) -> bool:
        return len(self.values) > 1

    @property
    def log(self) -> bool:
        """Whether samplers see the values on a log scale (lists and geometric ranges of positive values)."""
        return self.step is None and self.values[0] >= 1

    def distribution(self) -> dict:
        """Keyword arguments of ``trial.suggest_int`` (and of Optuna's ``IntDistribution``)."""
        if self.step is not None:
            return {"low": self.values[0], "high": self.values[-1], "step": self.step}
        return {"low": self.values[0], "high": self.values[-1], "log": self.log}

    def snap(self, value: float) -> int:
        """The value of this parameter nearest to ``value`` (in log terms on a log scale; ties: the lower)."""
        return self.values[self.nearest_index(value)]

    def nearest_index(self, value: float) -> int:
        values = self.values
        if self.step is not None:
            clipped = min(max(value, values[0]), values[-1])
            return math.floor((clipped - values[0]) / self.step + 0.5 - 1e-9)
        i = bisect.bisect_left(values, value)
        if i == 0:
            return 0
        if i == len(values):
            return len(values) - 1
        lo, hi = values[i - 1], values[i]
        if self.log and value > 0:
            below = math.log(value) - math.log(lo) <= math.log(hi) - math.log(value)
        else:
            below = value - lo <= hi - value
        return i - 1 if below else i

    def index(self, value: int) -> int:
        """The position of one of this parameter's values."""
        i = bisect.bisect_left(self.values, value)
        if i == len(self.values) or self.values[i] != value:
            shown = ", ".join(map(str, self.values[:8])) + (", ..." if len(self.values) > 8 else "")
            raise SpecError(f"{value} is not a value of the hardware space ({shown})", key=self.name)
        return i

    def suggest(self, trial) -> int:
        """This parameter's value for a trial. Under a study's own sampler (``studies.sampling``) the
        proposal is already one of the values; any other value is refused, since the trial would then
        store a design other than the one it evaluates."""
        if not self.varies:
            return self.values[0]
        value = trial.suggest_int(self.key, **self.distribution())
        self.index(value)
        return int(value)

    def value_of(self, params: Mapping[str, int]) -> int:
        if not self.varies:
            return self.values[0]
        value = int(params[self.key])
        self.index(value)
        return value


def format_value(value: float) -> str:
    """A figure for people: a whole number with thousands separators, otherwise about four
    significant digits; never in exponent notation (``1,022,480``, ``8,758``, ``12.35``, ``0.04615``)."""
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == int(v):
        return f"{int(v):,}"
    digits = max(0, 3 - math.floor(math.log10(abs(v))))
    text = f"{v:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_spec(name: str, spec: str | int) -> HwParam:
    """A parameter from its text (module docstring); errors name the parameter."""
    text = str(spec).strip().replace(" ", "")
    where = f"--{name.replace('_', '-')}" if name in HW_PARAMS else name
    low, high = limits.ACCELERATOR_LIMITS.get(name, (1, None))
    shown = text if len(text) <= 60 else text[:57] + "..."

    def number(s: str, minimum: int = low) -> int:
        try:
            value = int(s)
        except ValueError:
            raise SpecError(f"'{s[:40]}' is not an integer in '{shown}' (ranges are start:stop:step, "
                            "start:stop:*factor or a comma list)", key=where) from None
        if value < minimum:
            raise SpecError(f"{value} is out of range in '{shown}'", key=where)
        if high is not None and value > high:
            raise SpecError(f"{value:,} is above the limit of {high:,} in '{shown}' (see the README's "
                            "Limits)", key=where)
        return value

    step = None
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise SpecError(f"a range is start:stop:step or start:stop:*factor, got '{text}'", key=where)
        start, stop = number(parts[0]), number(parts[1])
        if stop < start:
            raise SpecError(f"stop {stop} is below start {start} in '{shown}'", key=where)
        if parts[2].startswith("*"):
            factor = number(parts[2][1:], 0)
            if factor < 2 or start < 1:
                raise SpecError(f"a geometric range needs start >= 1 and a factor >= 2, got '{shown}'",
                                key=where)
            values, v = [], start
            while v <= stop:
                values.append(v)
                v *= factor
        else:
            step = number(parts[2], 0)
            if step < 1:
                raise SpecError(f"the step of a range must be positive, got '{shown}'", key=where)
            if (stop - start) // step + 1 > MAX_VALUES:
                raise SpecError(f"'{shown}' has more than {MAX_VALUES:,} values", key=where)
            values = list(range(start, stop + 1, step))
    else:
        values = sorted({number(s) for s in text.split(",") if s != ""})
        if not values:
            raise SpecError("no value given", key=where)
    if len(values) > MAX_VALUES:
        raise SpecError(f"'{shown}' has more than {MAX_VALUES:,} values", key=where)
    return HwParam(name, text, tuple(values), step if len(values) > 1 else None)


@dataclass(frozen=True)
class HardwareSpace:
    """Discrete values for every accelerator parameter (unset ones take :data:`DEFAULT_SPECS`)."""

    params: tuple[HwParam, ...]
    tech: Tech = field(default=DEFAULT_TECH, compare=False)
    noc_hops: int = 1

    @classmethod
    def from_specs(cls, specs: Mapping[str, str | int] | None = None, *, tech: Tech = DEFAULT_TECH,
                   noc_hops: int = 1) -> HardwareSpace:
        specs = dict(specs or {})
        unknown = set(specs) - set(HW_PARAMS)
        if unknown:
            raise SpecError(f"unknown hardware parameter (known: {', '.join(HW_PARAMS)})",
                            key=sorted(unknown)[0])
        merged = {**DEFAULT_SPECS, **{k: v for k, v in specs.items() if v is not None}}
        params = tuple(parse_spec(n, merged[n]) for n in HW_PARAMS)
        limits.accelerator_field("noc_hops", noc_hops)
        # Every design must be a valid Accelerator: checked here, not in the middle of a study.
        hop_latency = next(p for p in params if p.name == "noc_hop_latency").values[-1]
        limits.check_noc_latency(noc_hops, hop_latency, key="--noc-hop-latency")
        return cls(params, tech, noc_hops)

    def specs(self) -> dict[str, str]:
        return {p.name: p.spec for p in self.params}

    def param(self, name: str) -> HwParam:
        return next(p for p in self.params if p.name == name)

    def size(self) -> int:
        return math.prod(len(p.values) for p in self.params)

    def varying(self) -> tuple[HwParam, ...]:
        """The parameters with more than one value: what a sampler chooses."""
        return tuple(p for p in self.params if p.varies)

    def smallest(self) -> Accelerator:
        """The design with every parameter at its smallest value."""
        return self._accelerator({p.name: p.values[0] for p in self.params})

    def within(self, budget: Budget) -> BudgetRegion:
        """The designs within ``budget``; :class:`~costmodel.InfeasibleError` if there are none,
        naming the smallest area and power the space allows."""
        return BudgetRegion(self, budget)

    def suggest(self, trial) -> Accelerator:
        return self._accelerator({p.name: p.suggest(trial) for p in self.params})

    def decode(self, params: Mapping[str, int]) -> Accelerator:
        return self._accelerator({p.name: p.value_of(params) for p in self.params})

    def _accelerator(self, values: Mapping[str, int]) -> Accelerator:
        return Accelerator(**values, noc_hops=self.noc_hops, tech=self.tech)

    def grid(self) -> dict[str, np.ndarray]:
        """Every design of the space as flat arrays (C order over :data:`HW_PARAMS`)."""
        axes = np.meshgrid(*(np.array(p.values, dtype=np.int64) for p in self.params), indexing="ij")
        return {p.name: a.ravel() for p, a in zip(self.params, axes, strict=True)}

    def describe(self) -> str:
        return ", ".join(f"{p.name} {p.spec} ({len(p.values)})" for p in self.params) + \
            f"; {self.size():,} designs"

    def key(self, values: Mapping[str, int]) -> tuple[int, ...]:
        """A design as a tuple of its varying parameters' values (to tell designs apart)."""
        return tuple(int(values[p.name]) for p in self.varying())


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Upper limits on what an accelerator may cost. ``None``: no limit."""

    max_area_mm2: float | None = None
    max_power_mw: float | None = None
    max_pes: int | None = None
    max_buffer: int | None = None          # PEs x L1 + L2, elements

    def __post_init__(self) -> None:
        for name in ("max_area_mm2", "max_power_mw", "max_pes", "max_buffer"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise SpecError(f"must be positive, got {value}", key=name)

    def names(self) -> tuple[str, ...]:
        return ("max_area_mm2", "max_power_mw", "max_pes", "max_buffer")

    def as_dict(self) -> dict[str, float | None]:
        return {n: getattr(self, n) for n in self.names()}

    @staticmethod
    def figures(acc: Accelerator) -> dict[str, float]:
        """The figures a budget limits, for one accelerator."""
        return {"max_area_mm2": acc.area_um2() / 1e6, "max_power_mw": acc.power_mw(),
                "max_pes": acc.num_pes, "max_buffer": acc.num_pes * acc.l1_size + acc.l2_size}

    def violations(self, acc: Accelerator) -> dict[str, float]:
        """Per limit, (figure - limit) / limit: <= 0 where met (0.0 for limits not set)."""
        figures = self.figures(acc)
        return {n: (figures[n] - limit) / limit if (limit := getattr(self, n)) is not None else 0.0
                for n in self.names()}

    def violated(self, acc: Accelerator) -> list[str]:
        """The limits ``acc`` breaks, as readable text."""
        figures = self.figures(acc)
        out = []
        for n, v in self.violations(acc).items():
            if v > 0:
                out.append(f"{n} {format_value(getattr(self, n))} (design: {format_value(figures[n])})")
        return out

    def tighter(self, other: Budget) -> Budget:
        """The stricter of two budgets, limit by limit."""
        values = {}
        for n in self.names():
            a, b = getattr(self, n), getattr(other, n)
            values[n] = b if a is None else a if b is None else min(a, b)
        return Budget(**values)

    def admits(self, figures: Mapping[str, float]) -> bool:
        """Whether stored figures (the keys of :meth:`figures`) are within every limit."""
        return all(getattr(self, n) is None or figures[n] <= getattr(self, n) for n in self.names())

    def fits(self, acc: Accelerator) -> bool:
        return all(v <= 0 for v in self.violations(acc).values())

    def fits_grid(self, grid: Mapping[str, np.ndarray], tech: Tech) -> np.ndarray:
        """:meth:`fits` for designs given as arrays (the keys of :data:`HW_PARAMS`)."""
        g = {k: np.asarray(v, dtype=float) for k, v in grid.items()}
        args = (g["num_pes"], g["simd_lanes"], g["noc_bw"], g["l1_size"], g["l2_size"])
        figures = {"max_area_mm2": tech.area_um2(*args) / 1e6, "max_power_mw": tech.power_mw(*args),
                   "max_pes": g["num_pes"], "max_buffer": g["num_pes"] * g["l1_size"] + g["l2_size"]}
        ok = np.ones(len(g["num_pes"]), dtype=bool)
        for name in self.names():
            limit = getattr(self, name)
            if limit is not None:
                # The same test as violations(): (figure - limit) / limit <= 0.
                ok &= (figures[name] - limit) / limit <= 0
        return ok


# A hardware space up to this many designs is listed whole to find a design a study has not tried.
ENUMERATE_DESIGNS = 200_000
RANDOM_TRIES = 256


@dataclass(frozen=True)
class BudgetRegion:
    """The designs of a hardware space within a budget (closed downwards: module docstring).

    Designs are mappings from parameter names to values (the varying parameters; the others keep their
    only value)."""

    space: HardwareSpace
    budget: Budget

    def __post_init__(self) -> None:
        smallest = self.space.smallest()
        if self.budget.fits(smallest):
            return
        figures = Budget.figures(smallest)
        binding = next(n for n, v in self.budget.violations(smallest).items() if v > 0)
        flag = "--" + binding.replace("_", "-")
        raise InfeasibleError(
            f"{flag} {format_value(getattr(self.budget, binding))}: no design of the hardware space fits "
            "the budget: "
            f"the smallest area it allows is {figures['max_area_mm2']:.3g} mm^2 and the smallest power "
            f"{figures['max_power_mw']:.3g} mW, with {smallest.num_pes} PEs and {figures['max_buffer']:,} "
            "elements of buffer; raise the budget or lower the space's smallest values",
            constraint=binding)

    def fits(self, values: Mapping[str, int]) -> bool:
        """Whether a design is within the budget; parameters not given take their smallest value."""
        return self.budget.fits(self.space._accelerator(
            {p.name: int(values.get(p.name, p.values[0])) for p in self.space.params}))

    def top(self, chosen: Mapping[str, int], param: HwParam) -> int:
        """The largest index of ``param``'s values that fits with the values ``chosen`` so far and the
        smallest of the others (-1 if none does)."""
        lo, hi = -1, len(param.values) - 1          # invariant: values[lo] fits (lo = -1: none known)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.fits({**chosen, param.name: param.values[mid]}):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def project(self, proposal: Mapping[str, float]) -> dict[str, int]:
        """A sampler's proposal as a design of the region: each varying parameter, in order, snapped
        to its nearest value and lowered, if need be, to the largest that still fits with the ones
        before it. A proposal within the region is returned unchanged."""
        chosen: dict[str, int] = {}
        for p in self.space.varying():
            want = p.nearest_index(proposal[p.name])
            chosen[p.name] = p.values[min(want, self.top(chosen, p))]
        return chosen

    def random(self, rng: np.random.Generator) -> dict[str, int]:
        """A design of the region: each parameter in order uniform over the values that still fit."""
        chosen: dict[str, int] = {}
        for p in self.space.varying():
            chosen[p.name] = p.values[int(rng.integers(0, self.top(chosen, p) + 1))]
        return chosen

    def designs(self) -> Iterator[dict[str, int]]:
        """Every design of the region (spaces up to :data:`ENUMERATE_DESIGNS` designs), in grid order."""
        grid = self.space.grid()
        ok = self.budget.fits_grid(grid, self.space.tech)
        names = [p.name for p in self.space.varying()]
        for i in np.flatnonzero(ok):
            yield {n: int(grid[n][i]) for n in names}

    def size(self) -> int:
        """How many designs the region has (for spaces too large to list: the space's size, a bound)."""
        if self.space.size() > ENUMERATE_DESIGNS:
            return self.space.size()
        return int(self.budget.fits_grid(self.space.grid(), self.space.tech).sum())

    def unseen(self, seen: set[tuple[int, ...]], rng: np.random.Generator) -> dict[str, int] | None:
        """A design of the region whose :meth:`HardwareSpace.key` is not in ``seen``, chosen at random;
        ``None`` if every design was seen (or, in a space too large to list, none was found in
        :data:`RANDOM_TRIES` random draws)."""
        if self.space.size() <= ENUMERATE_DESIGNS:
            fresh = [d for d in self.designs() if self.space.key(d) not in seen]
            return fresh[int(rng.integers(0, len(fresh)))] if fresh else None
        for _ in range(RANDOM_TRIES):
            design = self.random(rng)
            if self.space.key(design) not in seen:
                return design
        return None


__all__ = ["DEFAULT_SPECS", "HW_PARAMS", "Budget", "BudgetRegion", "HardwareSpace", "HwParam", "format_value",
           "parse_spec"]
