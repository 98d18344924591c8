"""Layers: their type, dimensions (by MAESTRO name), strides and tensors.

Dimension names follow MAESTRO: CONV-family layers use ``N`` (batch, optional), ``G`` (groups, NGCONV),
``K`` (output channels), ``C`` (input channels), ``R``/``S`` (filter rows/columns) and either ``Y``/``X``
(input rows/columns, unpadded) or ``Y'``/``X'`` (output rows/columns). GEMM uses ``M``, ``N``, ``K``
(A is M x K, B is K x N).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from . import limits
from .errors import MappingError


class LayerType(StrEnum):
    CONV = "CONV"
    DSCONV = "DSCONV"
    NGCONV = "NGCONV"
    TRCONV = "TRCONV"
    GEMM = "GEMM"

    @property
    def is_conv_family(self) -> bool:
        return self is not LayerType.GEMM


# Sliding-window pairs of the CONV family: (reference dimension, sliding dimension).
OVERLAP_PAIRS: tuple[tuple[str, str], ...] = (("X", "S"), ("Y", "R"))
OUTPUT_NAME = {"Y": "Y'", "X": "X'"}
INPUT_NAME = {"Y'": "Y", "X'": "X"}


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorDims:
    """The dimensions each tensor is coupled to, in MAESTRO's order."""

    input: tuple[str, ...]
    weight: tuple[str, ...]
    output: tuple[str, ...]

    @property
    def input_side_dims(self) -> tuple[str, ...]:
        """Dimensions of the input and weight tensors, sorted and unique (MAESTRO's unroll order)."""
        return tuple(sorted(set(self.input) | set(self.weight)))

    def uncoupled_dims(self, dims) -> frozenset[str]:
        """Dimensions of ``dims`` no tensor is coupled to (K of DSCONV; output sizes Y'/X' excluded)."""
        coupled = set(self.input) | set(self.weight) | set(self.output) | set(OUTPUT_NAME.values())
        return frozenset(d for d in dims if d not in coupled)


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """One layer: name, type, dimension sizes as given, strides, and how often it repeats in a network."""

    name: str
    layer_type: LayerType
    dims: tuple[tuple[str, int], ...]
    strides: tuple[tuple[str, int], ...] = ()
    count: int = 1
    # Layers key the program and analysis caches: hash once, not per lookup.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.name, self.layer_type, self.dims, self.strides,
                                                self.count)))
        names = [n for n, _ in self.dims]
        if len(set(names)) != len(names):
            raise MappingError("a dimension is given twice", layer=self.name)
        for what, v in (*((f"dimension {n}", v) for n, v in self.dims),
                        *((f"stride {n}", v) for n, v in self.strides), ("repeat count", self.count)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise MappingError(f"{what} must be a positive integer, got {v!r}", layer=self.name)
        if self.layer_type.is_conv_family:
            dims = dict(self.dims)
            for plain, primed, filt in (("Y", "Y'", "R"), ("X", "X'", "S")):
                if plain in dims and primed in dims:
                    raise MappingError(f"give either {plain} or {primed}, not both", layer=self.name)
                # No output at all: MAESTRO would report negative sizes and MAC counts.
                if plain in dims and dims[plain] < dims.get(filt, 1):
                    raise MappingError(f"{plain} = {dims[plain]} is smaller than the filter {filt} = "
                                       f"{dims[filt]}: the layer has no output", layer=self.name)
        problem = limits.layer_problem(dict(self.dims), dict(self.strides), self.count)
        if problem:
            raise MappingError(problem, layer=self.name)

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def conv(cls, name: str, *, K: int, C: int, R: int, S: int, Y: int, X: int, stride: int = 1,
             N: int | None = None, layer_type: LayerType = LayerType.CONV, G: int | None = None,
             count: int = 1) -> Layer:
        """Convenience constructor for CONV-family layers with input sizes Y, X (unpadded)."""
        dims: list[tuple[str, int]] = []
        if N is not None:
            dims.append(("N", N))
        if G is not None:
            dims.append(("G", G))
        dims += [("K", K), ("C", C), ("R", R), ("S", S), ("Y", Y), ("X", X)]
        strides = (("X", stride), ("Y", stride))
        return cls(name=name, layer_type=layer_type, dims=tuple(dims), strides=strides, count=count)

    @classmethod
    def gemm(cls, name: str, *, M: int, N: int, K: int, count: int = 1) -> Layer:
        return cls(name=name, layer_type=LayerType.GEMM, dims=(("M", M), ("N", N), ("K", K)),
                   count=count)

    # ----------------------------------------------------------------------------------- access
    @property
    def dim_map(self) -> dict[str, int]:
        return dict(self.dims)

    def size(self, name: str) -> int:
        for n, v in self.dims:
            if n == name:
                return v
        raise KeyError(name)

    def stride(self, name: str) -> int:
        for n, v in self.strides:
            if n == name:
                return v
        return 1

    def row_strides(self) -> dict[str, int]:
        """The stride MAESTRO applies to ``Y`` and ``X`` maps: it keys strides by the dimension as
        given, so with output sizes Y'/X' it reads the stride of Y'/X' (normally absent, i.e. 1)."""
        given = self.dim_map
        return {ref: self.stride(ref if ref in given else OUTPUT_NAME[ref]) for ref in ("Y", "X")}

    @property
    def work(self) -> int:
        """The product of the dimensions as given (what :mod:`costmodel.limits` bounds)."""
        return math.prod(v for _, v in self.dims)

    @property
    def has_batch(self) -> bool:
        return self.layer_type.is_conv_family and any(n == "N" for n, _ in self.dims)

    @property
    def shape_key(self) -> tuple:
        """What identifies the layer's shape (not its name or count): used to search each shape once."""
        return (self.layer_type.value, self.dims, tuple(sorted(self.strides)))

    # ---------------------------------------------------------------------------------- tensors
    @property
    def tensors(self) -> TensorDims:
        """Tensor couplings used by the analysis: MAESTRO's, computed per layer (Q7)"""
        return self.tensor_dims(ngconv_output_with_c=True)

    def tensor_dims(self, *, ngconv_output_with_c: bool) -> TensorDims:
        """Tensor couplings of this layer (per layer, so batch and type are always its own, Q7).

        MAESTRO couples NGCONV outputs to C as well; ``ngconv_output_with_c=False`` gives the true
        grouped-convolution output (G, K, Y, X).
        """
        lt = self.layer_type
        batch = ("N",) if self.has_batch else ()
        if lt is LayerType.GEMM:
            return TensorDims(input=("M", "K"), weight=("K", "N"), output=("M", "N"))
        if lt is LayerType.DSCONV:
            return TensorDims(input=(*batch, "C", "Y", "X"), weight=("C", "R", "S"),
                              output=(*batch, "C", "Y", "X"))
        if lt is LayerType.NGCONV:
            out = ("G", "K", "C", "Y", "X") if ngconv_output_with_c else ("G", "K", "Y", "X")
            return TensorDims(input=(*batch, "G", "C", "Y", "X"), weight=("G", "K", "C", "R", "S"),
                              output=(*batch, *out))
        return TensorDims(input=(*batch, "C", "Y", "X"), weight=("K", "C", "R", "S"),
                          output=(*batch, "K", "Y", "X"))

    # ----------------------------------------------------------------------- derived dimensions
    def full_dims(self) -> dict[str, int]:
        """MAESTRO's top-level dimension table: the given dims plus Y'/X' (or Y/X) derived without stride."""
        return dict(_full_dims(self))

    def _full_dims_uncached(self) -> dict[str, int]:
        dims = self.dim_map
        if not self.layer_type.is_conv_family:
            return dims
        for plain, primed, filt in (("Y", "Y'", "R"), ("X", "X'", "S")):
            r = dims.get(filt, 1)
            if plain in dims and primed not in dims:
                dims[primed] = dims[plain] - r + 1
            elif primed in dims and plain not in dims:
                dims[plain] = dims[primed] + r - 1
        return dims

    def output_size(self, plain: str) -> int:
        """True output rows (``Y``) or columns (``X``) with stride, no padding."""
        dims = self.dim_map
        primed = OUTPUT_NAME[plain]
        if primed in dims:
            return dims[primed]
        filt = "R" if plain == "Y" else "S"
        return (dims[plain] - dims.get(filt, 1)) // self.stride(plain) + 1

    @property
    def true_macs(self) -> int:
        """The layer's real multiply-accumulate count (strides applied, no padding)."""
        d = self.dim_map
        if self.layer_type is LayerType.GEMM:
            return d["M"] * d["N"] * d["K"]
        n = d.get("N", 1)
        spatial = self.output_size("Y") * self.output_size("X")
        rs = d.get("R", 1) * d.get("S", 1)
        if self.layer_type is LayerType.DSCONV:
            return n * d.get("C", 1) * rs * spatial
        g = d.get("G", 1) if self.layer_type is LayerType.NGCONV else 1
        return n * g * d.get("K", 1) * d.get("C", 1) * rs * spatial

    @property
    def touched_inputs(self) -> int:
        """Input elements some MAC reads: with stride s and filter R, windows of R rows every s rows
        (strides as the analysis reads them: under Y'/X' when the layer gives output sizes)."""
        d = self.dim_map
        if self.layer_type is LayerType.GEMM:
            return d["M"] * d["K"]
        full = self.full_dims()

        def extent(plain: str, filt: str) -> int:
            s = self.stride(plain if plain in d else OUTPUT_NAME[plain])
            out, r = self.output_size(plain), d.get(filt, 1)
            return min((out - 1) * s + r if s <= r else out * r, full[plain])

        channels = d.get("C", 1) * (d.get("G", 1) if self.layer_type is LayerType.NGCONV else 1)
        return d.get("N", 1) * channels * extent("Y", "R") * extent("X", "S")

    def tensor_sizes(self) -> dict[str, int]:
        """True tensor sizes in elements (input incl. halo as given, weights, outputs with stride)."""
        return dict(_tensor_sizes(self))

    def _tensor_sizes_uncached(self) -> dict[str, int]:
        d = self.full_dims()
        t = self.tensor_dims(ngconv_output_with_c=False)
        out = 1
        for name in t.output:
            out *= self.output_size(name) if name in ("Y", "X") else d[name]
        return {"input": math.prod(d[n] for n in t.input), "weight": math.prod(d[n] for n in t.weight),
                "output": out}


@lru_cache(maxsize=4096)
def _full_dims(layer: Layer) -> tuple[tuple[str, int], ...]:
    return tuple(layer._full_dims_uncached().items())


@lru_cache(maxsize=4096)
def _tensor_sizes(layer: Layer) -> tuple[tuple[str, int], ...]:
    return tuple(layer._tensor_sizes_uncached().items())
