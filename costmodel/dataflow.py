"""Dataflows: MAESTRO's data-centric directives, split into cluster levels.

A directive's size and offset are integers, or symbolic: ``Sz(D)`` (the size of dimension D of the
layer the dataflow is applied to) or a named hole ``?name`` (a value supplied when evaluating, so that
one dataflow *structure* serves a whole batch of tile sizes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from .errors import MappingError


class DirectiveKind(StrEnum):
    SPATIAL = "SpatialMap"
    TEMPORAL = "TemporalMap"
    CLUSTER = "Cluster"


@dataclass(frozen=True, slots=True)
class DimSize:
    """``Sz(D)``: the size of dimension ``dim`` of the layer."""

    dim: str

    def __str__(self) -> str:
        return f"Sz({self.dim})"


@dataclass(frozen=True, slots=True)
class Hole:
    """``?name``: a value supplied at evaluation time (a tile size a searcher chooses)."""

    name: str

    def __str__(self) -> str:
        return f"?{self.name}"


Size = int | DimSize | Hole


@dataclass(frozen=True, slots=True, kw_only=True)
class Directive:
    """One directive. ``dim`` and ``offset`` are ``None`` for ``Cluster``; ``line`` is the source line."""

    kind: DirectiveKind
    size: Size
    offset: Size | None = None
    dim: str | None = None
    cluster_type: str = "P"
    line: int | None = None

    @classmethod
    def spatial(cls, size: Size, offset: Size, dim: str) -> Directive:
        return cls(kind=DirectiveKind.SPATIAL, size=size, offset=offset, dim=dim)

    @classmethod
    def temporal(cls, size: Size, offset: Size, dim: str) -> Directive:
        return cls(kind=DirectiveKind.TEMPORAL, size=size, offset=offset, dim=dim)

    @classmethod
    def cluster(cls, size: Size, cluster_type: str = "P") -> Directive:
        return cls(kind=DirectiveKind.CLUSTER, size=size, cluster_type=cluster_type)

    @property
    def is_cluster(self) -> bool:
        return self.kind is DirectiveKind.CLUSTER

    def __str__(self) -> str:
        if self.is_cluster:
            return f"Cluster({self.size},{self.cluster_type})"
        return f"{self.kind.value}({self.size},{self.offset}) {self.dim}"

    def symbols(self) -> Iterable[Size]:
        yield self.size
        if self.offset is not None:
            yield self.offset

    def key(self) -> tuple:
        """Identity without the source line (two directives that read the same are the same)."""
        return (self.kind, self.size, self.offset, self.dim, self.cluster_type)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataflow:
    """The ordered directives of one layer's mapping, outermost first."""

    directives: tuple[Directive, ...]
    # Identity without source lines, and its hash: computed once (dataflows key every cache).
    _key: tuple = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)
    _holes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.directives and self.directives[-1].is_cluster:
            raise MappingError("a dataflow cannot end with a Cluster directive")
        key = tuple(d.key() for d in self.directives)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_hash", hash(key))
        seen: dict[str, None] = {}
        for d in self.directives:
            for sym in d.symbols():
                if isinstance(sym, Hole):
                    seen.setdefault(sym.name)
        object.__setattr__(self, "_holes", tuple(seen))

    @classmethod
    def of(cls, *directives: Directive) -> Dataflow:
        return cls(directives=tuple(directives))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dataflow):
            return NotImplemented
        return self.key() == other.key()

    def __hash__(self) -> int:
        return self._hash

    def key(self) -> tuple:
        return self._key

    # --------------------------------------------------------------------------------- structure
    @property
    def levels(self) -> tuple[tuple[Directive, ...], ...]:
        """Map directives per cluster level (outermost first); ``Cluster`` directives end a level."""
        out: list[tuple[Directive, ...]] = []
        current: list[Directive] = []
        for d in self.directives:
            if d.is_cluster:
                out.append(tuple(current))
                current = []
            else:
                current.append(d)
        out.append(tuple(current))
        return tuple(out)

    @property
    def clusters(self) -> tuple[Directive, ...]:
        return tuple(d for d in self.directives if d.is_cluster)

    @property
    def num_levels(self) -> int:
        return len(self.clusters) + 1

    @property
    def holes(self) -> tuple[str, ...]:
        """Names of the holes, in order of first appearance."""
        return self._holes

    def bind(self, values: Mapping[str, int]) -> Dataflow:
        """Replace holes by the given integers (holes not given stay holes)."""

        def sub(s: Size | None) -> Size | None:
            if isinstance(s, Hole) and s.name in values:
                return int(values[s.name])
            return s

        return Dataflow(directives=tuple(
            replace(d, size=sub(d.size), offset=sub(d.offset)) for d in self.directives))

    def resolve_dim_sizes(self, dims: Mapping[str, int]) -> Dataflow:
        """Replace ``Sz(D)`` by the layer's size of D (MAESTRO resolves these when parsing)."""

        def sub(s: Size | None) -> Size | None:
            if isinstance(s, DimSize):
                if s.dim not in dims:
                    raise MappingError(f"Sz({s.dim}) refers to a dimension the layer does not have")
                return dims[s.dim]
            return s

        return Dataflow(directives=tuple(
            replace(d, size=sub(d.size), offset=sub(d.offset)) for d in self.directives))

    def __str__(self) -> str:
        return " ".join(f"{d};" for d in self.directives)
