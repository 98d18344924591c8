"""Hardware sweeps: one mapping on a grid of accelerators.

MAESTRO's design-space exploration, done by reuse: runtime, traffic and buffer requirements depend on
the PE count and the NoC parameters only, so the cost model runs once per (PEs, NoC bandwidth) pair;
L1 and L2 capacities then only decide validity, area and power, which are broadcast over the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .accelerator import Accelerator
from .cost import LayerCost, evaluate_batch
from .dataflow import Dataflow
from .layer import Layer
from .tech import Tech


@dataclass(frozen=True, slots=True)
class SweepResult:
    """Figures over the grid ``num_pes x noc_bw x l1_size x l2_size`` (arrays of that shape)."""

    num_pes: np.ndarray
    noc_bw: np.ndarray
    l1_size: np.ndarray
    l2_size: np.ndarray
    cost: LayerCost                 # per (num_pes, noc_bw) pair, flattened in that order
    runtime_cycles: np.ndarray
    energy_mac_units: np.ndarray
    area_um2: np.ndarray            # as provisioned: the grid's capacities and bandwidth
    power_mw: np.ndarray
    valid: np.ndarray               # evaluable, fits L1 and L2, meets NoC and off-chip bandwidth,
                                    # computes the whole layer

    @property
    def shape(self) -> tuple[int, ...]:
        return self.valid.shape

    @property
    def size(self) -> int:
        return int(self.valid.size)

    def flat(self) -> dict[str, np.ndarray]:
        """One entry per design (C order over the grid axes)."""
        grids = np.meshgrid(self.num_pes, self.noc_bw, self.l1_size, self.l2_size, indexing="ij")
        out = {name: g.ravel() for name, g in zip(("num_pes", "noc_bw", "l1_size", "l2_size"), grids,
                                                  strict=True)}
        for name in ("runtime_cycles", "energy_mac_units", "area_um2", "power_mw", "valid"):
            out[name] = getattr(self, name).ravel()
        return out


def sweep_hardware(layer: Layer, dataflow: Dataflow, *, num_pes, noc_bw, l1_size, l2_size,
                   accelerator: Accelerator | None = None, tech: Tech | None = None,
                   holes: dict | None = None, engine: str | None = None) -> SweepResult:
    """Evaluate one mapping on every combination of the given PE counts, NoC bandwidths, L1 and L2
    capacities (1-d sequences); other accelerator parameters come from ``accelerator``."""
    acc = accelerator or Accelerator()
    tech = tech or acc.tech
    pes = np.asarray(num_pes, dtype=np.int64).ravel()
    bws = np.asarray(noc_bw, dtype=np.int64).ravel()
    l1 = np.asarray(l1_size, dtype=np.int64).ravel()
    l2 = np.asarray(l2_size, dtype=np.int64).ravel()
    pe_grid, bw_grid = (g.ravel() for g in np.meshgrid(pes, bws, indexing="ij"))
    cost = evaluate_batch(layer, dataflow, accelerator=acc, tech=tech, holes=holes, num_pes=pe_grid,
                          noc_bw=bw_grid, l1_size=None, l2_size=None, engine=engine)
    shape2 = (len(pes), len(bws))

    def grid(values):
        return np.asarray(values).reshape(shape2)[:, :, None, None]

    runtime = np.broadcast_to(grid(cost.runtime_cycles), (*shape2, len(l1), len(l2)))
    energy = np.broadcast_to(grid(cost.energy_mac_units), runtime.shape)
    ok = grid(cost.valid)        # evaluable, bandwidths met, the whole layer computed (no L1/L2 cap yet)
    fits = (grid(cost.l1_size_req) <= l1[None, None, :, None]) & \
        (grid(cost.l2_size_req) <= l2[None, None, None, :])
    p4 = pes[:, None, None, None]
    b4 = bws[None, :, None, None]
    area = tech.area_um2(p4, acc.simd_lanes, b4, l1[None, None, :, None], l2[None, None, None, :])
    power = tech.power_mw(p4, acc.simd_lanes, b4, l1[None, None, :, None], l2[None, None, None, :])
    return SweepResult(num_pes=pes, noc_bw=bws, l1_size=l1, l2_size=l2, cost=cost, runtime_cycles=runtime,
                       energy_mac_units=energy, area_um2=np.broadcast_to(area, runtime.shape),
                       power_mw=np.broadcast_to(power, runtime.shape), valid=ok & fits)
