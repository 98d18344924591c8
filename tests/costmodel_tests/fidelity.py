"""Comparing the cost model with MAESTRO's own outputs (shared by the fidelity tests)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from costmodel import Accelerator, DseError, evaluate_batch, parse_network
from costmodel.deviations import affected

DATA_DIR = Path(__file__).resolve().parent / "data"
PUBLIC = DATA_DIR / "maestro_public.csv.gz"            # the public oracle, each row's .m text included
MAPPING_DIR = DATA_DIR / "maestro_mapping"              # MAESTRO's whole mapping files
GENERATED = DATA_DIR / "maestro_generated.csv.gz"

# Our figure -> MAESTRO column, for the public oracle and for the generated set.
EXACT_COLUMNS = ("runtime_cycles", "num_macs", "l1_size_req", "l2_size_req", "input_l2_reads",
                 "weight_l2_reads", "output_l2_writes")
ORACLE_NAMES = {"runtime_cycles": "runtime_cycles", "num_macs": "num_macs", "l1_size_req": "l1_size_req",
                "l2_size_req": "l2_size_req", "input_l2_reads": "input_l2_read",
                "weight_l2_reads": "filter_l2_read", "output_l2_writes": "output_l2_write",
                "energy_mac_units": "stdout_total_energy_xmac", "peak_noc_bw_req": "peak_bw_req",
                "avg_noc_bw_req": "avg_bw_req", "avg_utilized_pes": "avg_utilized_pes"}
GENERATED_NAMES = {**ORACLE_NAMES, "l1_size_req": "total_l1_size_req", "l2_size_req": "total_l2_size_req",
                   "energy_mac_units": "total_energy_xmac"}


@dataclass
class Tally:
    rows_ok: int = 0
    equal_exact: int = 0                       # all EXACT_COLUMNS equal
    per_column: dict[str, int] = field(default_factory=dict)
    energy_checked: int = 0
    energy_equal: int = 0
    unexplained: list[str] = field(default_factory=list)
    crash_rows: int = 0
    crash_with_error: int = 0
    crash_evaluated_by_rule: int = 0           # MAESTRO fails, a deviation rule says we evaluate
    ok_rows_with_error: list[str] = field(default_factory=list)
    rejected_garbage: int = 0                  # MAESTRO 'ok' rows whose own figures are meaningless
    differing_by_rule: dict[str, int] = field(default_factory=dict)   # rows that differ, per rule named

    def report(self, title: str) -> str:
        lines = [f"{title}: {self.equal_exact}/{self.rows_ok} ok rows equal on all of "
                 f"{', '.join(EXACT_COLUMNS)} ({100 * self.equal_exact / max(self.rows_ok, 1):.2f}%)"]
        for col in EXACT_COLUMNS:
            lines.append(f"  {col}: {self.per_column.get(col, 0)}/{self.rows_ok} equal")
        lines.append(f"  energy_mac_units within 0.1%: {self.energy_equal}/{self.energy_checked} rows "
                     "not named by a deviation")
        lines.append(f"  differing figures not explained by a deviation rule: {len(self.unexplained)}")
        lines.append(f"  MAESTRO failures reported as errors: {self.crash_with_error}/{self.crash_rows}"
                     f" (evaluated because a deviation rule says so: {self.crash_evaluated_by_rule})")
        lines.append(f"  MAESTRO ok rows rejected as garbage (negative or empty figures): "
                     f"{self.rejected_garbage}; rejected otherwise: {len(self.ok_rows_with_error)}")
        rules = ", ".join(f"{k} {v}" for k, v in sorted(self.differing_by_rule.items())) or "none"
        lines.append(f"  rows that differ on an exact figure, per deviation rule they name: {rules}")
        return "\n".join(lines)


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def accelerator_of(row) -> Accelerator:
    return Accelerator(num_pes=int(row.num_pes), simd_lanes=int(row.num_simd_lanes),
                       l1_size=_num(row.l1_size_cstr), l2_size=_num(row.l2_size_cstr),
                       noc_bw=_num(row.noc_bw_cstr), noc_hop_latency=int(row.noc_hop_latency),
                       noc_hops=int(row.noc_hops), offchip_bw=_num(row.offchip_bw_cstr))


def _close(ours: float, theirs: float, rel: float) -> bool:
    return abs(ours - theirs) <= rel * max(abs(theirs), 1e-9)


def compare(rows: pd.DataFrame, texts, names: dict[str, str], *, maestro_exact: bool = False,
            reject_allowed=lambda row, error: False) -> Tally:
    """Evaluate every row (a single-layer .m text each) and tally agreement with MAESTRO."""
    tally = Tally()
    for row, text in zip(rows.itertuples(index=False), texts, strict=True):
        label = f"{getattr(row, 'layer_file', None) or getattr(row, 'case_id', '?')} ({row.status})"
        try:
            mapped = parse_network(text).layers[0]
            if mapped.error is not None:
                raise mapped.error
            cost = evaluate_batch(mapped.layer, mapped.dataflow, accelerator=accelerator_of(row),
                                  maestro_exact=maestro_exact).row(0)
            error = cost.error
        except DseError as exc:
            cost, error = None, str(exc)
        if row.status != "ok":
            tally.crash_rows += 1
            tally.crash_with_error += bool(error)
            tally.crash_evaluated_by_rule += not error and "status" in affected(cost.deviations)
            continue
        tally.rows_ok += 1
        if error:
            if reject_allowed(row, error):
                tally.rejected_garbage += 1
            else:
                tally.ok_rows_with_error.append(f"{label}: {error}")
            continue
        allowed = affected(cost.deviations)
        all_equal = True
        for ours, theirs in names.items():
            mine, ref = getattr(cost, ours), getattr(row, theirs)
            if ours in EXACT_COLUMNS:
                same = mine == ref
                tally.per_column[ours] = tally.per_column.get(ours, 0) + same
                all_equal &= same
            elif ours == "energy_mac_units":
                same = _close(mine, ref, 1e-3)
                if "energy_mac_units" not in allowed:
                    tally.energy_checked += 1
                    tally.energy_equal += same
            else:                               # MAESTRO prints these with 6 significant digits
                same = _close(mine, ref, 1e-5) or abs(mine - ref) < 1e-9
            if not same and ours not in allowed:
                tally.unexplained.append(f"{label}: {ours} {mine} vs MAESTRO {ref} "
                                         f"(deviations: {cost.deviations or 'none'})")
        tally.equal_exact += all_equal
        if not all_equal:
            for rule in filter(None, cost.deviations.split(",")):
                tally.differing_by_rule[rule] = tally.differing_by_rule.get(rule, 0) + 1
    return tally


def public_oracle() -> tuple[pd.DataFrame, list[str]]:
    rows = public_rows()
    return rows, list(rows.layer_text)


def public_rows() -> pd.DataFrame:
    return pd.read_csv(PUBLIC)


def public_layer_text(layer_file: str) -> str:
    """The single-layer .m input of one public oracle row (``layer_file`` as in the oracle)."""
    rows = public_rows()
    return rows.loc[rows.layer_file == layer_file, "layer_text"].iloc[0]


def generated_cases() -> tuple[pd.DataFrame, list[str]]:
    rows = pd.read_csv(GENERATED)
    return rows, list(rows.mfile_text)
