"""Technology table: energy per access, area and power coefficients.

The defaults are MAESTRO's 28 nm figures (maestro-project/maestro @ 4eb08d17,
``cost-model/include/base/BASE_constants.hpp``, ``design-space-exploration/DSE_cost-database.hpp`` and
``DSE_scaling-coefficients.hpp``; semantics doc sections 4.9 and 4.11). Users override any of them
from a JSON or TOML file with the same keys.

Units: energies in units of one MAC's energy (``*_energy_mac``) or nJ; areas in um^2; powers in mW;
buffer sizes in elements (MAESTRO's "bytes" are elements).
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from .errors import SpecError


@dataclass(frozen=True, slots=True, kw_only=True)
class Tech:
    l1_energy_mac: float = 1.68       # one L1 access, in MAC energies
    l2_energy_mac: float = 18.61      # one L2 access, in MAC energies
    mac_energy_nj: float = 0.00023    # one MAC, nJ
    mac_area_um2: float = 283.0       # one ALU (SIMD lane)
    mac_power_mw: float = 1.2223
    l1_area_um2_per_elem: float = 0.104
    l1_power_mw_per_elem: float = 0.00345
    l2_area_um2_per_elem: float = 0.104
    l2_power_mw_per_elem: float = 0.00345
    bus_unit_area_um2: float = 101.7938
    bus_unit_power_mw: float = 0.8
    arbiter_unit_area_um2: float = 395.473
    arbiter_unit_power_mw: float = 0.34
    # Scaling with the PE count P: bus factor c1*P + c0; matrix arbiter factor a2*P^2 + a1*P + a0.
    bus_c1: float = 14.662
    bus_c0: float = 28.895
    arbiter_a2: float = 1.2886
    arbiter_a1: float = 5.5814
    arbiter_a0: float = -23.711

    @classmethod
    def from_file(cls, path: str | Path) -> Tech:
        """Read overrides from a ``.json`` or ``.toml`` file; unknown keys are an error."""
        from .limits import read_limited

        p = Path(path)
        text = read_limited(p, lambda reason: SpecError(f"tech file {reason}", key=str(p)))
        try:
            data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
        except (ValueError, RecursionError) as exc:   # decode errors, over-long integer literals
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise SpecError(f"not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {reason}",
                            key=str(p)) from None
        return cls.from_mapping(data, source=str(p))

    @classmethod
    def from_mapping(cls, data: dict, *, source: str = "tech") -> Tech:
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict):
            raise SpecError("expected a table of key = value pairs", key=source)
        values = {}
        for key, value in data.items():
            if key not in known:
                raise SpecError(f"unknown key (known: {', '.join(sorted(known))})", key=f"{source}.{key}")
            if not isinstance(value, int | float) or isinstance(value, bool) or not _finite(value):
                raise SpecError(f"must be a finite number, got {str(value)[:40]}", key=f"{source}.{key}")
            values[key] = float(value)
        return replace(cls(), **values)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    # ------------------------------------------------------------------------- area and power
    def area_um2(self, num_pes, simd_lanes, noc_bw, l1_size, l2_size):
        """Accelerator area (MAESTRO's ``DSE::Accelerator``); works on scalars or numpy arrays.

        ``l1_size`` is per PE, ``l2_size`` total, both in elements; an SRAM of size 0 counts as one cell.
        """
        p = np.asarray(num_pes, dtype=float)
        pe = p * (self.mac_area_um2 * simd_lanes + self.l1_area_um2_per_elem * np.maximum(1, l1_size))
        l2 = self.l2_area_um2_per_elem * np.maximum(1, l2_size)
        bus = self.bus_unit_area_um2 * (self.bus_c1 * p + self.bus_c0) * noc_bw
        arb = self.arbiter_unit_area_um2 * self._arbiter_factor(p)
        return _scalar(pe + l2 + bus + np.maximum(self.arbiter_unit_area_um2, arb))

    def power_mw(self, num_pes, simd_lanes, noc_bw, l1_size, l2_size):
        """Accelerator power, same inputs as :meth:`area_um2`."""
        parts = self.power_breakdown_mw(num_pes, simd_lanes, noc_bw, l1_size, l2_size)
        return _scalar(parts["pe"] + parts["l1"] + parts["l2"] + parts["noc"])

    def power_breakdown_mw(self, num_pes, simd_lanes, noc_bw, l1_size, l2_size) -> dict:
        p = np.asarray(num_pes, dtype=float)
        bus = self.bus_unit_power_mw * (self.bus_c1 * p + self.bus_c0) / 1000.0 * noc_bw
        arb = np.maximum(self.arbiter_unit_power_mw,
                         self.arbiter_unit_power_mw * self._arbiter_factor(p) / 1000.0)
        return {"pe": _scalar(p * self.mac_power_mw * simd_lanes),
                "l1": _scalar(p * self.l1_power_mw_per_elem * np.maximum(1, l1_size)),
                "l2": _scalar(self.l2_power_mw_per_elem * np.maximum(1, l2_size) + 0 * p),
                "noc": _scalar(bus + arb)}

    def _arbiter_factor(self, p):
        return self.arbiter_a2 * p * p + self.arbiter_a1 * p + self.arbiter_a0


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:                    # an integer too large for a float
        return False


def _scalar(x):
    a = np.asarray(x, dtype=float)
    return float(a) if a.ndim == 0 else a


DEFAULT_TECH = Tech()
