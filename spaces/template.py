"""Template spaces: one dataflow written by hand, with named holes (``?name``) for its sizes.

A template fixes the *structure* (directives, loop order, spatial dimensions, levels) and leaves some
sizes, offsets and cluster sizes open. The space is the cartesian product of a finite list of allowed
values (a *domain*) per hole, given by the user or inferred from where the hole is used:

* in a map directive on dimension D: the divisors of the layer's size of D (``tiles="divisors"``) or
  every size 1..size (``tiles="any"``); on ``Y'``/``X'`` the size is the layer's output rows/columns
  (stride applied), on ``Y``/``X`` its input rows/columns. A ``TemporalMap`` on ``R`` or ``S`` covers
  the whole filter (MAESTRO rejects anything else, and the cost model counts a partial filter tile
  only approximately where the rows are tiled too), so such a hole takes only that size;
* as a ``Cluster`` size: the divisors of the number of PEs;
* in several places: the values allowed in every one of them.

``Sz(D)`` stays symbolic: the cost model resolves it for the layer it evaluates. Templates shipped
with the package live in ``costmodel/data/dataflows`` (:func:`shipped_templates`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from costmodel import Dataflow, DirectiveKind, Hole, Layer, read_dataflow
from costmodel.errors import SpecError
from costmodel.networks import DATA

from .mapping import MappingSpace, Point, divisors

TEMPLATE_DIR = DATA / "dataflows"
_OUTPUT_DIMS = {"Y'": "Y", "X'": "X"}


def shipped_templates() -> dict[str, Path]:
    """The dataflow templates shipped with the package: name (file stem) -> path."""
    return {p.stem: p for p in sorted(TEMPLATE_DIR.glob("*.m"))}


def load_template(name_or_path: str | Path) -> Dataflow:
    """A shipped template by name (``"rs"``) or any template file by path (``"my/rs.m"``)."""
    text = str(name_or_path)
    shipped = shipped_templates()
    if not isinstance(name_or_path, Path) and text in shipped:
        return read_dataflow(shipped[text])
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".m") or Path(text).exists():
        return read_dataflow(Path(text))
    raise SpecError(f"no shipped template '{text}' (shipped: {', '.join(shipped)}; or give a file path)",
                    key="template")


@dataclass(frozen=True, slots=True)
class HoleUse:
    """One place a hole appears: ``what`` is ``"size"``, ``"offset"`` or ``"cluster"``."""

    hole: str
    what: str
    dim: str | None
    level: int
    directive: str
    kind: DirectiveKind = DirectiveKind.TEMPORAL

    def __str__(self) -> str:
        if self.what == "cluster":
            return f"cluster size of level {self.level + 1}"
        return f"{self.dim} {self.what} at level {self.level}"


def hole_uses(dataflow: Dataflow) -> dict[str, list[HoleUse]]:
    """Every use of every hole, holes in order of first appearance."""
    out: dict[str, list[HoleUse]] = {h: [] for h in dataflow.holes}
    level = 0
    for d in dataflow.directives:
        if d.is_cluster:
            if isinstance(d.size, Hole):
                out[d.size.name].append(HoleUse(d.size.name, "cluster", None, level, str(d), d.kind))
            level += 1
            continue
        for what, sym in (("size", d.size), ("offset", d.offset)):
            if isinstance(sym, Hole):
                out[sym.name].append(HoleUse(sym.name, what, d.dim, level, str(d), d.kind))
    return out


def _extent(layer: Layer, dim: str) -> int | None:
    """The size a map on ``dim`` tiles: output rows/columns for Y'/X', else the layer's size."""
    if layer.layer_type.is_conv_family and dim in _OUTPUT_DIMS:
        return layer.output_size(_OUTPUT_DIMS[dim])
    return layer.full_dims().get(dim)


def infer_domain(layer: Layer, uses: Sequence[HoleUse], num_pes: int, tiles: str) -> list[int]:
    """Values allowed by every use of one hole (sorted); raises :class:`SpecError` if none is."""
    allowed: set[int] | None = None
    for use in uses:
        if use.what == "cluster":
            values = set(divisors(num_pes))
        else:
            assert use.dim is not None
            n = _extent(layer, use.dim)
            if n is None:
                raise SpecError(f"?{use.hole} is used on dimension {use.dim} ({use.directive}), which layer "
                                f"{layer.name} does not have; give its values in domains", key=use.hole)
            if use.dim in ("R", "S") and use.kind is DirectiveKind.TEMPORAL:
                values = {n}
            else:
                values = set(divisors(n)) if tiles == "divisors" else set(range(1, n + 1))
        allowed = values if allowed is None else allowed & values
    if not allowed:
        where = "; ".join(f"{u} ({u.directive})" for u in uses)
        raise SpecError(f"no value of ?{uses[0].hole} fits all its uses ({where}); give its values in "
                        "domains", key=uses[0].hole)
    return sorted(allowed)


