"""Unions of template spaces, the named spaces, and the coarse free space."""

from __future__ import annotations

import numpy as np
import pytest

from costmodel import Accelerator, Layer, SpecError
from search import ExhaustiveSearcher, Problem
from search.optuna_search import OptunaSearcher
from spaces import FreeSpace
from spaces.template import TemplateSpace
from spaces.union import UnionSpace, mapping_space, template_union

CONV = Layer.conv("conv", K=16, C=8, R=3, S=3, Y=10, X=10)
GEMM = Layer.gemm("gemm", M=8, N=24, K=32)


def test_union_enumerates_each_member_once_with_its_own_dataflows():
    union = template_union(CONV, 16)
    assert {"kcp_ws_holes", "rs", "yxp_os"} <= set(union.names) and "gemm_mnk_holes" not in union.names
    assert union.count() == sum(s.count() for s in union.spaces)
    seen = []
    for structure, holes in union.chunks(7):
        names = list(holes)
        for i in range(len(holes[names[0]])):
            seen.append((structure, tuple((h, int(holes[h][i])) for h in names)))
    assert len(seen) == len(set(seen)) == union.count()
    # A union point's dataflow is the member template's binding.
    k = union.names.index("rs")
    member: TemplateSpace = union.spaces[k]
    point = union.decode({"space": k, **{f"rs.{h}": 0 for h in member.holes}})
    assert union.dataflow(point) == member.dataflow(member.decode({h: 0 for h in member.holes}))


def test_gemm_layers_get_the_gemm_template_and_unknown_kinds_fail_clearly():
    assert template_union(GEMM, 16).names == ["gemm_mnk_holes"]
    with pytest.raises(SpecError, match="no shipped template 'nope'"):
        mapping_space(CONV, 16, "nope")
    assert isinstance(mapping_space(CONV, 16, "free", levels=3), FreeSpace)
    assert isinstance(mapping_space(CONV, 16, "rs"), TemplateSpace)


def test_searchers_work_on_unions_and_agree():
    acc = Accelerator(num_pes=16, l1_size=256, noc_bw=8, noc_hop_latency=1)
    union = template_union(CONV, 16)
    exact = ExhaustiveSearcher(top_k=1).search(Problem(union, acc))
    per_member = min(ExhaustiveSearcher(top_k=1).search(Problem(s, acc)).best[0].values[0]
                     for s in union.spaces)
    assert exact.best[0].values[0] == per_member
    sampled = OptunaSearcher(trials=64, seed=1).search(Problem(union, acc))
    assert sampled.best and sampled.best[0].values[0] >= per_member
    points = union.sample(np.random.default_rng(0), 20)
    assert len(points) == 20 and all(union.dataflow(p).holes == () for p in points)


def test_coarse_space_is_small_and_keeps_the_whole_dimension():
    space = FreeSpace.coarse(CONV, 64)
    assert space.levels == 2 and space.spatial == ("K", "C") and space.cluster_sizes == (4, 16, 64)
    for d, options in space.options.items():
        assert options[-1] == space.dims[d] and options[0] == 1 and len(options) <= 3
    assert FreeSpace.coarse(GEMM, 2).cluster_sizes == (1,)
    with pytest.raises(SpecError, match="at least one space"):
        UnionSpace([])
