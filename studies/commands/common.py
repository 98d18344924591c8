"""Arguments and helpers shared by several subcommands (hardware flags, output files)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from costmodel import (
    Accelerator,
    Dataflow,
    Layer,
    LayerType,
    MappedLayer,
    SpecError,
    Tech,
    limits,
    read_dataflow,
    read_hw,
    read_network,
)
from costmodel.accelerator import MAESTRO_DEFAULT_NUM_PES
from costmodel.mfile import NetworkFile
from costmodel.networks import bundled_dataflow
from costmodel.workloads import load_network

# (flag, Accelerator field, help)
HARDWARE_FLAGS = (
    ("--num-pes", "num_pes", f"number of PEs (MAESTRO's default: {MAESTRO_DEFAULT_NUM_PES})"),
    ("--simd-lanes", "simd_lanes", "ALUs per PE (default 1)"),
    ("--l1-size", "l1_size", "L1 capacity per PE, elements (default: unlimited)"),
    ("--l2-size", "l2_size", "L2 capacity, elements (default: unlimited)"),
    ("--noc-bw", "noc_bw", "NoC bandwidth, elements/cycle, every cluster level (default: unlimited)"),
    ("--noc-hop-latency", "noc_hop_latency", "cycles per NoC hop (default 0)"),
    ("--noc-hops", "noc_hops", "average NoC hops (default 1)"),
    ("--offchip-bw", "offchip_bw", "off-chip (DRAM-L2) bandwidth, elements/cycle (default: unlimited)"),
)


class UsageError(Exception):
    """A bad command-line value: printed as one line, exit code 2."""


def add_hardware_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hardware (MAESTRO's meanings; unset capacities and bandwidths "
                                      "mean unlimited)")
    group.add_argument("--hw-file", metavar="HW.m",
                       help="MAESTRO hardware file; flags given explicitly override its values")
    for flag, field, text in HARDWARE_FLAGS:
        group.add_argument(flag, type=hardware_int(field), metavar="N", help=text)
    group.add_argument("--tech", metavar="FILE", help="technology table overrides (.json or .toml)")


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _int_in(text: str, low: int, high: int | None) -> int:
    what = {0: "non-negative", 1: "positive"}.get(low, f">= {low}")
    try:
        value = int(text)
    except ValueError:                       # also literals of more than 4,300 digits
        raise argparse.ArgumentTypeError(f"expected a {what} integer, got '{_shown(text)}'") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value}")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"{value:,} is above the limit of {high:,} (see the README's "
                                         "Limits)")
    return value


def int_in(low: int, high: int | None):
    """argparse type: an integer in [low, high] (``high`` from :mod:`costmodel.limits`)."""
    def parse(text: str) -> int:
        return _int_in(text, low, high)
    return parse


def positive_int(text: str) -> int:
    return _int_in(text, 1, None)


def hardware_int(field: str):
    """argparse type of a hardware flag: the field's limits (:data:`costmodel.limits.ACCELERATOR_LIMITS`)."""
    return int_in(*limits.ACCELERATOR_LIMITS[field])


count_arg = int_in(1, limits.MAX_TRIALS)            # --trials and the like
seed_arg = int_in(0, limits.MAX_SEED)
workers_arg = int_in(1, limits.MAX_WORKERS)
levels_arg = int_in(1, limits.MAX_LEVELS)
whole_seconds = int_in(1, limits.MAX_SECONDS)        # --heartbeat, --grace-period


def add_jobs_argument(p: argparse.ArgumentParser) -> None:
    from costmodel.cost import jobs

    p.add_argument("--jobs", type=workers_arg, default=None, metavar="N",
                   help=f"cores to use (default: every core this process may run on, {jobs()} here); "
                        "results are the same for any N")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{_shown(text)}'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {_shown(text)}")
    return value


def seconds(text: str) -> float:
    """argparse type of a time limit or timeout: a positive number of seconds, at most a year."""
    value = positive_float(text)
    if value > limits.MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{value:g} s is above the limit of {limits.MAX_SECONDS:,} s")
    return value


def seconds_or_zero(text: str) -> float:
    """As :func:`seconds`, and 0 for none."""
    try:
        if float(text) == 0:
            return 0.0
    except ValueError:
        pass
    return seconds(text)


def add_budget_arguments(p: argparse.ArgumentParser, title: str = "budget") -> None:
    g = p.add_argument_group(title)
    g.add_argument("--max-area-mm2", type=positive_float, metavar="A", help="area, mm^2")
    g.add_argument("--max-power-mw", type=positive_float, metavar="P", help="power, mW")
    g.add_argument("--max-pes", type=positive_int, metavar="N", help="PEs")
    g.add_argument("--max-buffer", type=positive_int, metavar="E", help="PEs x L1 + L2, elements")


