"""Public evaluation API: :func:`evaluate` for one design, :func:`evaluate_batch` for many.

Both run the same engine: the dataflow's structure is analysed once and every size (tile sizes given
as holes, PE counts, bandwidths) is a numpy array over the batch. A single evaluation is a batch of one.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from . import diagnostics as dx
from .accelerator import UNLIMITED, Accelerator
from .dataflow import Dataflow
from .deviations import strided_window_rewritten
from .engine import ErrorLog, Hardware, analyze
from .errors import MappingError, SpecError
from .layer import Layer
from .levels import build_levels
from .program import compile_structure
from .tech import Tech

# Figures reported per evaluation, in the order of ``dse eval``'s CSV/JSON columns.
FIGURES = (
    "runtime_cycles", "num_macs", "true_macs", "throughput_macs_per_cycle", "energy_mac_units",
    "energy_nj", "l1_size_req", "l2_size_req",
    "input_l2_reads", "input_l2_writes", "weight_l2_reads", "weight_l2_writes",
    "output_l2_reads", "output_l2_writes", "input_l1_reads", "input_l1_writes",
    "weight_l1_reads", "weight_l1_writes", "output_l1_reads", "output_l1_writes",
    "peak_noc_bw_req", "avg_noc_bw_req", "offchip_bw_req", "avg_utilized_pes", "area_um2", "power_mw",
)
EXTRA_FIGURES = (
    "used_pes", "pe_peak_cycles", "utilization", "arithmetic_intensity",
    "ingress_delay_min", "ingress_delay_max", "ingress_delay_avg",
    "egress_delay_min", "egress_delay_max", "egress_delay_avg",
    "compute_delay_min", "compute_delay_max", "compute_delay_avg",
)

# Deviation rules (docs/maestro-deviations.md): which figures of an evaluation differ from MAESTRO's.
# The engine adds "subtile-edges" (Q11), "oversized-map-edge" and "init-case-empty".
DEV_STRIDE_OUTPUT = "stride-output-reads"   # Q6: output L2 reads use the strided output size
DEV_NGCONV_READS = "ngconv-output-reads"    # Q7: NGCONV output L2 reads without C
DEV_NGCONV = "ngconv-output"                # Q7: NGCONV analysed with its true output (option)
DEV_PEAK = "pe-peak-bound"                  # runtime raised to the PE-peak bound


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerCost:
    """Every figure of one evaluation (scalars) or of a batch (numpy arrays of equal length).

    Counts are elements; runtimes and delays cycles; energies in units of one MAC's energy
    (``energy_mac_units``, MAESTRO's per-access weights) and nJ; area um^2; power mW. ``valid`` is
    false when a capacity or bandwidth of the accelerator is exceeded or the mapping executes fewer
    MACs than the layer has, leaving part of it uncomputed (``violations`` says which);
    ``error`` is non-empty when the design cannot be evaluated at all (its figures are then 0).
    """

    layer: str
    layer_type: str
    runtime_cycles: object
    num_macs: object
    true_macs: object
    throughput_macs_per_cycle: object
    energy_mac_units: object
    energy_nj: object
    l1_size_req: object
    l2_size_req: object
    input_l2_reads: object
    input_l2_writes: object
    weight_l2_reads: object
    weight_l2_writes: object
    output_l2_reads: object
    output_l2_writes: object
    input_l1_reads: object
    input_l1_writes: object
    weight_l1_reads: object
    weight_l1_writes: object
    output_l1_reads: object
    output_l1_writes: object
    peak_noc_bw_req: object
    avg_noc_bw_req: object
    offchip_bw_req: object
    avg_utilized_pes: object
    area_um2: object
    power_mw: object
    used_pes: object
    pe_peak_cycles: object
    utilization: object
    arithmetic_intensity: object
    ingress_delay_min: object
    ingress_delay_max: object
    ingress_delay_avg: object
    egress_delay_min: object
    egress_delay_max: object
    egress_delay_avg: object
    compute_delay_min: object
    compute_delay_max: object
    compute_delay_avg: object
    fits_l1: object
    fits_l2: object
    meets_noc_bw: object
    meets_offchip_bw: object
    valid: object
    violations: object
    error: object
    deviations: object

    @property
    def is_batch(self) -> bool:
        return isinstance(self.runtime_cycles, np.ndarray)

    def __len__(self) -> int:
        return len(self.runtime_cycles) if self.is_batch else 1

    def to_frame(self):
        """One row per design, one column per field (a pandas DataFrame)."""
        import pandas as pd  # only tables need pandas (it costs 0.3 s to import)

        data = {}
        for f in fields(self):
            v = getattr(self, f.name)
            data[f.name] = v if isinstance(v, np.ndarray) else [v] * len(self)
        return pd.DataFrame(data)

    def row(self, i: int) -> LayerCost:
        """The ``i``-th design of a batch as a scalar ``LayerCost``."""
        values = {}
        for f in fields(self):
            v = getattr(self, f.name)
            values[f.name] = v.item(i) if isinstance(v, np.ndarray) else v
        return LayerCost(**values)

    def figures(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in FIGURES + EXTRA_FIGURES}


def evaluate(layer: Layer, dataflow: Dataflow, accelerator: Accelerator, *,
             engine: str | None = None) -> LayerCost:
    """Evaluate one design; raises :class:`MappingError` if the dataflow cannot run on the layer."""
    if _engine(engine) == "compiled":
        from . import compiled

        return compiled.evaluate_one(layer, dataflow, accelerator)
    cost = evaluate_batch(layer, dataflow, accelerator=accelerator, engine=engine)
    if cost.error[0]:
        raise MappingError(str(cost.error[0]), layer=layer.name)
    return cost.row(0)


# The reference engine evaluates designs in chunks: large enough to amortise the per-chunk Python
# work, small enough that its (classes x chunk) temporaries stay in cache (2048 beat 1024, 4096 and
# 8192 by 10-25 % in `python -m benchmarks.costmodel`).
CHUNK = 2048
_HW_FIELDS = tuple(f.name for f in fields(Accelerator) if f.name != "tech")
ENGINES = ("compiled", "reference")
_jobs: int | None = None


def set_jobs(n: int | None) -> int:
    """Worker threads the compiled engine may use for a large batch (None = every core this process
    may run on); returns the number. Results never depend on it."""
    global _jobs
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise SpecError(f"must be a positive integer, got {n!r}", key="jobs")
    _jobs = n
    return jobs()


def jobs() -> int:
    if _jobs is not None:
        return _jobs
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_engine() -> str:
    """``compiled`` (the Numba kernel) unless ``DSE_ENGINE=reference`` is set or Numba is missing."""
    wanted = os.environ.get("DSE_ENGINE", "compiled")
    if wanted not in ENGINES:
        raise SpecError(f"must be one of {', '.join(ENGINES)}, got {wanted!r}", key="DSE_ENGINE")
    if wanted == "compiled" and importlib.util.find_spec("numba") is None:
        return "reference"
    return wanted


def _engine(engine: str | None) -> str:
    if engine is None:
        return default_engine()
    if engine not in ENGINES:
        raise SpecError(f"must be one of {', '.join(ENGINES)}, got {engine!r}", key="engine")
    return engine


def evaluate_batch(layer: Layer, dataflow: Dataflow, *, accelerator: Accelerator | None = None,
                   holes: Mapping[str, object] | None = None, tech: Tech | None = None,
                   maestro_exact: bool = False, ngconv_output_with_c: bool | None = None,
                   engine: str | None = None, jobs: int | None = None, **hardware: object) -> LayerCost:
    """Evaluate a batch of designs sharing one dataflow structure.

    ``holes`` maps hole names of the dataflow (``?name``) to integers or arrays; ``hardware`` overrides
    any :class:`Accelerator` field with an integer or an array (``None`` = unlimited). All arrays
    broadcast to one batch length. ``maestro_exact=True`` reproduces MAESTRO's analysis of edge tiles
    (semantics doc Q11) and does not raise runtimes to the PE-peak bound: for validation only, it can
    report impossible runtimes.
    NGCONV layers are analysed with their true output tensor (G, K, Y, X) unless
    ``ngconv_output_with_c`` is True, or it is None (the default) and ``maestro_exact`` is: MAESTRO
    also couples the output to C (deviation ngconv-output, docs/maestro-deviations.md).
    ``engine``: ``"compiled"`` (the default, see :func:`default_engine`) or ``"reference"`` (the numpy
    engine the kernel is tested against); both give the same figures. ``jobs``: worker threads for a
    large batch (default :func:`jobs`); the figures never depend on it.
    """
    acc = accelerator or Accelerator()
    tech = tech or acc.tech
    ngconv_output_with_c = _ngconv_with_c(ngconv_output_with_c, maestro_exact)
    hw, holes, batch = _normalise(acc, hardware, holes)
    if _engine(engine) == "compiled":
        from . import compiled

        program = compile_structure(layer, dataflow, maestro_exact=maestro_exact,
                                    ngconv_output_with_c=ngconv_output_with_c)
        compiled.missing_hole(program, holes)
        values = np.empty((batch, len(program.holes)), dtype=np.int64)
        for i, name in enumerate(program.holes):
            values[:, i] = holes[name]
        return compiled.evaluate(layer, [dataflow], np.zeros(batch, dtype=np.int64), values,
                                 compiled.hardware_matrix(hw, batch), tech, maestro_exact=maestro_exact,
                                 ngconv_output_with_c=ngconv_output_with_c, threads=jobs)
    tensors = layer.tensor_dims(ngconv_output_with_c=ngconv_output_with_c)
    if batch <= CHUNK:
        return _evaluate_chunk(layer, dataflow, holes, hw, tech, tensors, maestro_exact)
    parts = []
    for start in range(0, batch, CHUNK):
        sl = slice(start, start + CHUNK)
        parts.append(_evaluate_chunk(layer, dataflow, {k: v[sl] for k, v in holes.items()},
                                     {k: (None if v is None else v[sl]) for k, v in hw.items()},
                                     tech, tensors, maestro_exact))
    return concat_costs(parts)


def evaluate_mixed(layer: Layer, dataflows: Sequence[Dataflow], structure, hole_values, *,
                   accelerator: Accelerator | None = None, tech: Tech | None = None,
                   maestro_exact: bool = False, ngconv_output_with_c: bool | None = None,
                   engine: str | None = None, jobs: int | None = None, **hardware: object) -> LayerCost:
    """Evaluate designs of many structures of one layer in one call (the searchers' pattern).

    Design ``d`` is ``dataflows[structure[d]]`` with its holes filled from row ``d`` of the integer
    matrix ``hole_values``, in the order of that dataflow's ``holes`` (extra columns are ignored).
    Hardware as in :func:`evaluate_batch`. Rows come back in design order.
    """
    acc = accelerator or Accelerator()
    tech = tech or acc.tech
    ngconv_output_with_c = _ngconv_with_c(ngconv_output_with_c, maestro_exact)
    structure = np.asarray(structure, dtype=np.int64)
    values = np.ascontiguousarray(np.asarray(hole_values, dtype=np.int64).reshape(len(structure), -1))
    hw, _, batch = _normalise(acc, hardware, {"": structure})
    # Only the structures the batch uses (a space may hold thousands), renumbered 0..n-1.
    used, local = np.unique(structure, return_inverse=True)
    flows = [dataflows[int(s)] for s in used]
    local = np.ascontiguousarray(local.ravel(), dtype=np.int64)
    if _engine(engine) == "compiled":
        from . import compiled

        for df in flows:
            width = len(df.holes)
            if width > values.shape[1]:
                raise MappingError(f"{width} hole values needed, {values.shape[1]} given",
                                   directive=str(df))
        return compiled.evaluate(layer, flows, local, values, compiled.hardware_matrix(hw, batch), tech,
                                 maestro_exact=maestro_exact, ngconv_output_with_c=ngconv_output_with_c,
                                 threads=jobs)
    parts, order = [], []
    for s, df in enumerate(flows):
        idx = np.nonzero(local == s)[0]
        holes = {h: values[idx, i] for i, h in enumerate(df.holes)}
        parts.append(evaluate_batch(layer, df, accelerator=acc, holes=holes, tech=tech,
                                    maestro_exact=maestro_exact, ngconv_output_with_c=ngconv_output_with_c,
                                    engine="reference",
                                    **{k: (None if v is None else v[idx]) for k, v in hw.items()}))
        order.append(idx)
    inverse = np.empty(batch, dtype=np.int64)
    inverse[np.concatenate(order)] = np.arange(batch)
    return concat_costs(parts, inverse)


def concat_costs(costs: Sequence[LayerCost], index: np.ndarray | None = None) -> LayerCost:
    """Batches of one layer joined (rows in ``index`` order if given)."""
    if len(costs) == 1 and index is None:
        return costs[0]
    data = {}
    for f in fields(LayerCost):
        first = getattr(costs[0], f.name)
        if isinstance(first, np.ndarray):
            joined = np.concatenate([getattr(c, f.name) for c in costs])
            data[f.name] = joined if index is None else joined[index]
        else:
            data[f.name] = first
    return LayerCost(**data)


def _ngconv_with_c(option: bool | None, maestro_exact: bool) -> bool:
    """Whether NGCONV outputs are coupled to C, as MAESTRO couples them: by default only under
    ``maestro_exact`` (deviation ngconv-output)."""
    return maestro_exact if option is None else bool(option)


def _normalise(acc: Accelerator, hardware: dict, holes: Mapping[str, object] | None):
    """Hardware fields and holes as arrays of one batch length (None = unlimited)."""
    unknown = set(hardware) - set(_HW_FIELDS)
    if unknown:
        raise TypeError(f"unknown hardware parameter(s): {', '.join(sorted(unknown))}")
    hw = {name: hardware.get(name, getattr(acc, name)) for name in _HW_FIELDS}
    holes = dict(holes or {})
    shapes = [np.shape(v) for v in (*holes.values(), *hw.values()) if v is not None]
    batch = int(np.broadcast_shapes(*shapes, (1,))[0])
    holes = {k: _as_array(v, batch) for k, v in holes.items()}
    hw = {k: (None if v is None else _as_array(v, batch)) for k, v in hw.items()}
    return hw, holes, batch


def _as_array(v, batch: int) -> np.ndarray:
    if type(v) is int:                 # the common case, without numpy's broadcasting machinery
        return np.full(batch, v, dtype=np.int64)
    return np.broadcast_to(np.asarray(v, dtype=np.int64), (batch,))


def _evaluate_chunk(layer, dataflow, holes, hw, tech, tensors, maestro_exact) -> LayerCost:
    batch = len(next(v for v in (*holes.values(), *hw.values()) if v is not None)) \
        if any(v is not None for v in (*holes.values(), *hw.values())) else 1

    def arr(name):
        v = hw[name]
        return np.full(batch, UNLIMITED, dtype=np.int64) if v is None else np.ascontiguousarray(v)

    lanes = arr("simd_lanes")
    noc_bw = arr("noc_bw")
    offchip = arr("offchip_bw")
    latency = arr("noc_hop_latency") * arr("noc_hops")
    stack = build_levels(layer, dataflow, arr("num_pes"), holes, batch, maestro_exact=maestro_exact)
    log = ErrorLog()
    result = analyze(layer, stack, Hardware(lanes, noc_bw, latency, offchip, offchip < UNLIMITED), log,
                     tensors=tensors, maestro_exact=maestro_exact)
    return _assemble(layer, stack, result, log, batch, tech, hw, lanes, noc_bw, tensors, maestro_exact)


def _labels(masks: list[tuple[str, np.ndarray]], batch: int, sep: str) -> np.ndarray:
    """Per design, the names of the masks that are set, joined by ``sep`` (one string per design)."""
    masks = [(n, m) for n, m in masks if (m.any() if isinstance(m, np.ndarray) else m)]
    if not masks:
        return np.full(batch, "", dtype=object)
    if batch == 1:
        return np.array([sep.join(n for n, m in masks if np.ravel(m)[0])], dtype=object)
    code = np.zeros(batch, dtype=np.int64)
    for bit, (_, m) in enumerate(masks):
        code |= np.broadcast_to(m, (batch,)).astype(np.int64) << bit
    uniq, inverse = np.unique(code, return_inverse=True)
    names = [sep.join(n for bit, (n, _) in enumerate(masks) if (u >> bit) & 1) for u in uniq]
    return np.array(names, dtype=object)[inverse]


def _assemble(layer, stack, res, log, batch, tech, hw, lanes, noc_bw, t, maestro_exact) -> LayerCost:
    sizes = layer.tensor_sizes()
    macs = res.num_macs
    in_l2r, w_l2r = res.counts["input_l2_read"], res.counts["weight_l2_read"]
    out_l2w, out_l1 = res.counts["output_l2_write"], res.counts["output_l1_write"]
    full = np.ones(batch, dtype=np.int64)
    counts = {
        "input_l2_reads": in_l2r, "input_l2_writes": full * sizes["input"],
        "weight_l2_reads": w_l2r, "weight_l2_writes": full * sizes["weight"],
        # The output tensor is read once: MAESTRO counts it without stride (Q6) and, for NGCONV,
        # with C (Q7); we count the true output.
        "output_l2_reads": full * sizes["output"], "output_l2_writes": out_l2w,
        "input_l1_reads": macs, "input_l1_writes": in_l2r,
        "weight_l1_reads": macs, "weight_l1_writes": w_l2r,
        "output_l1_reads": out_l1, "output_l1_writes": out_l1,
    }
    l2_total = sum(v for k, v in counts.items() if "_l2_" in k)
    l1_total = sum(v for k, v in counts.items() if "_l1_" in k)
    energy = tech.l2_energy_mac * l2_total + tech.l1_energy_mac * l1_total + macs
    # L1 requirement: double-buffered tiles of the innermost level (input window for the output, Q6).
    # A map larger than its dimension there holds the dimension (deviation l1-held-tile; MAESTRO
    # counts the map's size).
    inner = stack.levels[-1]
    sizes_inner = {e.var: e.size for e in inner.entries}
    l1_req, l1_maestro = full * 0, full * 0
    for dims in (t.input, t.weight, t.output):
        vol, vol_maestro = full, full
        for v in dims:
            if v in sizes_inner:
                size = sizes_inner[v]
                vol_maestro = vol_maestro * size
                vol = vol * (np.minimum(size, inner.dims[v]) if v in inner.dims else size)
        l1_req, l1_maestro = l1_req + 2 * vol, l1_maestro + 2 * vol_maestro
    if maestro_exact:
        l1_req = l1_maestro
    l2_req = res.l2_req["input"] + res.l2_req["weight"] + res.l2_req["output"]

    runtime = res.runtime
    used = stack.used_pes
    true_macs = layer.true_macs
    peak = -(-true_macs // (used * lanes))

    err = res.err

    def flag(mask, kind):
        nonlocal err
        if np.any(mask & (err == 0)):
            err = np.where(mask & (err == 0), log.code(kind), err)

    flag(stack.bad_size, dx.BAD_SIZE)
    flag(stack.bad_rs, dx.BAD_RS)
    if np.any(stack.bad_cluster):
        codes = log.codes(stack.bad_cluster & (err == 0), dx.CLUSTER_TOO_BIG, stack.cluster_product,
                          np.asarray(hw["num_pes"]))
        err = np.where(codes > 0, codes, err)
    flag(runtime < 1, dx.RUNTIME_ZERO)
    flag(macs < 1, dx.MACS_ZERO)
    ok = err == 0

    below_peak = ok & (runtime < peak)
    flags = dict(res.flags)
    if strided_window_rewritten(layer, maestro_exact):      # every strided window of the layer
        flags["strided-output-rows"] = True
    deviations = list(flags.items())
    if not maestro_exact:
        deviations.append(("l1-held-tile", l1_req != l1_maestro))
    if layer.layer_type.is_conv_family and any(layer.stride(d) != 1 for d in ("Y", "X", "Y'", "X'")):
        deviations.append((DEV_STRIDE_OUTPUT, True))
    if stack.skipped_inheritance:
        deviations.append(("uncoupled-dim-inherited", True))
    if stack.within_share:
        deviations.append(("map-within-share", True))
    deviations.append(("strided-tail-held", stack.tail_held))
    if layer.layer_type.value == "NGCONV":
        deviations.append((DEV_NGCONV_READS if "C" in t.output else DEV_NGCONV, True))
    if not maestro_exact:
        deviations.append((DEV_PEAK, below_peak))
        runtime = np.maximum(runtime, np.where(ok, peak, 0))
    # In the order of diagnostics.DEVIATIONS (the compiled engine reports bits in that order).
    deviations.sort(key=lambda item: dx.DEVIATIONS.index(item[0]))

    def within(req, cap):
        return np.ones(batch, bool) if cap is None else req <= cap

    fits_l1, fits_l2 = within(l1_req, hw["l1_size"]), within(l2_req, hw["l2_size"])
    meets_noc, meets_off = within(res.peak_bw, hw["noc_bw"]), within(res.offchip_bw, hw["offchip_bw"])
    # Tiles that leave part of the layer uncomputed (windows that skip output rows, say): the figures
    # are the mapping's, not the layer's, so no search may take it for a design of the layer.
    # MAESTRO reports such mappings as any other (kept under maestro_exact).
    whole_layer = np.ones(batch, bool) if maestro_exact else ~(ok & (macs < true_macs))
    # Two SpatialMaps in lockstep on independent dimensions skip window pairs (lockstep-skips).
    paired = np.asarray(res.flags.get("lockstep-skips", False))
    lockstep = np.zeros(batch, bool) if maestro_exact else ok & paired
    violations = _labels([("l1_size_req > l1_size", ~fits_l1), ("l2_size_req > l2_size", ~fits_l2),
                          ("peak_noc_bw_req > noc_bw", ~meets_noc),
                          ("offchip_bw_req > offchip_bw", ~meets_off),
                          (dx.PART_OF_LAYER, ~whole_layer), (dx.LOCKSTEP_SKIPS, lockstep)], batch, "; ")
    valid = ok & fits_l1 & fits_l2 & meets_noc & meets_off & whole_layer & ~lockstep

    # Area and power as MAESTRO reports them: buffers sized to this layer's requirement; the NoC at
    # the given bandwidth, or at the required peak bandwidth when unlimited.
    noc_for_area = np.where(noc_bw >= UNLIMITED, np.maximum(res.peak_bw, 1), noc_bw)
    pes = np.asarray(hw["num_pes"])
    area = tech.area_um2(pes, lanes, noc_for_area, l1_req, l2_req)
    power = tech.power_mw(pes, lanes, noc_for_area, l1_req, l2_req)

    all_ok = bool(ok.all())

    def z(x, dtype=np.int64):
        if all_ok and isinstance(x, np.ndarray) and x.shape == (batch,) and x.dtype == dtype:
            return x.copy()
        out = np.empty(batch, dtype=dtype)
        out[:] = x
        if not all_ok:
            out[~ok] = 0
        return out

    safe_rt = np.maximum(runtime, 1)
    return LayerCost(
        layer=layer.name, layer_type=layer.layer_type.value,
        runtime_cycles=z(runtime), num_macs=z(macs), true_macs=full * true_macs,
        throughput_macs_per_cycle=z(macs / safe_rt, float),
        energy_mac_units=z(energy, float), energy_nj=z(energy * tech.mac_energy_nj, float),
        l1_size_req=z(l1_req), l2_size_req=z(l2_req),
        **{k: z(v) for k, v in counts.items()},
        peak_noc_bw_req=z(res.peak_bw), avg_noc_bw_req=z(res.avg_bw, float),
        offchip_bw_req=z(res.offchip_bw), avg_utilized_pes=z(res.avg_active, float),
        area_um2=z(area, float), power_mw=z(power, float),
        used_pes=z(used), pe_peak_cycles=z(peak),
        utilization=z(true_macs / (safe_rt * used * lanes), float),
        arithmetic_intensity=z(macs / np.maximum(in_l2r + w_l2r, 1), float),
        **{f"{k.split('_')[0]}_delay_{k.split('_')[1]}": z(v) for k, v in res.delays.items()},
        fits_l1=fits_l1, fits_l2=fits_l2, meets_noc_bw=meets_noc, meets_offchip_bw=meets_off,
        valid=valid, violations=violations,
        error=np.array(log.messages, dtype=object)[err],
        deviations=_labels(deviations, batch, ","),
    )
