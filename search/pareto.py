"""Pareto fronts (every objective minimised)."""

from __future__ import annotations

import numpy as np


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Whether each row of ``values`` (n, k) is non-dominated; duplicates keep their first copy."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    keep = np.isfinite(values).all(axis=1)
    order = np.lexsort(values.T[::-1])          # sorted by the first objective, then the next ones
    best_rows: list[np.ndarray] = []
    for i in order:
        if not keep[i]:
            continue
        v = values[i]
        for b in best_rows:
            if np.all(b <= v):                  # dominated by (or equal to) an earlier row
                keep[i] = False
                break
        if keep[i]:
            best_rows.append(v)
    out = np.zeros(n, dtype=bool)
    out[keep] = True
    return out


def hypervolume_2d(front: np.ndarray, reference: np.ndarray) -> float:
    """Area dominated by a 2-objective front up to ``reference`` (both minimised)."""
    pts = front[np.all(front < reference, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.argsort(pts[:, 0])]
    area, y_prev = 0.0, reference[1]
    for x, y in pts:
        if y < y_prev:
            area += (reference[0] - x) * (y_prev - y)
            y_prev = y
    return area
