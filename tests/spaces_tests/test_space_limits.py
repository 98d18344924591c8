"""Mapping spaces refuse enumerations that cannot finish before they start them."""

from __future__ import annotations

import pytest

from costmodel import Layer, SpecError, limits
from spaces import FreeSpace
from spaces.mapping import chain_count, divisors


def listed(options, levels, any_size):
    rows = [(t,) for t in options]
    for _ in range(levels - 1):
        rows = [(*r, t) for r in rows for t in options if t <= r[-1] and (any_size or r[-1] % t == 0)]
    return len(rows)


@pytest.mark.parametrize("n", [1, 12, 36, 64, 97, 360])
@pytest.mark.parametrize("levels", [1, 2, 3])
def test_chain_counts_match_the_chains_built(n, levels):
    for options, any_size in ((divisors(n), False), (list(range(1, min(n, 40) + 1)), True)):
        assert chain_count(options, levels, any_size) == listed(options, levels, any_size)
    space = FreeSpace(Layer.gemm("g", M=n, N=4, K=4), 16, levels=levels)
    assert len(space.chains["M"]) == chain_count(divisors(n), levels, False)


def test_any_tiles_on_a_big_layer_are_refused_before_building_anything():
    # Was ~10^12 chains built in a Python list (tens of GB, never finishing).
    layer = Layer.gemm("g", M=16384, N=16384, K=16384)
    message = r"dimension M = 16,384 of layer g has 733,141,975,040 tile chains"
    with pytest.raises(SpecError, match=message) as info:
        FreeSpace(layer, 1024, levels=3, tiles="any")
    assert info.value.key == "tiles"
    FreeSpace(layer, limits.MAX_PES, levels=3)                       # divisors: 816 chains per dimension