class TemplateSpace(MappingSpace):
    """The points of one dataflow template on one layer: one structure, one value per hole.

    ``domains`` gives the allowed values of some holes (hole name without ``?`` -> values); the others
    are inferred (module docstring). ``tiles`` is ``"divisors"`` or ``"any"``.
    """

    def __init__(self, layer: Layer, dataflow: Dataflow, num_pes: int, *,
                 domains: Mapping[str, Sequence[int]] | None = None, tiles: str = "divisors") -> None:
        if tiles not in ("divisors", "any"):
            raise SpecError(f"must be 'divisors' or 'any', got {tiles!r}", key="tiles")
        if not isinstance(num_pes, int | np.integer) or num_pes < 1:
            raise SpecError(f"must be a positive integer, got {num_pes!r}", key="num_pes")
        self.layer = layer
        self.template = dataflow
        self.num_pes = int(num_pes)
        self.tiles = tiles
        self.uses = hole_uses(dataflow)
        self.holes: tuple[str, ...] = dataflow.holes
        domains = dict(domains or {})
        for name in domains:
            if name not in self.uses:
                known = ", ".join(f"?{h}" for h in self.holes) or "none"
                raise SpecError(f"the dataflow has no hole ?{name} (its holes: {known})", key=name)
        self.explicit = frozenset(domains)
        self.domains: dict[str, tuple[int, ...]] = {}
        for h in self.holes:
            if h in domains:
                self.domains[h] = tuple(_explicit_domain(h, domains[h]))
            else:
                self.domains[h] = tuple(infer_domain(layer, self.uses[h], self.num_pes, tiles))
        self._arrays = {h: np.array(v, dtype=np.int64) for h, v in self.domains.items()}
        self._structures = [dataflow]

    @classmethod
    def from_template(cls, layer: Layer, template: str | Path, num_pes: int, **options) -> TemplateSpace:
        """A space over a shipped template (by name) or a template file (by path)."""
        return cls(layer, load_template(template), num_pes, **options)

    # ------------------------------------------------------------------------------ points
    @property
    def structures(self) -> list[Dataflow]:
        return self._structures

    def count(self) -> int:
        return math.prod(len(v) for v in self.domains.values())

    def chunks(self, size: int = 65536) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Every binding once, in mixed-radix order (the last hole varies fastest)."""
        if size < 1:
            raise SpecError(f"must be a positive integer, got {size}", key="size")
        total = self.count()
        radices = [len(self.domains[h]) for h in self.holes]
        for start in range(0, total, size):
            flat = np.arange(start, min(start + size, total), dtype=np.int64)
            values: dict[str, np.ndarray] = {}
            for h, r in zip(reversed(self.holes), reversed(radices), strict=True):
                flat, digit = np.divmod(flat, r)
                values[h] = self._arrays[h][digit]
            yield 0, {h: values[h] for h in self.holes}

    def sample(self, rng: np.random.Generator, n: int) -> list[Point]:
        """``n`` points drawn uniformly (with replacement)."""
        picks = {h: rng.integers(0, len(self.domains[h]), size=n) for h in self.holes}
        return [Point(0, tuple((h, int(self._arrays[h][picks[h][i]])) for h in self.holes))
                for i in range(n)]

    # ----------------------------------------------------------------------- sampler encoding
    def parameters(self) -> dict[str, int]:
        """One parameter per hole (named like the hole): the index of its value in the domain."""
        return {h: len(self.domains[h]) for h in self.holes}

    def decode(self, params: Mapping[str, int]) -> Point:
        unknown = set(params) - set(self.holes)
        if unknown:
            raise SpecError(f"not a parameter of this space (parameters: {', '.join(self.holes)})",
                            key=sorted(unknown)[0])
        values = []
        for h in self.holes:
            if h not in params:
                raise SpecError("missing parameter", key=h)
            i = int(params[h])
            if not 0 <= i < len(self.domains[h]):
                raise SpecError(f"must be in 0..{len(self.domains[h]) - 1}, got {i}", key=h)
            values.append((h, self.domains[h][i]))
        return Point(0, tuple(values))

    def point_of(self, values: Mapping[str, int]) -> Point:
        """The point binding each hole to the given value (every value must be in its domain)."""
        return self.decode(self.encode(values))

    def encode(self, values: Mapping[str, int] | Point) -> dict[str, int]:
        """The parameters of a binding (hole -> value) or a point: inverse of :meth:`decode`."""
        if isinstance(values, Point):
            values = values.value_map()
        unknown = set(values) - set(self.holes)
        if unknown:
            raise SpecError(f"not a hole of this dataflow (holes: {', '.join(self.holes)})",
                            key=sorted(unknown)[0])
        out = {}
        for h in self.holes:
            if h not in values:
                raise SpecError("no value given", key=h)
            try:
                out[h] = self.domains[h].index(int(values[h]))
            except ValueError:
                raise SpecError(f"{values[h]} is not in its domain ({_show(self.domains[h])})",
                                key=h) from None
        return out

    def describe(self) -> str:
        parts = []
        for h in self.holes:
            origin = "given" if h in self.explicit else ", ".join(str(u) for u in self.uses[h])
            parts.append(f"?{h} in {_show(self.domains[h])} ({origin})")
        holes = "; ".join(parts) if parts else "no holes"
        return f"template space on layer {self.layer.name}: {holes}; {self.count():,} points"


def _explicit_domain(name: str, values: Sequence[int]) -> list[int]:
    try:
        items = list(values)
    except TypeError:
        raise SpecError(f"must be a list of positive integers, got {values!r}", key=name) from None
    if not items:
        raise SpecError("empty domain: give at least one value", key=name)
    out = set()
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise SpecError(f"values must be positive integers, got {v!r}", key=name)
        out.add(int(v))
    return sorted(out)


def _show(values: Sequence[int]) -> str:
    if len(values) <= 8:
        return "{" + ", ".join(map(str, values)) + "}"
    return "{" + ", ".join(map(str, values[:3])) + f", ..., {values[-1]}}} ({len(values)} values)"


__all__ = ["HoleUse", "TemplateSpace", "hole_uses", "infer_domain", "load_template", "shipped_templates"]
