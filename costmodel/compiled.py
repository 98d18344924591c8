"""Evaluation through the compiled kernel: inputs as arrays, one kernel call, figures as a LayerCost.

Imported lazily by ``cost.py`` (it imports Numba, which costs a few tenths of a second at start-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from functools import lru_cache

import numpy as np

from . import diagnostics as dx
from . import jit
from . import kernel as K
from .accelerator import UNLIMITED, Accelerator
from .dataflow import Dataflow
from .errors import MappingError
from .layer import Layer
from .program import ProgramSet, compile_structure
from .tech import Tech


def cost_jobs() -> int:
    from .cost import jobs

    return jobs()

# Batches at least this large are split over worker threads (smaller ones are not worth waking them).
PARALLEL_MIN = 4096


@lru_cache(maxsize=64)
def _tech_vector(tech: Tech) -> np.ndarray:
    v = np.array([getattr(tech, f.name) for f in fields(Tech)], dtype=np.float64)
    v.setflags(write=False)
    return v


# Kernel column -> LayerCost field, for the figures the kernel reports directly.
_INT_FIELDS = {
    "runtime_cycles": K.I_RUNTIME, "num_macs": K.I_MACS, "l1_size_req": K.I_L1_REQ,
    "l2_size_req": K.I_L2_REQ, "input_l2_reads": K.I_IN_L2R, "weight_l2_reads": K.I_W_L2R,
    "output_l2_writes": K.I_OUT_L2W, "input_l1_reads": K.I_MACS, "input_l1_writes": K.I_IN_L2R,
    "weight_l1_reads": K.I_MACS, "weight_l1_writes": K.I_W_L2R, "output_l1_reads": K.I_OUT_L1,
    "output_l1_writes": K.I_OUT_L1, "peak_noc_bw_req": K.I_PEAK_BW, "offchip_bw_req": K.I_OFFCHIP_BW,
    "used_pes": K.I_USED_PES, "pe_peak_cycles": K.I_PE_PEAK,
    "ingress_delay_min": K.I_IN_MIN, "ingress_delay_max": K.I_IN_MAX, "ingress_delay_avg": K.I_IN_AVG,
    "egress_delay_min": K.I_EG_MIN, "egress_delay_max": K.I_EG_MAX, "egress_delay_avg": K.I_EG_AVG,
    "compute_delay_min": K.I_CO_MIN, "compute_delay_max": K.I_CO_MAX, "compute_delay_avg": K.I_CO_AVG,
}
_FLOAT_FIELDS = {
    "throughput_macs_per_cycle": K.F_THROUGHPUT, "energy_mac_units": K.F_ENERGY,
    "energy_nj": K.F_ENERGY_NJ, "avg_noc_bw_req": K.F_AVG_BW, "avg_utilized_pes": K.F_AVG_ACTIVE,
    "area_um2": K.F_AREA, "power_mw": K.F_POWER, "utilization": K.F_UTILIZATION,
    "arithmetic_intensity": K.F_INTENSITY,
}
# Whole-tensor counts: the same for every design that evaluates (0 for one that does not).
_TENSOR_FIELDS = {"input_l2_writes": "input", "weight_l2_writes": "weight", "output_l2_reads": "output"}
_VIOLATIONS = (("l1_size_req > l1_size", K.VIOLATION_L1), ("l2_size_req > l2_size", K.VIOLATION_L2),
               ("peak_noc_bw_req > noc_bw", K.VIOLATION_NOC),
               ("offchip_bw_req > offchip_bw", K.VIOLATION_OFFCHIP), (dx.PART_OF_LAYER, K.VIOLATION_PART),
               (dx.LOCKSTEP_SKIPS, K.VIOLATION_LOCKSTEP))


_loaded = False


def _run(*args, **kwargs):
    """``kernel.run``; on the first call a cache that cannot be loaded is deleted and the kernel
    compiled again (``jit.recover``)."""
    global _loaded
    if _loaded:
        return K.run(*args, **kwargs)
    try:
        out = K.run(*args, **kwargs)
    except Exception as exc:
        if not jit.recover(exc):
            raise
        out = K.run(*args, **kwargs)
    _loaded = True
    return out


def violation_label(bits: int) -> str:
    return "; ".join(name for name, bit in _VIOLATIONS if bits & bit)


def hardware_matrix(hw: dict[str, np.ndarray | None], batch: int) -> np.ndarray:
    """(batch, N_HW) hardware columns from ``cost.evaluate_batch``'s per-field arrays (None = unlimited)."""
    out = np.empty((batch, K.N_HW), dtype=np.int64)

    def col(name, unset):
        v = hw[name]
        return unset if v is None else v

    out[:, K.HW_NUM_PES] = hw["num_pes"]
    out[:, K.HW_LANES] = hw["simd_lanes"]
    out[:, K.HW_NOC_BW] = col("noc_bw", UNLIMITED)
    out[:, K.HW_LATENCY] = np.asarray(hw["noc_hop_latency"]) * np.asarray(hw["noc_hops"])
    out[:, K.HW_OFFCHIP_BW] = col("offchip_bw", UNLIMITED)
    out[:, K.HW_L1_CAP] = col("l1_size", -1)
    out[:, K.HW_L2_CAP] = col("l2_size", -1)
    out[:, K.HW_NOC_CAP] = col("noc_bw", -1)
    out[:, K.HW_OFFCHIP_CAP] = col("offchip_bw", -1)
    return out


