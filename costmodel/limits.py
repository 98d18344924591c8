"""Input limits: the largest sizes and counts dataflow-dse accepts, in one place.

Every size a user can give (a layer dimension in a ``.m`` file or an ONNX model, a directive size, a
hardware flag or hardware-space value, a count on the command line) is checked against these limits
where it is read, before anything is enumerated or evaluated, and a value beyond one is an error that
names the file and line, the layer, the flag or the key. The README's "Limits" section lists them.

Why these values. The cost model computes in int64 (at most 2^63 - 1). Per layer it forms

* the MAC count and the tensor sizes: products of the dimensions, at most the layer's *work* (the
  product of its dimensions as given, input rows and columns included), <= :data:`MAX_LAYER_WORK`;
* per cluster level, tile volumes: products of directive sizes (a map may be larger than its
  dimension, as ``TemporalMap(64,64) C`` on a 3-channel layer, and MAESTRO then counts the map's size);
* counts x volumes and counts x delays summed over iteration cases, where a delay is at most the NoC
  head latency plus a volume.

:func:`mapping_bound` bounds the iteration cases of a concrete dataflow (level by level, each map's
steps over its extent at that level) and its largest tile volume; with iterations <= 2^48, iterations
x largest tile <= 2^56 and the head latency <= 2^10 cycles, every such sum stays below 2^60. Network
totals multiply a layer's figures by its repeat count and add layers: the network's work (repeats
counted) is at most 2^50, so a network runtime stays below 2^61. Hardware capacities and bandwidths
stay below the engine's "unlimited" (:data:`costmodel.accelerator.UNLIMITED`, 2^40), so a finite value
never reads as unlimited.

The limits are far above real workloads: a GPT-3 feed-forward layer over 2,048 tokens is 2^40 MACs,
the largest accelerators have about 2^20 PEs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from .dataflow import Dataflow, DimSize, Hole
from .errors import MappingError, SpecError

MAX_DIM = 1 << 24                 # a layer dimension, a stride, a directive size or offset
MAX_LAYER_WORK = 1 << 44          # product of a layer's dimensions (~1.8e13)
MAX_REPEAT = 1 << 20              # repeat count of one layer
MAX_NETWORK_WORK = 1 << 50        # sum over a network's layers of repeat count x work
MAX_ITERATIONS = 1 << 48          # iteration cases of a dataflow on a layer (mapping_bound)
MAX_ITERATION_VOLUME = 1 << 56    # iterations x the largest tile volume of any level
MAX_PES = 1 << 20                 # PEs; also the product of a dataflow's cluster sizes
MAX_SIMD_LANES = 1 << 10          # ALUs per PE
MAX_CAPACITY = 1 << 36            # L1 per PE and L2, elements
MAX_BANDWIDTH = 1 << 32           # NoC and off-chip bandwidth, elements/cycle
MAX_NOC_LATENCY = 1 << 10         # NoC head latency: hops x hop latency, cycles
MAX_FILE_BYTES = 64 << 20         # a .m network, dataflow, hardware or tech file
MAX_ONNX_BYTES = 2 << 30          # an ONNX model (protobuf's own limit)
MAX_NUMBER_DIGITS = 30            # digits of an integer literal (Python refuses > 4,300)

# Enumerations: refused before they start rather than left to exhaust memory or never end.
MAX_TILE_CHAINS = 1_000_000       # per dimension of a free mapping space (--tiles any on a big layer)
MAX_UNTIMED_POINTS = 10**8        # exhaustive mapping search without a time limit (~10 min at 150k/s)
MAX_SWEEP_DESIGNS = 10**11        # designs of one dse sweep grid (5-20 min at the README's sweep rates)
MAX_HW_VALUES = 1_000_000         # values of one hardware-space parameter

# Command-line counts.
MAX_TRIALS = 1_000_000            # trials of a study or of an Optuna search
MAX_WORKERS = 256                 # local worker processes
MAX_SEED = (1 << 32) - 1          # numpy's and Optuna's seeds are 32-bit
MAX_SECONDS = 366 * 24 * 3600     # any time limit, timeout or heartbeat (a year)
MAX_LEVELS = 3                    # cluster levels of a free mapping space

# Accelerator fields: (smallest, largest) value.
ACCELERATOR_LIMITS = {
    "num_pes": (1, MAX_PES),
    "simd_lanes": (1, MAX_SIMD_LANES),
    "l1_size": (1, MAX_CAPACITY),
    "l2_size": (1, MAX_CAPACITY),
    "noc_bw": (1, MAX_BANDWIDTH),
    "offchip_bw": (1, MAX_BANDWIDTH),
    "noc_hop_latency": (0, MAX_NOC_LATENCY),
    "noc_hops": (1, MAX_NOC_LATENCY),
}


def check_int(value, *, key: str, low: int = 1, high: int, unit: str = "") -> int:
    """``value`` as an int within [low, high], else :class:`SpecError` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"must be an integer, got {value!r}", key=key)
    if value < low:
        what = {0: "non-negative", 1: "positive"}.get(low, f"at least {low:,}")
        raise SpecError(f"must be {what}, got {value:,}", key=key)
    if value > high:
        raise SpecError(f"{value:,} is above the limit of {high:,}{unit} (see the README's Limits)",
                        key=key)
    return value


