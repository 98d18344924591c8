"""The accelerator an evaluation runs on.

Fields and defaults follow MAESTRO's command line (semantics doc section 2), except that capacities
and bandwidths left unset (``None``) mean *unlimited*: no NoC serialisation delay, no off-chip term,
no capacity check. Units: elements, elements/cycle, cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import SpecError
from .limits import ACCELERATOR_LIMITS, accelerator_field, check_noc_latency
from .tech import DEFAULT_TECH, Tech

# What "unlimited" becomes inside the vectorised engine: large enough never to bind, small enough
# that products stay within int64.
UNLIMITED = 1 << 40

MAESTRO_DEFAULT_NUM_PES = 7  # MAESTRO's --num_pes default (option.hpp)


@dataclass(frozen=True, slots=True, kw_only=True)
class Accelerator:
    num_pes: int = MAESTRO_DEFAULT_NUM_PES
    simd_lanes: int = 1
    l1_size: int | None = None          # per PE, elements
    l2_size: int | None = None          # elements
    noc_bw: int | None = None           # elements/cycle, every cluster level
    noc_hop_latency: int = 0            # cycles per hop
    noc_hops: int = 1                   # average hops
    offchip_bw: int | None = None       # elements/cycle between DRAM and L2
    tech: Tech = field(default=DEFAULT_TECH, compare=False)

    def __post_init__(self) -> None:
        # Within costmodel.limits: finite capacities and bandwidths stay below UNLIMITED, and the
        # engine's products of sizes stay within int64.
        for name in ACCELERATOR_LIMITS:
            value = getattr(self, name)
            if value is None and name in ("l1_size", "l2_size", "noc_bw", "offchip_bw"):
                continue
            accelerator_field(name, value)
        check_noc_latency(self.noc_hops, self.noc_hop_latency)

    @property
    def noc_latency(self) -> int:
        """NoC head latency per transfer: hops x hop latency (same at every cluster level)."""
        return self.noc_hops * self.noc_hop_latency

    def describe(self) -> str:
        def cap(v: int | None) -> str:
            return "unlimited" if v is None else str(v)

        return (f"{self.num_pes} PEs x {self.simd_lanes} lanes, L1 {cap(self.l1_size)}/PE, "
                f"L2 {cap(self.l2_size)}, NoC {cap(self.noc_bw)} el/cycle "
                f"({self.noc_hops} hop x {self.noc_hop_latency} cycles), off-chip {cap(self.offchip_bw)}")

    def area_um2(self) -> float:
        """Area as provisioned (needs finite capacities and NoC bandwidth)."""
        self._require_finite("area")
        return float(self.tech.area_um2(self.num_pes, self.simd_lanes, self.noc_bw, self.l1_size,
                                        self.l2_size))

    def power_mw(self) -> float:
        self._require_finite("power")
        return float(self.tech.power_mw(self.num_pes, self.simd_lanes, self.noc_bw, self.l1_size,
                                        self.l2_size))

    def _require_finite(self, what: str) -> None:
        for name in ("l1_size", "l2_size", "noc_bw"):
            if getattr(self, name) is None:
                raise SpecError(f"the {what} of an accelerator needs a finite value", key=name)