def evaluate(layer: Layer, dataflows: Sequence[Dataflow], structure: np.ndarray, hole_values: np.ndarray,
             hw: np.ndarray, tech: Tech, *, maestro_exact: bool, ngconv_output_with_c: bool,
             threads: int | None = None):
    """Designs of one layer, possibly of many structures: design ``d`` is ``dataflows[structure[d]]``
    with hole values ``hole_values[d, :]`` (in ``Dataflow.holes`` order) on hardware row ``hw[d]``.
    Returns the ``LayerCost`` (structure errors of any dataflow raise :class:`MappingError`)."""
    programs = [compile_structure(layer, df, maestro_exact=maestro_exact,
                                  ngconv_output_with_c=ngconv_output_with_c) for df in dataflows]
    pset = _program_set(tuple(programs))
    B = len(structure)
    n = cost_jobs() if threads is None else max(1, threads)
    n = n if B >= PARALLEL_MIN else 1
    ints, floats = _run(pset.code, pset.starts, structure, hole_values, hw, _tech_vector(tech),
                         max_regs=pset.max_regs, max_width=pset.width, threads=n)
    return to_cost(layer, ints, floats)


@lru_cache(maxsize=4096)
def _single_set(program) -> ProgramSet:
    return ProgramSet([program])


@lru_cache(maxsize=16)
def _program_set(programs: tuple) -> ProgramSet:
    """The programs of a mixed batch in one array (searchers score the same structures repeatedly;
    joining 500 programs takes about 3 ms, several per cent of their evaluation)."""
    return _single_set(programs[0]) if len(programs) == 1 else ProgramSet(list(programs))


@lru_cache(maxsize=256)
def _hardware_row(acc: Accelerator) -> np.ndarray:
    hw = {f.name: (None if getattr(acc, f.name) is None else np.array([getattr(acc, f.name)]))
          for f in fields(Accelerator) if f.name != "tech"}
    row = hardware_matrix(hw, 1)
    row.setflags(write=False)
    return row


_NO_HOLES = np.zeros((1, 0), dtype=np.int64)
_FIRST = np.zeros(1, dtype=np.int64)


