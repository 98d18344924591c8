"""``mixed_chunks``: the points of ``chunks``, in order, as batches mixing structures; ``decode``
lands on points of the space."""

from __future__ import annotations

import numpy as np
import pytest

from costmodel import Layer
from spaces.mapping import FreeSpace


@pytest.mark.parametrize("size", [7, 100, 5000])
def test_mixed_chunks_hold_the_points_of_chunks_in_order(size):
    layer = Layer.conv("c", K=4, C=2, R=3, S=3, Y=4, X=4)
    space = FreeSpace(layer, 4, levels=2, spatial=["K", "C"])
    expected = []
    for s, holes in space.chunks(size):
        names = space.structures[s].holes
        n = len(holes[names[0]])
        expected += [(s, tuple(int(holes[h][i]) for h in names)) for i in range(n)]
    got = []
    batches = list(space.mixed_chunks(size))
    for structures, values in batches:
        assert values.dtype == np.int64 and len(structures) == len(values)
        for s, row in zip(structures, values, strict=True):
            width = len(space.structures[int(s)].holes)
            assert not row[width:].any()
            got.append((int(s), tuple(int(v) for v in row[:width])))
    assert got == expected and len(got) == space.count()
    assert all(len(structures) <= 2 * size for structures, _ in batches)
    if size == 5000:
        assert any(len(set(structures.tolist())) > 1 for structures, _ in batches)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_decode_lands_on_points_of_the_space(levels):
    layer = Layer.conv("c", K=4, C=2, R=3, S=3, Y=5, X=5, stride=2)
    space = FreeSpace(layer, 4, levels=levels, spatial=["K", "C", "X'"])
    every = set()
    for structures, values in space.mixed_chunks(4096):
        for s, row in zip(structures, values, strict=True):
            names = space.structures[int(s)].holes
            every.add((space.structures[int(s)], tuple(int(v) for v in row[:len(names)])))
    rng = np.random.default_rng(levels)
    names = space.parameters()
    for _ in range(400):
        point = space.decode({n: int(rng.integers(0, k)) for n, k in names.items()})
        structure = space.structures[point.structure]
        assert tuple(name for name, _ in point.values) == structure.holes
        assert (structure, tuple(v for _, v in point.values)) in every
