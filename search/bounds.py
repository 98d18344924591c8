"""Floors: values no mapping of a layer can beat on an accelerator, from compute and from traffic.

They hold for every mapping the cost model evaluates (tests check them on random mappings):

* compute: the PE peak, ``ceil(true MACs / (PEs x SIMD lanes))`` (the model's invariant);
* NoC: every weight and every input element a MAC reads crosses the NoC at least once (the model's
  property ``whole-last-tile`` guarantees it), and each top-level case's ingress takes at least
  ``ceil(volume / bandwidth)`` cycles with a head latency of one cycle or more (a case's delay is at
  least its ingress delay, and at least one cycle), so runtime >= reads / bandwidth (reads / (2 x
  bandwidth) with no head latency);
* energy: every such element written to L2 once, read from L2 at least once and written to L1 at
  least once, every MAC reading its input and weight from L1 and its partial sum twice.

A searcher whose best design meets the floor has proven it optimal; otherwise the floor (or a
searcher's own, tighter bound) gives the gap it reports.
"""

from __future__ import annotations

import math

from costmodel import Accelerator, Layer

OBJECTIVES_WITH_FLOORS = ("latency", "energy", "edp")


def pe_peak(layer: Layer, acc: Accelerator) -> int:
    return -(-layer.true_macs // (acc.num_pes * acc.simd_lanes))


def latency_floor(layer: Layer, acc: Accelerator) -> int:
    """Cycles: max(PE peak, NoC floor)."""
    compute = pe_peak(layer, acc)
    if acc.noc_bw is None:
        return compute
    reads = layer.touched_inputs + layer.tensor_sizes()["weight"]
    per_cycle = acc.noc_bw if acc.noc_latency >= 1 else 2 * acc.noc_bw
    return max(compute, -(-reads // per_cycle))


def energy_floor_nj(layer: Layer, acc: Accelerator) -> float:
    """nJ: the accesses every mapping makes (module docstring), at the accelerator's Tech."""
    t = acc.tech
    macs = layer.true_macs
    data = layer.touched_inputs + layer.tensor_sizes()["weight"]
    output = layer.tensor_sizes()["output"]
    l2 = 2 * data + output + output               # writes and reads of input/weight; output read, written
    l1 = 4 * macs + data                          # MAC operand reads, partial sums; input/weight fills
    return (t.l2_energy_mac * l2 + t.l1_energy_mac * l1 + macs) * t.mac_energy_nj


def floor(layer: Layer, acc: Accelerator, objective: str) -> float:
    """The floor of one objective (latency in cycles, energy in nJ, EDP in cycles x nJ)."""
    if objective == "latency":
        return float(latency_floor(layer, acc))
    if objective == "energy":
        return energy_floor_nj(layer, acc)
    if objective == "edp":
        return float(latency_floor(layer, acc)) * energy_floor_nj(layer, acc)
    raise ValueError(objective)


def gap(value: float, bound: float | None) -> float | None:
    """Relative gap of ``value`` above ``bound`` (0 = proven optimal)."""
    if bound is None or not math.isfinite(value):
        return None
    return max(0.0, (value - bound) / value) if value > 0 else 0.0