def evaluate_one(layer: Layer, dataflow: Dataflow, acc: Accelerator):
    """One design as a scalar ``LayerCost`` (the lean path of ``cost.evaluate``): raises
    :class:`MappingError` if it cannot be evaluated."""
    from .cost import LayerCost

    program = compile_structure(layer, dataflow, maestro_exact=False, ngconv_output_with_c=False)
    missing_hole(program, ())
    pset = _single_set(program)
    ints, floats = _run(pset.code, pset.starts, _FIRST, _NO_HOLES, _hardware_row(acc),
                         _tech_vector(acc.tech), max_regs=pset.max_regs, max_width=pset.width)
    i, f = ints[0].tolist(), floats[0].tolist()
    if not i[K.I_OK]:
        raise MappingError(dx.message(*i[K.I_ERR_KIND:K.I_ERR_C + 1]), layer=layer.name)
    sizes = layer.tensor_sizes()
    data = {name: i[col] for name, col in _INT_FIELDS.items()}
    data.update({name: f[col] for name, col in _FLOAT_FIELDS.items()})
    data.update({name: sizes[tensor] for name, tensor in _TENSOR_FIELDS.items()})
    viol = i[K.I_VIOLATIONS]
    return LayerCost(layer=layer.name, layer_type=layer.layer_type.value, true_macs=layer.true_macs,
                     fits_l1=not viol & K.VIOLATION_L1, fits_l2=not viol & K.VIOLATION_L2,
                     meets_noc_bw=not viol & K.VIOLATION_NOC, meets_offchip_bw=not viol & K.VIOLATION_OFFCHIP,
                     valid=viol == 0, violations=violation_label(viol), error="",
                     deviations=dx.deviation_label(i[K.I_DEV]), **data)


def missing_hole(program, holes) -> None:
    for name in program.holes:
        if name not in holes:
            raise MappingError(f"no value given for hole ?{name}", directive=program.hole_directives[name])


def to_cost(layer: Layer, ints: np.ndarray, floats: np.ndarray):
    """The kernel's per-design columns as a batch ``LayerCost``."""
    from .cost import LayerCost

    B = len(ints)
    ok = ints[:, K.I_OK] != 0
    all_ok = bool(ok.all())
    sizes = layer.tensor_sizes()
    data: dict[str, object] = {"layer": layer.name, "layer_type": layer.layer_type.value}
    # One transposing copy each, so every figure is a contiguous row (not one copy per figure); a
    # column two figures share is copied for the second, so no two fields are one array.
    int_rows, float_rows = np.ascontiguousarray(ints.T), np.ascontiguousarray(floats.T)
    taken: set[int] = set()
    for name, col in _INT_FIELDS.items():
        data[name] = int_rows[col] if col not in taken else int_rows[col].copy()
        taken.add(col)
    for name, col in _FLOAT_FIELDS.items():
        data[name] = float_rows[col]
    for name, tensor in _TENSOR_FIELDS.items():
        data[name] = np.where(ok, sizes[tensor], 0) if not all_ok else np.full(B, sizes[tensor], np.int64)
    data["true_macs"] = np.full(B, layer.true_macs, dtype=np.int64)
    viol = ints[:, K.I_VIOLATIONS]
    data["fits_l1"] = (viol & K.VIOLATION_L1) == 0
    data["fits_l2"] = (viol & K.VIOLATION_L2) == 0
    data["meets_noc_bw"] = (viol & K.VIOLATION_NOC) == 0
    data["meets_offchip_bw"] = (viol & K.VIOLATION_OFFCHIP) == 0
    data["valid"] = ok & (viol == 0)
    data["violations"] = _labels(viol, violation_label)
    data["deviations"] = _labels(ints[:, K.I_DEV], dx.deviation_label)
    if all_ok:
        data["error"] = np.full(B, "", dtype=object)
    else:
        records, inverse = np.unique(ints[:, K.I_ERR_KIND:K.I_ERR_C + 1], axis=0, return_inverse=True)
        messages = np.array([dx.message(*map(int, r)) for r in records], dtype=object)
        data["error"] = messages[inverse.ravel()]
    return LayerCost(**data)


def _labels(bits: np.ndarray, label) -> np.ndarray:
    if len(bits) == 1:
        return np.array([label(int(bits[0]))], dtype=object)
    uniq, inverse = np.unique(bits, return_inverse=True)
    return np.array([label(int(u)) for u in uniq], dtype=object)[inverse.ravel()]
