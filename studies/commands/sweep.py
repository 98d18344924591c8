"""``dse sweep``: brute-force hardware design-space exploration for a network and its dataflows.

MAESTRO's hardware DSE: every combination of PE count, NoC bandwidth, L1 and L2 capacity is evaluated for
a network whose layers carry their dataflows (or all take ``--dataflow``), and the Pareto set over
throughput (maximised), energy and area (minimised) is reported.

Grid specs (``--num-pes``, ``--noc-bw``, ``--l1-size``, ``--l2-size``) are those of ``dse codesign``'s
hardware spaces (:func:`spaces.hardware.parse_spec`):

    A:B:S     A, A+S, A+2S, ... up to B inclusive (``16:4096:16``)
    A:B:*F    A, A*F, A*F^2, ... up to B inclusive, an integer factor F >= 2 (``64:1024:*2``)
    a,b,c     a list (``64,128,256``), or a single value (``256``)

Network figures of a design: runtime and energy are the sums over layers, repeats counted; a design is
valid only if every layer can be mapped on it and fits L1, L2, the NoC and off-chip bandwidth, and if it
is within the budget (``--max-area-mm2``, ``--max-power-mw``, ``--max-pes``, ``--max-buffer``: a
:class:`spaces.hardware.Budget`). Area and power are as provisioned (the design's capacities and NoC
bandwidth), so they depend on the design, not the layers. The command exits 2 if a layer cannot be mapped
on any design of the grid (after reporting the sweep).

How: as in :func:`costmodel.sweep.sweep_hardware`, the cost model runs once per (PEs, NoC bandwidth) pair
and layer, since runtime, energy and the buffer requirements do not depend on the capacities. A design
fits the network iff it fits the largest requirement of any layer, so the layers are first reduced to
per-pair network figures (count-weighted sums, maxima of the requirements); only those are broadcast over
L1 x L2, in blocks of about a million designs evaluated in grid order. Memory stays bounded whatever the
grid size, and ``--all`` streams its rows.

Output columns (CSV and Parquet: the Pareto set by default, every design in grid order with ``--all``):

    num_pes, noc_bw, l1_size, l2_size   the design (PEs; elements/cycle; elements per PE; elements)
    runtime_cycles                      network runtime, repeats counted (empty if unmappable)
    throughput_macs_per_cycle           the network's true MACs / runtime_cycles
    energy_mac_units, energy_nj         network energy, in units of one MAC's energy and in nJ
    area_mm2, power_mw                  the design's area and power as provisioned
    l1_size_req, l2_size_req            the largest L1 and L2 requirement of any layer (elements)
    valid                               mappable, fits capacities and bandwidths, within the budgets
    status                              ok | unmappable | bandwidth | capacity | budget (the first that fails)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:                  # imported where used: start-up time
    import pandas as pd

from costmodel import Accelerator, Dataflow, DseError, Layer, SpecError, evaluate_batch, limits, set_jobs
from costmodel.workloads import merge_repeats
from search.exhaustive import text_progress
from search.pareto import pareto_mask
from spaces.hardware import Budget, parse_spec

from ..outputs import check_output_file, open_output, output_path
from ..tables import format_table
from .common import (
    HARDWARE_FLAGS,
    UsageError,
    accelerator_from_args,
    add_budget_arguments,
    add_gemm_dataflow_argument,
    add_jobs_argument,
    budget_of,
    dataflow_for,
    gemm_dataflow_of,
    hardware_int,
    positive_int,
    read_network_file,
    resolve_dataflow,
)

# The swept axes: (Accelerator field, flag, help).
AXES = (
    ("num_pes", "--num-pes", "numbers of PEs"),
    ("noc_bw", "--noc-bw", "NoC bandwidths, elements/cycle, every cluster level"),
    ("l1_size", "--l1-size", "L1 capacities per PE, elements"),
    ("l2_size", "--l2-size", "L2 capacities, elements"),
)
SWEPT = {field for field, _, _ in AXES}

COLUMNS = ("num_pes", "noc_bw", "l1_size", "l2_size", "runtime_cycles", "throughput_macs_per_cycle",
           "energy_mac_units", "energy_nj", "area_mm2", "power_mw", "l1_size_req", "l2_size_req", "valid",
           "status")
TABLE_COLUMNS = (
    ("PEs", "num_pes", ","), ("NoC BW", "noc_bw", ","), ("L1/PE", "l1_size", ","), ("L2", "l2_size", ","),
    ("runtime (cycles)", "runtime_cycles", ","), ("MACs/cycle", "throughput_macs_per_cycle", ",.1f"),
    ("energy (nJ)", "energy_nj", ",.1f"), ("area (mm2)", "area_mm2", ",.3f"),
    ("power (mW)", "power_mw", ",.1f"),
)

# Design status codes, in the order they are checked; a design gets the first that applies.
OK, UNMAPPABLE, BANDWIDTH, CAPACITY, BUDGET = range(5)
STATUS = ("ok", "unmappable", "bandwidth", "capacity", "budget")

COLUMN_HELP = (
    ("num_pes, noc_bw, l1_size, l2_size", "the design"),
    ("runtime_cycles", "network runtime, repeats counted (empty if unmappable)"),
    ("throughput_macs_per_cycle", "the network's true MACs / runtime_cycles"),
    ("energy_mac_units, energy_nj", "network energy (in MAC energies, in nJ)"),
    ("area_mm2, power_mw", "area and power as provisioned"),
    ("l1_size_req, l2_size_req", "the largest L1 / L2 requirement of any layer"),
    ("valid", "every layer fits, and within the budgets"),
    ("status", "ok, unmappable, bandwidth, capacity or budget (the first that fails)"),
)

BLOCK_DESIGNS = 1 << 20          # designs broadcast at once (bounds the memory of a sweep)
EVAL_PAIRS = 4096                # (PEs, NoC bandwidth) pairs per cost-model call, at least
MAX_PAIRS = 20_000_000           # num_pes x noc_bw: the cost model runs this many times per layer
DEFAULT_MAX_ROWS = 50_000_000    # --all refuses to write more rows unless --max-rows is raised


# --------------------------------------------------------------------------------------- grid specs
def grid_spec(name: str) -> Callable[[str], np.ndarray]:
    """argparse type of a swept flag: the sorted values of a hardware-space spec."""

    def parse(text: str) -> np.ndarray:
        try:        # within costmodel.limits, so below the engine's "unlimited"
            values = parse_spec(name, text).values
        except SpecError as exc:
            raise argparse.ArgumentTypeError(exc.reason) from None
        return np.array(values, dtype=np.int64)

    return parse


# --------------------------------------------------------------------------------------- the sweep
def describe_budget(budget: Budget) -> str:
    limits = {"max_area_mm2": "area <= {:g} mm2", "max_power_mw": "power <= {:g} mW",
              "max_pes": "PEs <= {:,}", "max_buffer": "PEs x L1 + L2 <= {:,}"}
    parts = [text.format(value) for name, text in limits.items() if (value := getattr(budget, name))]
    return ", ".join(parts) or "none"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NetworkSweep:
    """What a sweep found: the axes, the count of designs per status, the Pareto set (a frame with
    :data:`COLUMNS`), per-layer errors of layers that could be mapped on no grid point, and the time."""

    axes: dict[str, np.ndarray]
    total_macs: int
    counts: dict[str, int]
    pareto: pd.DataFrame
    unmappable_layers: list[str]
    seconds: float

    @property
    def size(self) -> int:
        return int(np.prod([len(v) for v in self.axes.values()]))


class _PairFigures:
    """Network figures per (PEs, NoC bandwidth) pair (C order: PEs outer), computed on demand in order."""

    def __init__(self, pairs: Sequence[tuple[Layer, Dataflow]], acc: Accelerator, pes: np.ndarray,
                 bws: np.ndarray) -> None:
        self.pairs, self.acc = pairs, acc
        n = len(pes) * len(bws)
        self.num_pes = np.repeat(pes, len(bws))
        self.noc_bw = np.tile(bws, len(pes))
        self.runtime = np.zeros(n, dtype=np.int64)
        self.energy = np.zeros(n)
        self.l1_req = np.zeros(n, dtype=np.int64)
        self.l2_req = np.zeros(n, dtype=np.int64)
        self.status = np.zeros(n, dtype=np.int8)        # OK, UNMAPPABLE or BANDWIDTH
        self.first_error: list[str | None] = [None] * len(pairs)
        self.mapped_somewhere = [False] * len(pairs)
        self.done = 0

    def ensure(self, stop: int) -> None:
        """Evaluate every layer on the pairs up to ``stop`` (exclusive)."""
        if stop <= self.done:
            return
        sl = slice(self.done, min(len(self.runtime), max(stop, self.done + EVAL_PAIRS)))
        unmappable = np.zeros(sl.stop - sl.start, dtype=bool)
        bandwidth = np.zeros_like(unmappable)
        for i, (layer, dataflow) in enumerate(self.pairs):
            cost = evaluate_batch(layer, dataflow, accelerator=self.acc, num_pes=self.num_pes[sl],
                                  noc_bw=self.noc_bw[sl], l1_size=None, l2_size=None)
            error = cost.error != ""
            if error.all():
                self.first_error[i] = self.first_error[i] or str(cost.error[0])
            else:
                self.mapped_somewhere[i] = True
            unmappable |= error
            bandwidth |= ~(cost.meets_noc_bw & cost.meets_offchip_bw)
            self.runtime[sl] += layer.count * cost.runtime_cycles
            self.energy[sl] += layer.count * cost.energy_mac_units
            np.maximum(self.l1_req[sl], cost.l1_size_req, out=self.l1_req[sl])
            np.maximum(self.l2_req[sl], cost.l2_size_req, out=self.l2_req[sl])
        self.status[sl] = np.where(unmappable, UNMAPPABLE, np.where(bandwidth, BANDWIDTH, OK))
        self.done = sl.stop


def _blocks(n_pairs: int, n_l1: int, n_l2: int, block: int):
    """(pair slice, L1 slice) blocks of at most ``block`` designs (or one pair x one L1 row), grid order."""
    if n_l1 * n_l2 <= block:
        step = max(1, block // (n_l1 * n_l2))
        for p0 in range(0, n_pairs, step):
            yield slice(p0, min(n_pairs, p0 + step)), slice(0, n_l1)
    else:
        step = max(1, block // n_l2)
        for p in range(n_pairs):
            for a in range(0, n_l1, step):
                yield slice(p, p + 1), slice(a, min(n_l1, a + step))


def sweep_network(pairs: Sequence[tuple[Layer, Dataflow]], acc: Accelerator, axes: dict[str, np.ndarray],
                  budget: Budget | None = None, *, sink: Callable[[pd.DataFrame], None] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> NetworkSweep:
    """Sweep ``axes`` (num_pes, noc_bw, l1_size, l2_size: sorted 1-d arrays) for a network given as
    (layer, dataflow) pairs; the other accelerator parameters and the tech table come from ``acc``.
    ``sink`` receives every design, in blocks of rows with :data:`COLUMNS`, in grid order."""
    start = time.perf_counter()
    budget = budget or Budget()
    pes, bws, l1, l2 = (np.asarray(axes[name], dtype=np.int64) for name, _, _ in AXES)
    tech = acc.tech
    figures = _PairFigures(pairs, acc, pes, bws)
    n_pairs, size = len(figures.runtime), len(pes) * len(bws) * len(l1) * len(l2)
    total_macs = sum(layer.true_macs * layer.count for layer, _ in pairs)
    counts = np.zeros(len(STATUS), dtype=np.int64)
    # Pareto candidates: per pair, its valid design of least area (the others of the pair have the same
    # runtime and energy, so they are dominated by it or equal to it).
    best_area = np.full(n_pairs, np.inf)
    best_l1 = np.zeros(n_pairs, dtype=np.int64)
    best_l2 = np.zeros(n_pairs, dtype=np.int64)
    best_power = np.zeros(n_pairs)
    done = 0
    for ps, ls in _blocks(n_pairs, len(l1), len(l2), BLOCK_DESIGNS):
        figures.ensure(ps.stop)
        pe3, bw3 = figures.num_pes[ps, None, None], figures.noc_bw[ps, None, None]
        l1_3, l2_3 = l1[None, ls, None], l2[None, None, :]
        fits = (figures.l1_req[ps, None, None] <= l1_3) & (figures.l2_req[ps, None, None] <= l2_3)
        area = tech.area_um2(pe3, acc.simd_lanes, bw3, l1_3, l2_3) / 1e6
        power = tech.power_mw(pe3, acc.simd_lanes, bw3, l1_3, l2_3)
        status = np.where(fits, OK, CAPACITY).astype(np.int8)
        status = np.where(figures.status[ps, None, None] != OK, figures.status[ps, None, None], status)
        over = np.zeros(area.shape, dtype=bool)
        if budget.max_area_mm2 is not None:
            over |= area > budget.max_area_mm2
        if budget.max_power_mw is not None:
            over |= power > budget.max_power_mw
        if budget.max_pes is not None:
            over |= pe3 > budget.max_pes
        if budget.max_buffer is not None:
            over |= pe3 * l1_3 + l2_3 > budget.max_buffer
        status[(status == OK) & over] = BUDGET
        counts += np.bincount(status.ravel(), minlength=len(STATUS))

        flat_area = np.where(status == OK, area, np.inf).reshape(len(area), -1)
        pick = np.argmin(flat_area, axis=1)
        rows = np.arange(len(area))
        better = flat_area[rows, pick] < best_area[ps]
        idx = np.arange(ps.start, ps.stop)[better]
        best_area[idx] = flat_area[rows, pick][better]
        best_l1[idx] = ls.start + pick[better] // len(l2)
        best_l2[idx] = pick[better] % len(l2)
        best_power[idx] = power.reshape(len(area), -1)[rows, pick][better]

        if sink is not None:
            shape = status.shape
            sink(_frame(figures, ps, total_macs, tech.mac_energy_nj,
                        np.broadcast_to(l1_3, shape), np.broadcast_to(l2_3, shape), area, power, status))
        done += status.size
        if progress is not None:
            progress(done, size)

    pareto = _pareto(figures, total_macs, tech.mac_energy_nj, l1, l2, best_area, best_l1, best_l2,
                     best_power)
    unmappable_layers = [f"layer {layer.name}: cannot be mapped on any grid point: {figures.first_error[i]}"
                         for i, (layer, _) in enumerate(pairs) if not figures.mapped_somewhere[i]]
    return NetworkSweep(axes={name: a for (name, _, _), a in zip(AXES, (pes, bws, l1, l2), strict=True)},
                        total_macs=total_macs, counts=dict(zip(STATUS, counts.tolist(), strict=True)),
                        pareto=pareto, unmappable_layers=unmappable_layers,
                        seconds=time.perf_counter() - start)


def _frame(figures: _PairFigures, ps: slice, total_macs: int, mac_energy_nj: float, l1, l2, area, power,
           status) -> pd.DataFrame:
    """Rows with :data:`COLUMNS` for a block (pair figures broadcast over its L1 x L2 designs)."""
    import pandas as pd
    shape = status.shape

    def per_pair(values):
        return np.broadcast_to(values[ps, None, None], shape).ravel()

    status = status.ravel()
    missing = status == UNMAPPABLE
    runtime = per_pair(figures.runtime)
    energy = per_pair(figures.energy)
    with np.errstate(divide="ignore", invalid="ignore"):
        throughput = np.where(missing, np.nan, total_macs / runtime)
    return pd.DataFrame({
        "num_pes": per_pair(figures.num_pes), "noc_bw": per_pair(figures.noc_bw),
        "l1_size": l1.ravel(), "l2_size": l2.ravel(),
        "runtime_cycles": pd.arrays.IntegerArray(runtime.copy(), missing),
        "throughput_macs_per_cycle": throughput,
        "energy_mac_units": np.where(missing, np.nan, energy),
        "energy_nj": np.where(missing, np.nan, energy * mac_energy_nj),
        "area_mm2": area.ravel(), "power_mw": power.ravel(),
        "l1_size_req": pd.arrays.IntegerArray(per_pair(figures.l1_req).copy(), missing),
        "l2_size_req": pd.arrays.IntegerArray(per_pair(figures.l2_req).copy(), missing),
        "valid": status == OK,
        "status": np.asarray(STATUS, dtype=object)[status],
    })


def _pareto(figures: _PairFigures, total_macs: int, mac_energy_nj: float, l1, l2, best_area, best_l1,
            best_l2, best_power) -> pd.DataFrame:
    """The non-dominated designs among the per-pair candidates, fastest first."""
    import pandas as pd
    cand = np.flatnonzero(np.isfinite(best_area))
    throughput = total_macs / figures.runtime[cand]
    energy = figures.energy[cand]
    keep = (pareto_mask(np.column_stack([-throughput, energy, best_area[cand]])) if len(cand)
            else np.zeros(0, dtype=bool))
    cand = cand[keep]
    frame = pd.DataFrame({
        "num_pes": figures.num_pes[cand], "noc_bw": figures.noc_bw[cand],
        "l1_size": l1[best_l1[cand]], "l2_size": l2[best_l2[cand]],
        "runtime_cycles": pd.array(figures.runtime[cand], dtype="Int64"),
        "throughput_macs_per_cycle": total_macs / figures.runtime[cand],
        "energy_mac_units": figures.energy[cand], "energy_nj": figures.energy[cand] * mac_energy_nj,
        "area_mm2": best_area[cand], "power_mw": best_power[cand],
        "l1_size_req": pd.array(figures.l1_req[cand], dtype="Int64"),
        "l2_size_req": pd.array(figures.l2_req[cand], dtype="Int64"),
        "valid": np.ones(len(cand), dtype=bool), "status": np.full(len(cand), "ok", dtype=object),
    })
    return frame.sort_values(["runtime_cycles", "energy_mac_units", "area_mm2"], kind="stable",
                             ignore_index=True)


# --------------------------------------------------------------------------------------- writers
def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UsageError("--format parquet needs pyarrow: pip install 'dataflow-dse[parquet]' "
                         "(or pip install pyarrow)") from None
    return pyarrow


def _arrow_schema(pa):
    types = {"valid": pa.bool_(), "status": pa.string()}
    for name in COLUMNS:
        if name not in types:
            floating = name in ("throughput_macs_per_cycle", "energy_mac_units", "energy_nj", "area_mm2",
                                "power_mw")
            types[name] = pa.float64() if floating else pa.int64()
    return pa.schema([(name, types[name]) for name in COLUMNS])


class _CsvSink:
    def __init__(self, stream) -> None:
        self.stream, self.rows = stream, 0

    def __call__(self, frame: pd.DataFrame) -> None:
        frame.to_csv(self.stream, header=self.rows == 0, index=False, lineterminator="\n")
        self.rows += len(frame)

    def close(self) -> None:
        if self.rows == 0:
            self.stream.write(",".join(COLUMNS) + "\n")


class _ParquetSink:
    def __init__(self, path: str) -> None:
        self.pa = _pyarrow()
        self.schema = _arrow_schema(self.pa)
        self.writer = self.pa.parquet.ParquetWriter(path, self.schema)
        self.rows = 0

    def __call__(self, frame: pd.DataFrame) -> None:
        self.writer.write_table(self.pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False))
        self.rows += len(frame)

    def close(self) -> None:
        self.writer.close()


# --------------------------------------------------------------------------------------- the command
def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="brute-force hardware sweep of a network and its dataflows",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Evaluate a network, each layer with its own dataflow, on every design of a grid of\n"
                    "PE counts, NoC bandwidths, L1 and L2 capacities (MAESTRO's hardware DSE, vectorised),\n"
                    "and report how many designs are valid and the Pareto set over throughput (max),\n"
                    "energy and area (min). Runtime and energy are summed over layers, repeats counted.\n"
                    "Exits 2 if a layer cannot be mapped on any design of the grid.",
        epilog="grid specs (as dse codesign's hardware space):\n"
               "  A:B:S    A, A+S, A+2S, ... up to B inclusive, e.g. 16:4096:16\n"
               "  A:B:*F   A, A*F, A*F^2, ... up to B inclusive (integer F >= 2), e.g. 64:1024:*2\n"
               "  a,b,c    a list, e.g. 64,128,256, or a single value\n\n"
               "columns of the CSV/Parquet output (the Pareto set, or every design with --all):\n"
               + "".join(f"  {names:<34}  {text}\n" for names, text in COLUMN_HELP))
    p.add_argument("file", metavar="NETWORK",
                   help="a MAESTRO network/mapping file (.m) whose layers carry dataflows; or, with "
                        "--dataflow, an ONNX model or a built-in network name (dse networks)")
    p.add_argument("--layer", action="append", metavar="NAME", help="only these layers (repeatable)")
    p.add_argument("--dataflow", metavar="DATAFLOW",
                   help="apply this dataflow to every layer (instead of the file's own): a .m file with a "
                        "Dataflow block, or a shipped dataflow name (kcp_ws, yxp_os, xp_ws, nlr, gemm_mnk)")
    add_gemm_dataflow_argument(p)
    grid = p.add_argument_group("the grid (a spec each; left out: the --hw-file's value)")
    for field, flag, text in AXES:
        grid.add_argument(flag, dest=field, type=grid_spec(field), metavar="SPEC", help=text)
    fixed = p.add_argument_group("fixed hardware (MAESTRO's meanings; unset bandwidths mean unlimited)")
    fixed.add_argument("--hw-file", metavar="HW.m",
                       help="MAESTRO hardware file; flags given explicitly override its values")
    for flag, field, text in HARDWARE_FLAGS:
        if field not in SWEPT:
            fixed.add_argument(flag, type=hardware_int(field), metavar="N", help=text)
    fixed.add_argument("--tech", metavar="FILE", help="technology table overrides (.json or .toml)")
    add_budget_arguments(p, "budget (as dse codesign's; designs over budget are not valid)")
    add_jobs_argument(p)
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=("table", "csv", "parquet"), default="table",
                     help="table (default): summary and Pareto set; csv or parquet: the rows (columns below)")
    out.add_argument("--output", metavar="PATH", help="write the table/rows here (parquet needs it)")
    out.add_argument("--all", action="store_true",
                     help="with csv/parquet: write every design, not only the Pareto set")
    out.add_argument("--max-rows", type=positive_int, default=DEFAULT_MAX_ROWS, metavar="N",
                     help=f"--all refuses grids of more designs than this (default {DEFAULT_MAX_ROWS:,})")
    p.set_defaults(run=run)


def _axes(args: argparse.Namespace, acc: Accelerator) -> dict[str, np.ndarray]:
    """The swept values; an axis left out takes the --hw-file's value (which must be finite)."""
    axes = {}
    for field, flag, _ in AXES:
        values = getattr(args, field)
        if values is None:
            value = getattr(acc, field) if args.hw_file else None
            if value is None:
                raise UsageError(f"{flag}: give a grid spec (or a finite value in --hw-file)")
            values = np.array([value], dtype=np.int64)
        axes[field] = values
    return axes


