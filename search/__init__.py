"""How to search: one module per engine behind one small protocol (``_base.Searcher``)."""

from . import bounds
from ._base import (
    OBJECTIVES,
    SEARCHERS,
    Found,
    Problem,
    Searcher,
    SearchResult,
    evaluate_chunk,
    evaluate_mixed_chunk,
    evaluate_points,
    objective_values,
    parse_objectives,
)
from .exhaustive import ExhaustiveSearcher
from .pareto import hypervolume_2d, pareto_mask

__all__ = [
    "OBJECTIVES",
    "SEARCHERS",
    "ExhaustiveSearcher",
    "Found",
    "Problem",
    "SearchResult",
    "Searcher",
    "bounds",
    "evaluate_chunk",
    "evaluate_mixed_chunk",
    "evaluate_points",
    "hypervolume_2d",
    "objective_values",
    "pareto_mask",
    "parse_objectives",
]