def accelerator_field(name: str, value) -> int:
    """An accelerator field within its limits (:data:`ACCELERATOR_LIMITS`)."""
    low, high = ACCELERATOR_LIMITS[name]
    return check_int(value, key=name, low=low, high=high)


def check_noc_latency(hops: int, hop_latency: int, *, key: str = "noc_hop_latency") -> None:
    if hops * hop_latency > MAX_NOC_LATENCY:
        raise SpecError(f"NoC head latency {hops:,} hop(s) x {hop_latency:,} cycles is above the limit "
                        f"of {MAX_NOC_LATENCY:,} cycles", key=key)


def layer_problem(dims: Mapping[str, int], strides: Mapping[str, int], count: int) -> str | None:
    """Why a layer's sizes are out of bounds (``None`` if they are within them)."""
    for name, v in (*dims.items(), *((f"stride {n}", s) for n, s in strides.items())):
        if v > MAX_DIM:
            return f"{'dimension ' if not name.startswith('stride') else ''}{name} = {v:,} is above the " \
                   f"limit of {MAX_DIM:,}"
    if count > MAX_REPEAT:
        return f"repeat count {count:,} is above the limit of {MAX_REPEAT:,}"
    work = 1
    for v in dims.values():
        work *= v
    if work > MAX_LAYER_WORK:
        return f"the product of the dimensions, {work:,}, is above the limit of {MAX_LAYER_WORK:,}"
    if work * count > MAX_NETWORK_WORK:
        return (f"the product of the dimensions times the repeat count, {work * count:,}, is above the "
                f"limit of {MAX_NETWORK_WORK:,}")
    return None


def network_problem(works: list[tuple[int, int]]) -> str | None:
    """Why a network is too large: ``works`` holds (work, repeat count) per layer."""
    total = sum(w * c for w, c in works)
    if total > MAX_NETWORK_WORK:
        return (f"the network's work (product of each layer's dimensions, repeats counted) is {total:,}, "
                f"above the limit of {MAX_NETWORK_WORK:,}")
    return None