def _network(args: argparse.Namespace, acc: Accelerator, axes: dict[str, np.ndarray]
             ) -> tuple[str, list[tuple[Layer, Dataflow]], int, list[str]]:
    """The network's name, its (layer, dataflow) pairs with repeats merged, its layer count (repeats
    counted) and one line per layer that cannot be swept."""
    template = resolve_dataflow(args.dataflow, prog="dse sweep") if args.dataflow else None
    gemm_template = gemm_dataflow_of(args, prog="dse sweep")
    net = read_network_file(args.file, prog="dse sweep")
    wanted = set(args.layer or ())
    problems, pairs = [], []
    for mapped in net.layers:
        if wanted and mapped.name not in wanted:
            continue
        dataflow = dataflow_for(mapped.layer, template, gemm_template) or mapped.dataflow
        if mapped.error is not None:
            problems.append(f"layer {mapped.name}: {mapped.error}")
        elif dataflow is None:
            problems.append(f"layer {mapped.name}: no Dataflow block in this layer or an earlier one "
                            "(give one with --dataflow)")
        elif dataflow.holes:
            problems.append(f"layer {mapped.name}: its dataflow has holes "
                            f"({', '.join('?' + h for h in dataflow.holes)}); a sweep needs concrete sizes")
        else:
            pairs.append((mapped.layer, dataflow))
    if template is None and gemm_template is None and net.layers and all(
            m.dataflow is None and m.error is None for m in net.layers):
        problems = ["no layer has a dataflow (give one with --dataflow)"]   # e.g. a built-in network
    missing = sorted(wanted - {m.name for m in net.layers})
    if missing:
        problems.append(f"no layer named {', '.join(missing)} (--layer)")
    if not problems and not pairs:
        problems.append("the network has no layers")
    merged = merge_repeats(pairs)
    # Structural mistakes (a directive on a dimension the layer lacks...) raise on any design: find them
    # all on one design before sweeping.
    for layer, dataflow in merged:
        try:
            limits.check_mapping(layer, dataflow)
            evaluate_batch(layer, dataflow, accelerator=acc, num_pes=axes["num_pes"][0],
                           noc_bw=axes["noc_bw"][0])
        except DseError as exc:
            problems.append(str(exc))
    return net.name, merged, sum(layer.count for layer, _ in pairs), problems


