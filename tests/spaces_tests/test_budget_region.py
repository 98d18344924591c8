"""Hardware spaces in their own units, and the part of a space within a budget."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from costmodel import InfeasibleError, SpecError
from spaces.hardware import Budget, HardwareSpace, parse_spec

SPECS = {"num_pes": "4:64:*2", "simd_lanes": "1,2", "l1_size": "16:256:*2", "l2_size": "1024,4096,65536",
         "noc_bw": "4:32:*2", "offchip_bw": "8,32", "noc_hop_latency": "1"}
BUDGET = Budget(max_area_mm2=0.3, max_power_mw=60)


def test_parameters_are_seen_in_their_own_units_and_snapped_to_their_values():
    geometric = parse_spec("num_pes", "16:4096:*2")
    assert geometric.key == "num_pes" and geometric.distribution() == {"low": 16, "high": 4096, "log": True}
    assert [geometric.snap(v) for v in (1, 16, 22.6, 22.7, 45, 5000)] == [16, 16, 16, 32, 32, 4096]
    arithmetic = parse_spec("l1_size", "128:1024:128")
    assert arithmetic.distribution() == {"low": 128, "high": 1024, "step": 128}
    assert [arithmetic.snap(v) for v in (0, 191, 193, 1024, 9999)] == [128, 128, 256, 1024, 1024]
    listed = parse_spec("noc_hop_latency", "0,1,4")       # a zero: no log scale
    assert listed.distribution() == {"low": 0, "high": 4, "log": False}
    assert [listed.snap(v) for v in (0.4, 0.6, 2.4, 2.6)] == [0, 1, 1, 4]
    with pytest.raises(SpecError, match="not a value of the hardware space"):
        geometric.value_of({"num_pes": 100})


def test_the_region_is_exactly_the_designs_within_the_budget():
    space = HardwareSpace.from_specs(SPECS)
    region = space.within(BUDGET)
    brute = set()
    names = [p.name for p in space.varying()]
    for values in itertools.product(*(p.values for p in space.varying())):
        design = dict(zip(names, values, strict=True))
        if BUDGET.fits(space.decode(design)):
            brute.add(space.key(design))
    listed = {space.key(d) for d in region.designs()}
    assert listed == brute and 0 < len(brute) < space.size()
    rng = np.random.default_rng(3)
    for _ in range(300):
        proposal = {p.name: float(rng.uniform(p.values[0] * 0.5, p.values[-1] * 2)) for p in space.varying()}
        design = region.project(proposal)
        assert space.key(design) in brute
        assert space.key(region.random(rng)) in brute
    for design in list(region.designs())[::7]:
        assert region.project(design) == design          # a design within the budget is kept as it is


def test_unseen_designs_run_out_only_when_every_design_was_seen():
    space = HardwareSpace.from_specs(SPECS)
    region = space.within(BUDGET)
    every = [space.key(d) for d in region.designs()]
    rng = np.random.default_rng(0)
    seen = set(every[1:])
    assert space.key(region.unseen(seen, rng)) == every[0]
    assert region.unseen(set(every), rng) is None


def test_an_impossible_budget_names_the_smallest_area_and_power_the_space_allows():
    space = HardwareSpace.from_specs(SPECS)
    smallest = space.smallest()
    area, power = smallest.area_um2() / 1e6, smallest.power_mw()
    with pytest.raises(InfeasibleError) as info:
        space.within(Budget(max_area_mm2=0.001))
    text = str(info.value)
    assert text.startswith("--max-area-mm2 0.001: no design")
    assert f"{area:.3g} mm^2" in text and f"{power:.3g} mW" in text
    assert info.value.constraint == "max_area_mm2"
    with pytest.raises(InfeasibleError, match="--max-power-mw 1:"):
        space.within(Budget(max_power_mw=1))
    with pytest.raises(InfeasibleError, match="--max-pes 2:"):
        space.within(Budget(max_pes=2))
    space.within(Budget(max_area_mm2=area * 1.0001, max_power_mw=power * 1.0001))   # just fits