def budget_of(args: argparse.Namespace) -> dict:
    """The budget flags that were given, as ``spaces.hardware.Budget`` keywords."""
    return {k: v for k in ("max_area_mm2", "max_power_mw", "max_pes", "max_buffer")
            if (v := getattr(args, k, None)) is not None}


def accelerator_from_args(args: argparse.Namespace) -> Accelerator:
    """The accelerator described by --hw-file and the hardware flags (flags win)."""
    base = read_hw(args.hw_file) if args.hw_file else Accelerator()
    overrides = {field: getattr(args, field) for _, field, _ in HARDWARE_FLAGS
                 if getattr(args, field) is not None}
    tech = Tech.from_file(args.tech) if getattr(args, "tech", None) else base.tech
    return dataclasses.replace(base, tech=tech, **overrides)


def read_network_file(path: str, *, prog: str) -> NetworkFile:
    """A .m file keeps its unreadable layers (each gets an error row); ONNX models and built-in
    networks come without dataflows."""
    if path.lower().endswith(".m"):
        return read_network(path)
    loaded = load_network(path)
    for note in loaded.notes:
        print(f"{prog}: {path}: note: {note}", file=sys.stderr)
    for op in loaded.unsupported:
        print(f"{prog}: {path}: operator not imported: {op}", file=sys.stderr)
    return NetworkFile(loaded.name, tuple(MappedLayer(layer, dataflow, name=layer.name)
                                          for layer, dataflow in loaded.layers), loaded.source)


def resolve_dataflow(spec: str, *, prog: str, key: str = "--dataflow", holes: bool = False) -> Dataflow:
    """A dataflow file, or the name of a dataflow shipped with the package; a template with holes only
    where ``holes`` allows it."""
    shipped = bundled_dataflow(spec)
    if not spec.lower().endswith(".m") and "/" not in spec and len(spec) < 100 and shipped.is_file():
        dataflow = read_dataflow(shipped)
    else:
        dataflow = read_dataflow(spec)
    if dataflow.holes and not holes:
        raise SpecError(f"{spec} is a template with holes ({', '.join('?' + h for h in dataflow.holes)}); "
                        f"{prog} needs concrete sizes (search them with dse map --space)", key=key)
    return dataflow


# ------------------------------------------------------------------------- GEMM layers' dataflow
# A CNN imported from ONNX ends in Gemm layers (its classifier), which a convolution's dataflow cannot
# map: --gemm-dataflow gives them their own, so the network evaluates end to end in one command.
GEMM_DATAFLOW_HELP = ("dataflow for the GEMM layers (M, N, K) instead of --dataflow: a .m file or a "
                      "shipped name (gemm_mnk)")


def add_gemm_dataflow_argument(p: argparse.ArgumentParser, *, text: str = GEMM_DATAFLOW_HELP) -> None:
    """``--gemm-dataflow DATAFLOW`` (read it with :func:`gemm_dataflow_of`)."""
    p.add_argument("--gemm-dataflow", metavar="DATAFLOW", help=text)


def gemm_dataflow_of(args: argparse.Namespace, *, prog: str, holes: bool = False) -> Dataflow | None:
    """The ``--gemm-dataflow`` given (``None`` if none); ``holes=True`` accepts a template (``dse map``).
    A dataflow that maps a dimension other than M, N and K (a convolution's) is refused here, naming
    the flag, rather than failing on every GEMM layer."""
    spec = getattr(args, "gemm_dataflow", None)
    if spec is None:
        return None
    dataflow = resolve_dataflow(spec, prog=prog, key="--gemm-dataflow", holes=holes)
    extra = sorted({d.dim.rstrip("'") for d in dataflow.directives if not d.is_cluster} - {"M", "N", "K"})
    if extra:
        raise SpecError(f"{spec} maps {', '.join(extra)}, which GEMM layers do not have (they have M, N and "
                        "K: e.g. the shipped gemm_mnk)", key="--gemm-dataflow")
    return dataflow


def dataflow_for(layer: Layer, dataflow: Dataflow | None, gemm_dataflow: Dataflow | None
                 ) -> Dataflow | None:
    """The dataflow a layer takes from the command line: a GEMM layer ``gemm_dataflow`` when one was
    given, every other layer (and a GEMM without one) ``dataflow``."""
    if gemm_dataflow is not None and layer.layer_type is LayerType.GEMM:
        return gemm_dataflow
    return dataflow


def gemm_hint(layer: Layer, gemm_dataflow, *, suggest: str = "gemm_mnk") -> str:
    """What to add to an error of a GEMM layer that took a convolution's dataflow (``gemm_dataflow``:
    what ``--gemm-dataflow`` gave, None if nothing)."""
    if layer.layer_type is LayerType.GEMM and gemm_dataflow is None:
        return f" (a GEMM layer needs a GEMM dataflow: add --gemm-dataflow {suggest})"
    return ""
