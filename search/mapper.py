"""Mapping one layer as ``dse map`` does: an incumbent from the shipped templates, then the real space.

1. The shipped dataflow templates with holes (``spaces.union.template_union``) are searched
   exhaustively: the best one that fits is the *incumbent* (small spaces, a fraction of a second).
   Free and coarse spaces start from it; a space the user names as one template does not (the answer
   stays that dataflow).
2. The requested space is searched with the incumbent as a seed, so the answer is never worse than
   the best template; for three cluster levels the two-level space is searched first and its best
   seeds the three-level search as well (a larger space never answers worse than a smaller one).

Every step stops on budgets of work (``MapSettings``), so the same layer, accelerator and settings
give the same mapping on any machine and under any load.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from costmodel import Accelerator, Layer, LayerType, limits
from costmodel.errors import SpecError
from spaces import Constraints, FreeSpace
from spaces.union import mapping_space, template_union

from ._base import Found, Problem, Searcher, SearchResult, parse_objectives
from .exhaustive import ExhaustiveSearcher, space_size

# The "auto" searcher: CP-SAT on free spaces with dividing tiles; other spaces exhaustively up to
# this many points, else Optuna.
AUTO_EXHAUSTIVE_LIMIT = 2_000_000


@dataclass(frozen=True, kw_only=True)
class MapSettings:
    """What to search and how much work to spend (None: each searcher's default budget)."""

    objectives: tuple[str, ...] = ("latency",)
    space: str = "free"                 # free | coarse | templates | a template (name or file)
    gemm_space: str | None = None       # the space of GEMM layers, when it differs (dse map --gemm-dataflow)
    levels: int = 2
    spatial: tuple[str, ...] | None = None
    tiles: str = "divisors"
    searcher: str = "auto"              # auto | cpsat | exhaustive | optuna
    evaluations: int | None = None      # cost-model points (cpsat, exhaustive)
    solver_time: float | None = None    # CP-SAT deterministic seconds
    trials: int = 1000                  # Optuna trials
    sampler: str | None = None
    seed: int = 0
    time_limit: float | None = None     # optional wall-clock cap per search (results may then vary)
    cpsat_params: str | None = None
    enforce_bw: bool = False
    incumbent: bool = True              # seed with the best shipped template
    jobs: int | None = None             # cost-model threads

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", parse_objectives(self.objectives))


def map_layer(layer: Layer, accelerator: Accelerator, settings: MapSettings = MapSettings()) -> SearchResult:
    """The best mapping(s) of ``layer`` (module docstring). ``evaluations`` of the result counts every
    point scored, the incumbent's included."""
    if settings.gemm_space is not None and layer.layer_type is LayerType.GEMM:
        settings = replace(settings, space=settings.gemm_space, gemm_space=None)
    constraints = Constraints(enforce_noc_bw=settings.enforce_bw, enforce_offchip_bw=settings.enforce_bw)
    seeds, spent, seed_bound = [], 0, None
    if settings.space == "free" and settings.levels == 3:
        smaller = map_layer(layer, accelerator, replace(settings, levels=2))    # its seeds included
        seeds, spent, seed_bound = list(smaller.best), smaller.evaluations, smaller.bound
    elif (settings.incumbent and settings.space in ("free", "coarse")) or settings.space == "templates":
        templates_result = _templates(layer, accelerator, settings, constraints)
        if settings.space == "templates":
            if templates_result is None:
                raise SpecError(f"no shipped template applies to layer {layer.name} "
                                f"({layer.layer_type.value})", key="--space")
            return templates_result
        if templates_result is not None:
            seeds, spent = list(templates_result.best), templates_result.evaluations
            seed_bound = templates_result.bound          # searched exhaustively: their optimum
    space = _space(layer, accelerator.num_pes, settings)
    problem = Problem(space, accelerator, settings.objectives, constraints)
    result = searcher_for(space, settings).search(problem, seeds)
    result.evaluations += spent
    # The answer ranges over this space and the seeds' spaces: its bound is the smaller of theirs.
    if result.stop == "infeasible":
        result.bound = seed_bound
    elif result.bound is not None and seed_bound is not None:
        result.bound = min(result.bound, seed_bound)
    if result.best and result.bound is not None and not problem.multi:
        if result.best[0].values[0] <= result.bound:
            result.stop = result.status = "optimal"
    elif result.stop == "infeasible" and result.best:
        result.stop = "budget"                   # a seed fits; over the union nothing is proven
        result.status = "feasible"
    return result


def _templates(layer, accelerator, settings, constraints) -> SearchResult | None:
    try:
        space = template_union(layer, accelerator.num_pes)
    except SpecError:
        return None                            # no shipped template applies to this layer
    problem = Problem(space, accelerator, settings.objectives, constraints)
    return ExhaustiveSearcher(jobs=settings.jobs).search(problem)


def _space(layer: Layer, num_pes: int, settings: MapSettings):
    if settings.space == "free":
        return FreeSpace(layer, num_pes, levels=settings.levels, spatial=settings.spatial,
                         tiles=settings.tiles)
    return mapping_space(layer, num_pes, settings.space, levels=settings.levels, tiles=settings.tiles)


def searcher_name(space, settings: MapSettings) -> str:
    if settings.searcher != "auto":
        return settings.searcher
    if isinstance(space, FreeSpace) and space.tiles == "divisors":
        return "cpsat"
    size = space_size(space)
    return "exhaustive" if size is not None and size <= AUTO_EXHAUSTIVE_LIMIT else "optuna"


def searcher_for(space, settings: MapSettings) -> Searcher:
    name = searcher_name(space, settings)
    if name == "exhaustive" and settings.evaluations is None and settings.time_limit is None:
        size = space_size(space)
        if size is None or size > limits.MAX_UNTIMED_POINTS:
            shown = f"over {limits.MAX_UNTIMED_POINTS:,}" if size is None else f"{size:,}"
            raise SpecError(f"layer {space.layer.name}: the space has {shown} points: an exhaustive search "
                            f"of all of them would run for hours (limit {limits.MAX_UNTIMED_POINTS:,}); give "
                            "--evaluations, or narrow the space", key="--searcher")
    if name == "exhaustive":
        return ExhaustiveSearcher(evaluations=settings.evaluations, time_limit=settings.time_limit,
                                  jobs=settings.jobs)
    if name == "optuna":
        from .optuna_search import OptunaSearcher

        sampler = settings.sampler or ("nsga2" if len(settings.objectives) > 1 else "tpe")
        return OptunaSearcher(sampler=sampler, trials=settings.trials, seed=settings.seed,
                              time_limit=settings.time_limit)
    from .cpsat import DEFAULT_EVALUATIONS, DEFAULT_SOLVER_TIME, CpSatSearcher

    return CpSatSearcher(evaluations=settings.evaluations or DEFAULT_EVALUATIONS,
                         solver_time=settings.solver_time or DEFAULT_SOLVER_TIME,
                         time_limit=settings.time_limit, params=settings.cpsat_params, seed=settings.seed,
                         jobs=settings.jobs)


__all__ = ["AUTO_EXHAUSTIVE_LIMIT", "Found", "MapSettings", "map_layer", "searcher_for", "searcher_name"]
