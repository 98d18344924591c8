"""What a mapping must satisfy on an accelerator, and how far a design is from satisfying it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel import Accelerator, LayerCost


@dataclass(frozen=True, slots=True, kw_only=True)
class Constraints:
    """Capacities are always enforced; bandwidths only when asked (the runtime already pays for a
    slow NoC or DRAM, so a mapping that needs more bandwidth is slow rather than impossible)."""

    enforce_noc_bw: bool = False
    enforce_offchip_bw: bool = False

    def names(self) -> tuple[str, ...]:
        out = ["l1_size", "l2_size"]
        if self.enforce_noc_bw:
            out.append("noc_bw")
        if self.enforce_offchip_bw:
            out.append("offchip_bw")
        return tuple(out)

    def feasible(self, cost: LayerCost) -> np.ndarray:
        ok = (np.asarray(cost.error) == "") & np.asarray(cost.fits_l1) & np.asarray(cost.fits_l2)
        if self.enforce_noc_bw:
            ok &= np.asarray(cost.meets_noc_bw)
        if self.enforce_offchip_bw:
            ok &= np.asarray(cost.meets_offchip_bw)
        return ok

    def violations(self, cost: LayerCost, acc: Accelerator) -> np.ndarray:
        """(n, k) amounts by which each constraint is exceeded, relative to its limit (<= 0: met).

        A design that cannot be evaluated violates every constraint by 1.
        """
        pairs = [(cost.l1_size_req, acc.l1_size), (cost.l2_size_req, acc.l2_size)]
        if self.enforce_noc_bw:
            pairs.append((cost.peak_noc_bw_req, acc.noc_bw))
        if self.enforce_offchip_bw:
            pairs.append((cost.offchip_bw_req, acc.offchip_bw))
        cols = []
        for req, cap in pairs:
            req = np.asarray(req, dtype=float)
            cols.append(np.zeros_like(req) - 1.0 if cap is None else (req - cap) / cap)
        out = np.stack(cols, axis=1)
        bad = np.asarray(cost.error) != ""
        out[bad] = 1.0
        return out