def run(args: argparse.Namespace) -> int:
    set_jobs(args.jobs)
    if args.all and args.format == "table":
        raise UsageError("--all writes rows: use it with --format csv or parquet")
    if args.format == "parquet":
        _pyarrow()
        if not args.output:
            raise UsageError("--format parquet needs --output PATH")
    if args.output:
        check_output_file(args.output)
    fixed = argparse.Namespace(**{**vars(args), **dict.fromkeys(SWEPT)})
    acc = accelerator_from_args(fixed)
    axes = _axes(args, acc)
    size = int(np.prod([len(v) for v in axes.values()]))
    if len(axes["num_pes"]) * len(axes["noc_bw"]) > MAX_PAIRS:
        raise UsageError(f"--num-pes x --noc-bw has more than {MAX_PAIRS:,} combinations; narrow the grid")
    if size > limits.MAX_SWEEP_DESIGNS:
        raise UsageError(f"the grid has {size:,} designs, above the limit of {limits.MAX_SWEEP_DESIGNS:,} "
                         "(see the README's Limits); narrow the grid")
    if args.all and size > args.max_rows:
        raise UsageError(f"--all would write {size:,} rows, more than --max-rows {args.max_rows:,}: raise "
                         "--max-rows to insist, narrow the grid, or drop --all to get the Pareto set")
    name, pairs, n_layers, problems = _network(args, acc, axes)
    if problems:                        # one line per layer that cannot be swept
        for line in problems:
            print(f"dse sweep: {args.file}: {line}", file=sys.stderr)
        return 2
    budget = Budget(**budget_of(args))
    progress = text_progress() if sys.stderr.isatty() else None

    if args.format == "table":
        result = sweep_network(pairs, acc, axes, budget, progress=progress)
        with open_output(args.output) as out:
            _write_summary(out, args, name, n_layers, len(pairs), acc, budget, result)
            if len(result.pareto):
                out.write(format_table(result.pareto.to_dict("records"), TABLE_COLUMNS))
            else:
                out.write("no valid design: widen the grid or the budgets\n")
    else:
        if args.format == "parquet":
            with output_path(args.output) as tmp:
                sink = _ParquetSink(str(tmp))
                result = _sweep_into(sink, pairs, acc, axes, budget, progress, args.all)
        else:
            with open_output(args.output) as stream:
                sink = _CsvSink(stream)
                result = _sweep_into(sink, pairs, acc, axes, budget, progress, args.all)
        # The summary goes where the rows do not.
        summary = sys.stdout if args.output else sys.stderr
        _write_summary(summary, args, name, n_layers, len(pairs), acc, budget, result)
        summary.write(f"wrote {sink.rows:,} {'designs' if args.all else 'Pareto designs'} to "
                      f"{args.output or 'stdout'}\n")
    for line in result.unmappable_layers:
        print(f"dse sweep: {args.file}: {line}", file=sys.stderr)
    return 2 if result.unmappable_layers else 0


