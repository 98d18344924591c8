"""Mapping spaces: which dataflows may be tried for one layer.

A space is a set of *points*. A point is a dataflow *structure* (the directives, their order, which
dimension each level maps spatially, how many levels) plus integer values for the structure's holes
(tile sizes and cluster sizes). Points that share a structure are evaluated together, as one batch of
the cost model.

* :class:`FreeSpace`: 1 to 3 cluster levels; per level a loop order, a spatially mapped dimension and a
  tile size per dimension; cluster sizes. The tiles of a dimension form a chain: each level's tile
  divides the tile of the level above, which divides the dimension (``tiles="divisors"``: no edge
  tiles), or is any size up to it (``tiles="any"``: edge tiles). Rows and columns are tiled as
  *output* rows and columns so that sliding windows stay valid: an output tile of t rows, stride s,
  filter height R is the input map ``TemporalMap(s*(t-1)+R, s*t) Y``. R and S are always mapped
  whole (``TemporalMap(Sz(R),Sz(R)) R``: MAESTRO rejects anything else), innermost at every level.
* :class:`TemplateSpace` (``spaces.template``): a user's dataflow whose sizes are named holes.

Loop orders are canonical: a temporal map whose tile covers its whole extent at that level has one
iteration, and its position in the loop order changes no figure of the cost model, so such maps are
placed innermost (before R and S) and only the order of the maps that iterate (and the spatial map)
varies. A *configuration* is a point without its loop orders: spatial dimensions, tile chains and
cluster sizes; each configuration expands into its canonical loop orders.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from costmodel import Dataflow, DimSize, Directive, Hole, Layer, LayerType, limits
from costmodel.errors import SpecError

ROW, COL = "Y'", "X'"


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def chain_count(options: Sequence[int], levels: int, any_size: bool) -> int:
    """How many tile chains (t1 >= t2 >= ... over ``levels`` levels, each dividing the one above
    unless ``any_size``) the sorted tile ``options`` of one dimension give, without listing them."""
    opts = [int(t) for t in options]
    if any_size:
        return math.comb(len(opts) + levels - 1, levels)
    ways = dict.fromkeys(opts, 1)                    # chains ending in each tile
    for _ in range(levels - 1):
        ways = {t: sum(w for u, w in ways.items() if u >= t and u % t == 0) for t in opts}
    return sum(ways.values())


def loop_dims(layer: Layer) -> dict[str, int]:
    """The dimensions a mapping tiles, with their extents (output rows/columns for convolutions)."""
    d = layer.dim_map
    if layer.layer_type is LayerType.GEMM:
        return {"M": d["M"], "N": d["N"], "K": d["K"]}
    out = {n: d[n] for n in ("N", "G", "K", "C") if n in d}
    if layer.layer_type is LayerType.DSCONV:
        out.pop("K", None)
    out[ROW] = layer.output_size("Y")
    out[COL] = layer.output_size("X")
    return out


def hole_name(level: int, dim: str) -> str:
    return f"t{level}_{dim.replace(chr(39), 'p')}"


@dataclass(frozen=True, slots=True)
class LevelChoice:
    """One level of a structure: loop order of the maps (outermost first) and the spatial dimension."""

    order: tuple[str, ...]
    spatial: str


@dataclass(frozen=True, slots=True)
class Point:
    """A point: a structure (index into the space's structures) and the values of its holes."""

    structure: int
    values: tuple[tuple[str, int], ...]

    def value_map(self) -> dict[str, int]:
        return dict(self.values)


class MappingSpace:
    """What every mapping space offers the searchers."""

    layer: Layer

    @property
    def structures(self) -> Sequence[Dataflow]:
        """Dataflows with holes; a point's ``structure`` indexes this list."""
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def chunks(self, size: int = 65536) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Every point once, as (structure index, hole name -> values) batches of at most ``size``."""
        raise NotImplementedError

    def mixed_chunks(self, size: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every point once, in the order of :meth:`chunks`, as batches of about ``size`` points of any
        structures: (structure index per point, hole values per point in the order of that
        structure's ``Dataflow.holes``, zero-padded to the widest). One cost-model call scores one."""
        pending: list[tuple[int, np.ndarray]] = []
        count = 0
        for structure, holes in self.chunks(size):
            names = self.structures[structure].holes
            n = len(holes[names[0]]) if names else 1
            pending.append((structure, np.stack([holes[h] for h in names], axis=1) if names
                            else np.zeros((n, 0), dtype=np.int64)))
            count += n
            if count >= size:
                yield _mixed(pending)
                pending, count = [], 0
        if pending:
            yield _mixed(pending)

    def sample(self, rng: np.random.Generator, n: int) -> list[Point]:
        raise NotImplementedError

    def parameters(self) -> dict[str, int]:
        """A fixed encoding for samplers: parameter name -> number of choices (values 0 .. n-1)."""
        raise NotImplementedError

    def decode(self, params: dict[str, int]) -> Point:
        """The point a parameter assignment stands for (every assignment decodes to a valid point)."""
        raise NotImplementedError

    def dataflow(self, point: Point) -> Dataflow:
        """The point's dataflow with every hole filled."""
        return self.structures[point.structure].bind(point.value_map())


@dataclass
class ConfigBatch:
    """Configurations as arrays: spatial choice index, per-dimension chain index, cluster chain index."""

    spatial: np.ndarray
    chain: dict[str, np.ndarray]
    cluster: np.ndarray

    def __len__(self) -> int:
        return len(self.spatial)

    def take(self, index: np.ndarray) -> ConfigBatch:
        return ConfigBatch(self.spatial[index], {d: c[index] for d, c in self.chain.items()},
                           self.cluster[index])


def _mixed(parts: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(v.shape[1] for _, v in parts)
    values = np.zeros((sum(len(v) for _, v in parts), width), dtype=np.int64)
    structures = np.empty(len(values), dtype=np.int64)
    start = 0
    for s, v in parts:
        values[start:start + len(v), :v.shape[1]] = v
        structures[start:start + len(v)] = s
        start += len(v)
    return structures, values


def _join(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {h: np.concatenate([p[h] for p in parts]) for h in parts[0]}


class FreeSpace(MappingSpace):
    """Free-form mapping space of one layer on an accelerator with ``num_pes`` PEs."""

    def __init__(self, layer: Layer, num_pes: int, *, levels: int = 2, spatial: Sequence[str] | None = None,
                 tiles: str = "divisors", cluster_sizes: Sequence[int] | None = None,
                 orders: str | Sequence[Sequence[str]] = "all",
                 tile_options: dict[str, Sequence[int]] | None = None) -> None:
        if not 1 <= levels <= 3:
            raise SpecError(f"must be 1, 2 or 3, got {levels}", key="levels")
        if tiles not in ("divisors", "any"):
            raise SpecError(f"must be 'divisors' or 'any', got {tiles!r}", key="tiles")
        self.layer = layer
        self.num_pes = num_pes
        self.levels = levels
        self.tiles = tiles
        self.dims = loop_dims(layer)
        self.dim_names = tuple(self.dims)
        self.spatial = tuple(spatial or self.dim_names)
        for d in self.spatial:
            if d not in self.dims:
                raise SpecError(f"{d} is not a tiled dimension of layer {layer.name} "
                                f"(it has {', '.join(self.dims)})", key="spatial")
        sizes = [c for c in (cluster_sizes or divisors(num_pes)) if 1 <= c <= num_pes]
        self.cluster_sizes = tuple(sorted(set(int(c) for c in sizes)))
        self.orders = orders if orders == "all" else tuple(tuple(o) for o in orders)
        if self.orders != "all":
            for o in self.orders:
                if sorted(o) != sorted(self.dims):
                    raise SpecError(f"{' '.join(o)} is not an order of {' '.join(self.dims)}",
                                    key="orders")
        self.options = {}
        for d, n in self.dims.items():
            allowed = divisors(n) if tiles == "divisors" else list(range(1, n + 1))
            if tile_options and d in tile_options:
                allowed = sorted((set(allowed) & {int(t) for t in tile_options[d]}) | {n})
            self.options[d] = np.array(allowed, dtype=np.int64)
        for d in self.dims:            # counted before they are built: --tiles any on a big layer
            n_chains = chain_count(self.options[d], levels, tiles == "any")
            if n_chains > limits.MAX_TILE_CHAINS:
                raise SpecError(f"dimension {d} = {self.dims[d]:,} of layer {layer.name} has {n_chains:,} "
                                f"tile chains over {levels} level(s) with {tiles} tiles, above the limit of "
                                f"{limits.MAX_TILE_CHAINS:,} (use --tiles divisors or fewer --levels)",
                                key="tiles")
        self.chains = {d: self._chains(d) for d in self.dims}
        self.cluster_chains = self._cluster_chains()
        self.spatial_choices = list(itertools.product(self.spatial, repeat=levels))
        self._structures: list[Dataflow] = []
        self._structure_index: dict[tuple[LevelChoice, ...], int] = {}
        self._choices: list[tuple[LevelChoice, ...]] = []
        self._param_names: list[dict[str, tuple[str, str]]] | None = None   # decode's look-ups

    @classmethod
    def coarse(cls, layer: Layer, num_pes: int) -> FreeSpace:
        """A small free space for quick searches (co-design's inner loop, the search benchmark): two
        levels; the two dimensions a designer would spread first (K and C for convolutions, M and N
        for GEMMs, C and X' for depthwise layers); tiles 1, about the square root, and the whole
        dimension; cluster sizes 4, 16 and 64 (those that fit)."""
        dims = loop_dims(layer)
        options = {}
        for d, n in dims.items():
            divs = divisors(n)
            mid = min(divs, key=lambda t: abs(math.log(t) - math.log(n) / 2))
            options[d] = sorted({1, mid, n})
        kind = layer.layer_type.value
        if kind == "GEMM":
            spatial = ["M", "N"] if dims.get("M", 1) > 1 else ["N", "K"]
        elif kind == "DSCONV":
            spatial = ["C", "X'"]
        else:
            spatial = ["K", "C"]
        clusters = [c for c in (4, 16, 64) if c <= num_pes] or [1]
        return cls(layer, num_pes, levels=2, spatial=spatial, tile_options=options, cluster_sizes=clusters)

    # ------------------------------------------------------------------------ building blocks
    def _chains(self, dim: str) -> np.ndarray:
        rows = [(int(t),) for t in self.options[dim]]
        for _ in range(self.levels - 1):
            rows = [(*r, int(t)) for r in rows for t in self.options[dim]
                    if t <= r[-1] and (self.tiles == "any" or r[-1] % t == 0)]
        return np.array(rows, dtype=np.int64).reshape(len(rows), self.levels)

    def _cluster_chains(self) -> np.ndarray:
        if self.levels == 1:
            return np.zeros((1, 0), dtype=np.int64)
        rows = [r for r in itertools.product(self.cluster_sizes, repeat=self.levels - 1)
                if math.prod(r) <= self.num_pes]
        if not rows:
            raise SpecError(f"no cluster size combination fits {self.num_pes} PEs", key="cluster_sizes")
        return np.array(rows, dtype=np.int64)

    @property
    def structures(self) -> list[Dataflow]:
        return self._structures

    def structure_of(self, choice: tuple[LevelChoice, ...]) -> int:
        """Index of the structure with these level choices (created on first use)."""
        idx = self._structure_index.get(choice)
        if idx is None:
            idx = len(self._structures)
            self._structures.append(self._build(choice))
            self._structure_index[choice] = idx
            self._choices.append(choice)
        return idx

    def level_choices(self, structure: int) -> tuple[LevelChoice, ...]:
        return self._choices[structure]

    def _build(self, choice: tuple[LevelChoice, ...]) -> Dataflow:
        directives: list[Directive] = []
        conv = self.layer.layer_type.is_conv_family
        for level, lc in enumerate(choice):
            if level > 0:
                directives.append(Directive.cluster(Hole(f"c{level}")))
            for d in lc.order:
                make = Directive.spatial if d == lc.spatial else Directive.temporal
                h = hole_name(level, d)
                if d in (ROW, COL):
                    directives.append(make(Hole(h), Hole(h + "o"), "Y" if d == ROW else "X"))
                else:
                    directives.append(make(Hole(h), Hole(h), d))
            if conv:
                directives += [Directive.temporal(DimSize("R"), DimSize("R"), "R"),
                               Directive.temporal(DimSize("S"), DimSize("S"), "S")]
        return Dataflow(directives=tuple(directives))

    # -------------------------------------------------------------------------- configurations
    def config_count(self) -> int:
        n = len(self.spatial_choices) * len(self.cluster_chains)
        for rows in self.chains.values():
            n *= len(rows)
        return n

    def config_batches(self, size: int = 65536) -> Iterator[ConfigBatch]:
        """Every configuration once, in batches (mixed-radix order over the choice lists)."""
        radices = [len(self.spatial_choices), *(len(self.chains[d]) for d in self.dim_names),
                   len(self.cluster_chains)]
        total = math.prod(radices)
        for start in range(0, total, size):
            flat = np.arange(start, min(start + size, total), dtype=np.int64)
            digits = []
            for r in reversed(radices):
                flat, digit = np.divmod(flat, r)
                digits.append(digit)
            digits.reverse()
            yield ConfigBatch(digits[0], dict(zip(self.dim_names, digits[1:-1], strict=True)), digits[-1])

    def tiles_of(self, batch: ConfigBatch) -> dict[str, np.ndarray]:
        """Tile per dimension per level: dim -> (levels, n)."""
        return {d: self.chains[d][batch.chain[d]].T for d in self.dim_names}

    def clusters_of(self, batch: ConfigBatch) -> np.ndarray:
        """Cluster sizes per level below the top: (levels - 1, n)."""
        return self.cluster_chains[batch.cluster].T

    def spatial_of(self, batch: ConfigBatch) -> np.ndarray:
        """Spatially mapped dimension index per level: (levels, n)."""
        table = np.array([[self.dim_names.index(s) for s in choice] for choice in self.spatial_choices])
        return table[batch.spatial].T.reshape(self.levels, len(batch))

    def moving(self, batch: ConfigBatch) -> np.ndarray:
        """(levels, n_dims, n): whether each map iterates at each level (or is the spatial map)."""
        tiles = self.tiles_of(batch)
        sp = self.spatial_of(batch)
        out = np.zeros((self.levels, len(self.dim_names), len(batch)), dtype=bool)
        for j, d in enumerate(self.dim_names):
            outer = np.vstack([np.full(len(batch), self.dims[d]), tiles[d][:-1]])
            out[:, j] = (tiles[d] < outer) | (sp == j)
        return out

    def hole_values(self, batch: ConfigBatch) -> dict[str, np.ndarray]:
        tiles = self.tiles_of(batch)
        out: dict[str, np.ndarray] = {}
        for d, t in tiles.items():
            for level in range(self.levels):
                h = hole_name(level, d)
                if d in (ROW, COL):
                    plain = "Y" if d == ROW else "X"
                    s = self.layer.stride(plain)
                    r = self.layer.dim_map.get("R" if d == ROW else "S", 1)
                    out[h] = s * (t[level] - 1) + r
                    out[h + "o"] = s * t[level]
                else:
                    out[h] = t[level]
        clusters = self.clusters_of(batch)
        for level in range(1, self.levels):
            out[f"c{level}"] = clusters[level - 1]
        return out

    def _orders(self, moving: Sequence[str]) -> list[tuple[str, ...]]:
        """Canonical orders of one level: the moving maps in every (allowed) order, then the rest."""
        still = tuple(d for d in self.dim_names if d not in moving)
        if self.orders == "all":
            perms = itertools.permutations(moving)
        else:
            perms = dict.fromkeys(tuple(d for d in o if d in moving) for o in self.orders)
        return [tuple(p) + still for p in perms]

    def _groups(self, batch: ConfigBatch):
        """Split a batch by (spatial choice, moving maps per level): each group shares its orders."""
        mv = self.moving(batch)
        n_dims = len(self.dim_names)
        weights = 1 << np.arange(self.levels * n_dims, dtype=np.int64)
        pattern = np.tensordot(weights.reshape(self.levels, n_dims), mv.astype(np.int64), axes=2)
        key = pattern * len(self.spatial_choices) + batch.spatial
        for k in np.unique(key):
            idx = np.nonzero(key == k)[0]
            sp_choice = self.spatial_choices[int(batch.spatial[idx[0]])]
            moving = [[d for j, d in enumerate(self.dim_names) if mv[lv, j, idx[0]]]
                      for lv in range(self.levels)]
            yield idx, sp_choice, moving

    def structures_for(self, spatial: tuple[str, ...], moving: list[list[str]]) -> list[int]:
        per_level = [[LevelChoice(o, spatial[lv]) for o in self._orders(moving[lv])]
                     for lv in range(self.levels)]
        return [self.structure_of(tuple(c)) for c in itertools.product(*per_level)]

    # ------------------------------------------------------------------------------ points
    def count(self) -> int:
        total = 0
        for batch in self.config_batches():
            for idx, _spatial, moving in self._groups(batch):
                total += len(idx) * math.prod(len(self._orders(m)) for m in moving)
        return total

    def chunks(self, size: int = 65536) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        # Points of one structure are gathered across configuration batches, so that the cost
        # model sees batches of up to ``size`` designs rather than many small ones.
        pending: dict[int, list[dict[str, np.ndarray]]] = {}
        counts: dict[int, int] = {}
        for batch in self.config_batches(size):
            values = self.hole_values(batch)
            for idx, spatial, moving in self._groups(batch):
                for s in self.structures_for(spatial, moving):
                    pending.setdefault(s, []).append({h: values[h][idx] for h in self._structures[s].holes})
                    counts[s] = counts.get(s, 0) + len(idx)
                    if counts[s] >= size:
                        yield s, _join(pending.pop(s))
                        counts[s] = 0
        for s, parts in pending.items():
            yield s, _join(parts)

    def points(self, batch: ConfigBatch) -> list[Point]:
        """Every point (all canonical orders) of the configurations in ``batch``."""
        values = self.hole_values(batch)
        out = []
        for idx, spatial, moving in self._groups(batch):
            for s in self.structures_for(spatial, moving):
                holes = self._structures[s].holes
                for i in idx:
                    out.append(Point(s, tuple((h, int(values[h][i])) for h in holes)))
        return out

    def sample(self, rng: np.random.Generator, n: int) -> list[Point]:
        params = {name: rng.integers(0, k, size=n) for name, k in self.parameters().items()}
        return [self.decode({name: int(v[i]) for name, v in params.items()}) for i in range(n)]

    # ----------------------------------------------------------------------- sampler encoding
    def parameters(self) -> dict[str, int]:
        out = {}
        for level in range(self.levels):
            out[f"spatial{level}"] = len(self.spatial)
            for d in self.dim_names:
                out[f"{hole_name(level, d)}_tile"] = len(self.options[d])
                out[f"{hole_name(level, d)}_rank"] = len(self.dim_names)
            if level > 0:
                out[f"c{level}"] = len(self.cluster_sizes)
        return out

    def decode(self, params: dict[str, int]) -> Point:
        """Tiles are projected onto the chain (largest allowed tile not above the choice that divides
        the outer one); cluster sizes onto the PE budget; ranks give the order of the moving maps."""
        names = self._names()
        tiles: dict[str, list[int]] = {}
        for d in self.dim_names:
            options = self._option_lists[d]
            chain, outer = [], self.dims[d]
            for level in range(self.levels):
                cap = min(options[params[names[level][d][0]]], outer)
                tile = 1
                for t in options:                       # ascending: the last one that fits
                    if t > cap:
                        break
                    if self.tiles == "any" or outer % t == 0:
                        tile = t
                chain.append(tile)
                outer = tile
            tiles[d] = chain
        clusters, budget = [], self.num_pes
        for level in range(1, self.levels):
            want = self.cluster_sizes[params[f"c{level}"]]
            ok = [c for c in self.cluster_sizes if c <= min(want, budget)]
            clusters.append(ok[-1] if ok else min(self.cluster_sizes))
            budget //= clusters[-1]
        choice = []
        for level in range(self.levels):
            spatial = self.spatial[params[f"spatial{level}"]]
            moving = [d for d in self.dim_names if d == spatial
                      or tiles[d][level] < (self.dims[d] if level == 0 else tiles[d][level - 1])]
            ordered = sorted(moving, key=lambda d, lv=level: (params[names[lv][d][1]], self._dim_rank[d]))
            if self.orders != "all":           # nearest allowed order: the first allowed one
                allowed = self._orders(moving)
                if tuple(ordered) + tuple(d for d in self.dim_names if d not in moving) not in allowed:
                    ordered = list(allowed[0][:len(moving)])
            still = tuple(d for d in self.dim_names if d not in moving)
            choice.append(LevelChoice(tuple(ordered) + still, spatial))
        s = self.structure_of(tuple(choice))
        values = self._values_from(tiles, clusters)
        return Point(s, tuple((h, values[h]) for h in self._structures[s].holes))

    def _names(self) -> list[dict[str, tuple[str, str]]]:
        """Per level and dimension, the names of its tile and rank parameters (built once)."""
        if self._param_names is None:
            self._option_lists = {d: [int(t) for t in self.options[d]] for d in self.dim_names}
            self._dim_rank = {d: i for i, d in enumerate(self.dim_names)}
            self._param_names = [{d: (f"{hole_name(lv, d)}_tile", f"{hole_name(lv, d)}_rank")
                                  for d in self.dim_names} for lv in range(self.levels)]
        return self._param_names

    def _values_from(self, tiles: dict[str, list[int]], clusters: list[int]) -> dict[str, int]:
        """Hole values of one configuration (as :meth:`hole_values`, in plain integers)."""
        out: dict[str, int] = {}
        for d, chain in tiles.items():
            stride = filt = 1
            if d in (ROW, COL):
                stride = self.layer.stride("Y" if d == ROW else "X")
                filt = self.layer.dim_map.get("R" if d == ROW else "S", 1)
            for level, t in enumerate(chain):
                h = hole_name(level, d)
                if d in (ROW, COL):
                    out[h] = stride * (t - 1) + filt
                    out[h + "o"] = stride * t
                else:
                    out[h] = t
        for level, c in enumerate(clusters, start=1):
            out[f"c{level}"] = c
        return out

    def describe(self) -> str:
        return (f"free space: {self.levels} level(s), spatial {'/'.join(self.spatial)}, tiles "
                f"{self.tiles}, cluster sizes {', '.join(map(str, self.cluster_sizes))}, "
                f"{self.config_count():,} configurations")
