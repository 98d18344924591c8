"""Writing result rows: aligned text tables, CSV and JSON."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence

import numpy as np


def _plain(value):
    """JSON/CSV-friendly value: numpy scalars to Python, NaN and missing to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_rows(out, rows: Iterable[dict], columns: Sequence[str], fmt: str) -> None:
    """One row per record, exactly the given columns (missing values empty / null)."""
    rows = list(rows)
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if _plain(row.get(c)) is None else _plain(row.get(c)) for c in columns])
    elif fmt == "json":
        json.dump([{c: _plain(row.get(c)) for c in columns} for row in rows], out, indent=1)
        out.write("\n")
    else:
        raise ValueError(f"unknown format {fmt}")


def _cell(value, spec: str | None) -> str:
    value = _plain(value)
    if value is None or value == "":
        return "-"
    if spec == "%":
        return f"{100 * value:.1f}%"
    if spec and isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str | None]]) -> str:
    """A fixed-width text table; numbers right-aligned. ``columns``: (header, key, format spec)."""
    cells = [[_cell(row.get(key), spec) for _, key, spec in columns] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, (h, _, _) in enumerate(columns)]
    numeric = [spec is not None for _, _, spec in columns]

    def line(values):
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip() + "\n"

    text = line([h for h, _, _ in columns])
    text += line(["-" * w for w in widths])
    for r in cells:
        text += line(r)
    return text
