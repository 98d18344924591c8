"""Hardware spaces and budgets: which accelerators a co-design study may build.

A :class:`HardwareSpace` gives every accelerator parameter a discrete set of values, written as

- ``start:stop:step``  an arithmetic range, stop included (``128:1024:128``),
- ``start:stop:*f``    a geometric range, each value f times the last (``16:4096:*2``),
- ``a,b,c``            a list (``1,2,4``), or a single value (``256``).

Samplers see a *fixed* encoding: an arithmetic range is an integer parameter with that step (named
like the hardware parameter); a geometric range or a list is an ordinal index (``<name>_index``), so
a sampler still knows that neighbouring values are close. :meth:`HardwareSpace.decode` turns
parameters back into an :class:`~costmodel.Accelerator`.

A :class:`Budget` caps area (mm^2), power (mW), PEs and total buffer (PEs x L1 + L2, elements), with
area and power from the cost model's ``Tech`` table for the accelerator as provisioned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from costmodel import Accelerator, SpecError, Tech, limits
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
    step: int | None = None           # arithmetic ranges: the step; otherwise an ordinal index

    @property
    def key(self) -> str:
        """The sampler's parameter name."""
        return self.name if self.step is not None else f"{self.name}_index"

    def suggest(self, trial) -> int:
        if len(self.values) == 1:
            return self.values[0]
        if self.step is not None:
            return trial.suggest_int(self.key, self.values[0], self.values[-1], step=self.step)
        return self.values[trial.suggest_int(self.key, 0, len(self.values) - 1)]

    def value_of(self, params: Mapping[str, int]) -> int:
        if len(self.values) == 1:
            return self.values[0]
        raw = int(params[self.key])
        return raw if self.step is not None else self.values[raw]


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
                out.append(f"{n} {getattr(self, n):g} (design: {figures[n]:,.4g})")
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


__all__ = ["DEFAULT_SPECS", "HW_PARAMS", "Budget", "HardwareSpace", "HwParam", "parse_spec"]