def _sweep_into(sink, pairs, acc, axes, budget, progress, every: bool) -> NetworkSweep:
    try:
        result = sweep_network(pairs, acc, axes, budget, sink=sink if every else None, progress=progress)
        if not every:
            sink(result.pareto)
    finally:
        sink.close()
    return result


def _write_summary(out, args, name: str, n_layers: int, n_pairs: int, acc: Accelerator, budget: Budget,
                   result: NetworkSweep) -> None:
    counts, size = result.counts, result.size
    hardware_cut = counts["unmappable"] + counts["bandwidth"] + counts["capacity"]
    axes = " x ".join(f"{len(v)} {k}" for k, v in result.axes.items())

    def cap(v):
        return "unlimited" if v is None else f"{v:,}"

    rate = size / result.seconds if result.seconds > 0 else float("inf")
    out.write(f"network {name or '-'} ({args.file}): {n_layers} layer(s), {n_pairs} distinct "
              f"(shape, dataflow), {result.total_macs:,} MACs\n"
              f"grid: {axes} = {size:,} designs\n"
              f"fixed: {acc.simd_lanes} SIMD lane(s), NoC {acc.noc_hops} hop(s) x {acc.noc_hop_latency} "
              f"cycles, off-chip bandwidth {cap(acc.offchip_bw)}\n"
              f"valid: {counts['ok']:,} of {size:,} ({100 * counts['ok'] / size:.1f}%)\n"
              f"cut by capacity/bandwidth: {hardware_cut:,} (unmappable {counts['unmappable']:,}, "
              f"NoC/off-chip bandwidth {counts['bandwidth']:,}, L1/L2 capacity {counts['capacity']:,})\n"
              f"cut by budget: {counts['budget']:,} (budget: {describe_budget(budget)})\n"
              f"swept in {result.seconds:.2f} s: {rate:,.0f} designs/s\n"
              f"Pareto set over (throughput max, energy min, area min): {len(result.pareto):,} design(s)\n")
