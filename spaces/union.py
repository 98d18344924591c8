"""Several mapping spaces of one layer searched as one, and the named spaces commands offer.

``UnionSpace`` lets a searcher pick the best of, say, every shipped dataflow template with its tile
sizes tuned. :func:`mapping_space` turns a space name into a space for one layer:

- ``free``       the free-form space (``levels`` cluster levels, dividing tiles);
- ``coarse``     a small free space (:meth:`FreeSpace.coarse`), quick to search exhaustively or with CP-SAT;
- ``templates``  the union of the shipped templates with holes that apply to the layer;
- a shipped template name (``rs``) or a template file path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from costmodel import Dataflow, Layer, SpecError

from .mapping import FreeSpace, MappingSpace, Point
from .template import TemplateSpace, load_template, shipped_templates

SPACE_KINDS = ("free", "coarse", "templates")


class UnionSpace(MappingSpace):
    """The points of several spaces of the same layer; structures are numbered space after space, so
    every space but the last must have a fixed list of structures (templates have one; a free space,
    which creates structures on first use, may come last)."""

    def __init__(self, spaces: Sequence[MappingSpace], names: Sequence[str] | None = None) -> None:
        if not spaces:
            raise SpecError("a union needs at least one space", key="spaces")
        self.spaces = list(spaces)
        self.names = list(names or (f"space{i}" for i in range(len(spaces))))
        self.layer = spaces[0].layer
        self._offsets = np.cumsum([0] + [len(s.structures) for s in spaces[:-1]]).tolist()

    @property
    def structures(self) -> list[Dataflow]:
        return [df for s in self.spaces for df in s.structures]

    def _locate(self, structure: int) -> tuple[int, int]:
        for k in range(len(self.spaces) - 1, -1, -1):
            if structure >= self._offsets[k]:
                return k, structure - self._offsets[k]
        raise IndexError(structure)

    def count(self) -> int:
        return sum(s.count() for s in self.spaces)

    def chunks(self, size: int = 65536) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        for k, s in enumerate(self.spaces):
            for structure, holes in s.chunks(size):
                yield self._offsets[k] + structure, holes

    def sample(self, rng: np.random.Generator, n: int) -> list[Point]:
        weights = np.array([s.count() for s in self.spaces], dtype=float)
        picks = rng.choice(len(self.spaces), size=n, p=weights / weights.sum())
        out = []
        for k, s in enumerate(self.spaces):
            m = int((picks == k).sum())
            out += [Point(self._offsets[k] + p.structure, p.values) for p in (s.sample(rng, m) if m else [])]
        return out

    def parameters(self) -> dict[str, int]:
        out = {"space": len(self.spaces)}
        for k, s in enumerate(self.spaces):
            out.update({f"{self.names[k]}.{name}": n for name, n in s.parameters().items()})
        return out

    def decode(self, params: dict[str, int]) -> Point:
        k = int(params["space"])
        prefix = f"{self.names[k]}."
        point = self.spaces[k].decode({name[len(prefix):]: v for name, v in params.items()
                                       if name.startswith(prefix)})
        return Point(self._offsets[k] + point.structure, point.values)

    def dataflow(self, point: Point) -> Dataflow:
        k, structure = self._locate(point.structure)
        return self.spaces[k].dataflow(Point(structure, point.values))

    def describe(self) -> str:
        return f"union of {', '.join(self.names)}: {self.count():,} points"


def template_union(layer: Layer, num_pes: int) -> UnionSpace:
    """Every shipped template with holes that applies to ``layer`` (tile sizes and cluster sizes
    free), as one space."""
    spaces, names = [], []
    for name in shipped_templates():
        template = load_template(name)
        if not template.holes:
            continue
        try:
            space = TemplateSpace(layer, template, num_pes)
        except SpecError:
            continue                      # e.g. a template over K and C on a GEMM
        if space.count():
            spaces.append(space)
            names.append(name)
    if not spaces:
        raise SpecError(f"no shipped template applies to layer {layer.name} ({layer.layer_type.value})",
                        key="space")
    return UnionSpace(spaces, names)


def mapping_space(layer: Layer, num_pes: int, kind: str = "free", *, levels: int = 2,
                  tiles: str = "divisors") -> MappingSpace:
    """The space named ``kind`` (module docstring) for ``layer`` on ``num_pes`` PEs."""
    if kind == "free":
        return FreeSpace(layer, num_pes, levels=levels, tiles=tiles)
    if kind == "coarse":
        return FreeSpace.coarse(layer, num_pes)
    if kind == "templates":
        return template_union(layer, num_pes)
    return TemplateSpace(layer, load_template(kind), num_pes, tiles=tiles)


__all__ = ["SPACE_KINDS", "UnionSpace", "mapping_space", "template_union"]