def mapping_bound(dims: Mapping[str, int], dataflow: Dataflow) -> tuple[int, int] | None:
    """(iteration cases, largest tile volume) bounds of a dataflow on a layer with ``dims`` (its full
    dimension table, :meth:`Layer.full_dims`); ``None`` if a size is a hole or names a dimension the
    layer lacks (the evaluation reports those).

    Per level, a map of size m and offset f over an extent E takes at most ceil((E - m) / f) + 1 steps
    (spatial folding only lowers that); the level below sees each dimension as min(m, E); the product
    of the level's map sizes bounds its tile volumes.
    """
    extent = dict(dims)
    iterations, largest = 1, 1
    for level in dataflow.levels:
        tile, first = 1, {}
        for d in level:
            m, f = _resolve(d.size, dims), _resolve(d.offset, dims)
            if m is None or f is None or d.dim not in extent or m < 1 or f < 1:
                return None
            e = extent[d.dim]
            iterations *= -(-(e - m) // f) + 1 if e > m else 1
            tile *= m
            first.setdefault(d.dim, m)
        largest = max(largest, tile)
        below = {v: min(first.get(v, e), e) for v, e in extent.items()}
        # Output rows/columns and input rows/columns narrow together (size + filter - 1).
        for plain, primed, filt in (("Y", "Y'", "R"), ("X", "X'", "S")):
            r = dims.get(filt, 1)
            if primed in first and plain in below:
                below[plain] = min(below[plain], first[primed] + r - 1)
            if plain in first and primed in below:
                below[primed] = min(below[primed], max(first[plain] - r + 1, 1))
        extent = below
    return iterations, largest


def mapping_problem(dims: Mapping[str, int], dataflow: Dataflow) -> str | None:
    """Why a concrete dataflow is too large for the cost model on a layer (``None`` if it is not)."""
    for c in dataflow.clusters:
        if isinstance(c.size, int) and c.size > MAX_PES:
            return f"cluster size {c.size:,} is above the limit of {MAX_PES:,} PEs"
    bound = mapping_bound(dims, dataflow)
    if bound is None:
        return None
    iterations, largest = bound
    if iterations > MAX_ITERATIONS:
        return (f"the dataflow iterates up to {iterations:,} times on this layer, above the limit of "
                f"{MAX_ITERATIONS:,} (overlapping maps?)")
    if iterations * largest > MAX_ITERATION_VOLUME:
        return (f"the dataflow's iterations ({iterations:,}) times its largest tile ({largest:,} elements) "
                f"exceed the limit of {MAX_ITERATION_VOLUME:,} (a map much larger than its dimension?)")
    return None


def check_mapping(layer, dataflow: Dataflow) -> None:
    """Raise :class:`MappingError` (naming the layer) if a dataflow is beyond the limits on a layer."""
    problem = mapping_problem(layer.full_dims(), dataflow)
    if problem:
        raise MappingError(problem, layer=layer.name)


def read_limited(path: str | Path, error: Callable[[str], Exception], *, limit: int = MAX_FILE_BYTES,
                 text: bool = True) -> str | bytes:
    """A file's contents, at most ``limit`` bytes; ``error(reason)`` builds the exception for a file
    that cannot be read, is a directory or a device (``/dev/zero`` would never end), is too large, or
    (``text``) holds binary data."""
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
        if stat.S_ISDIR(mode):
            raise error("is a directory, not a file")
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            raise error("is a device, not a file")
        with open(p, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"larger than the limit of {limit >> 20:,} MiB")
    if not text:
        return data
    if b"\0" in data:
        raise error("not a text file (binary data)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not a text file (not UTF-8 at byte {exc.start})") from None


def _resolve(size, dims: Mapping[str, int]) -> int | None:
    if isinstance(size, Hole) or size is None:
        return None
    if isinstance(size, DimSize):
        return dims.get(size.dim)
    return size


__all__ = [
    "ACCELERATOR_LIMITS", "MAX_BANDWIDTH", "MAX_CAPACITY", "MAX_DIM", "MAX_FILE_BYTES", "MAX_HW_VALUES",
    "MAX_ITERATIONS", "MAX_ITERATION_VOLUME", "MAX_LAYER_WORK", "MAX_LEVELS", "MAX_NETWORK_WORK",
    "MAX_NOC_LATENCY", "MAX_NUMBER_DIGITS", "MAX_ONNX_BYTES", "MAX_PES", "MAX_REPEAT", "MAX_SECONDS",
    "MAX_SEED", "MAX_SIMD_LANES", "MAX_SWEEP_DESIGNS", "MAX_TILE_CHAINS", "MAX_TRIALS",
    "MAX_UNTIMED_POINTS", "MAX_WORKERS", "accelerator_field", "check_int", "check_mapping",
    "check_noc_latency", "layer_problem", "mapping_bound", "mapping_problem", "network_problem",
    "read_limited",
]
