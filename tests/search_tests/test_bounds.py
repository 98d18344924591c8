"""The floors of ``search.bounds`` hold for every mapping the cost model evaluates: random free-space
mappings of real layers on several accelerators, and every generated MAESTRO case."""

from __future__ import annotations

import numpy as np
import pytest

from costmodel import Accelerator, DseError, evaluate_batch, parse_network
from costmodel.networks import builtin
from search import Problem, bounds, evaluate_points
from spaces import FreeSpace
from tests.costmodel_tests import fidelity

ACCELERATORS = (Accelerator(num_pes=256, noc_bw=64, noc_hop_latency=1),
                Accelerator(num_pes=64, noc_bw=8, noc_hop_latency=0),
                Accelerator(num_pes=128, noc_bw=32, noc_hop_latency=2, simd_lanes=2))


def _violations(cost, layer, acc) -> tuple[int, int, int]:
    """(designs checked, below the latency floor, below the energy floor) among the designs that do
    the layer's work: every MAC executed, every input and weight delivered and every output written
    at least once (a generated mapping can skip part of the layer while its repeats make up the MAC
    count)."""
    sizes = layer.tensor_sizes()
    ok = ((np.atleast_1d(cost.error) == "") & (np.atleast_1d(cost.num_macs) >= layer.true_macs)
          & (np.atleast_1d(cost.input_l2_reads) >= sizes["input"])
          & (np.atleast_1d(cost.weight_l2_reads) >= sizes["weight"])
          & (np.atleast_1d(cost.output_l2_writes) >= sizes["output"]))
    runtime = np.atleast_1d(cost.runtime_cycles)[ok]
    energy = np.atleast_1d(cost.energy_nj)[ok]
    return (int(ok.sum()), int((runtime < bounds.latency_floor(layer, acc)).sum()),
            int((energy < bounds.energy_floor_nj(layer, acc) * (1 - 1e-12)).sum()))


@pytest.mark.parametrize("net", ["resnet50", "mobilenetv2", "bert_base", "gpt2_decode"])
def test_floors_hold_on_random_free_space_mappings(net):
    rng = np.random.default_rng(1)
    checked = 0
    for layer in builtin(net).layers[::4]:
        for acc in ACCELERATORS:
            space = FreeSpace(layer, acc.num_pes)
            scored = evaluate_points(Problem(space, acc), space.sample(rng, 200))
            n, slow, cheap = _violations(scored.cost, layer, acc)
            checked += n
            assert (slow, cheap) == (0, 0), (layer.name, acc)
    assert checked > 1000


def test_floors_hold_on_the_generated_maestro_cases():
    rows, texts = fidelity.generated_cases()
    checked = 0
    for row, text in zip(rows.itertuples(index=False), texts, strict=True):
        try:
            mapped = parse_network(text).layers[0]
            if mapped.error is not None:
                continue
            acc = fidelity.accelerator_of(row)
            cost = evaluate_batch(mapped.layer, mapped.dataflow, accelerator=acc)
        except DseError:
            continue
        n, slow, cheap = _violations(cost, mapped.layer, acc)
        checked += n
        assert (slow, cheap) == (0, 0), row.case_id
    # 1,471 of the 1,811 evaluated on 2026-12-03; strided layers whose filter is shorter than the
    # stride never need some input rows, so they drop out with the mappings that skip work.
    assert checked > 1400


def test_the_noc_floor_binds_where_weights_dominate():
    """ResNet-50's fc1000: 2,048,000 weights at 64 elements per cycle dwarf the PE peak."""
    layer = next(x for x in builtin("resnet50").layers if x.name == "fc1000")
    acc = ACCELERATORS[0]
    assert bounds.pe_peak(layer, acc) == 8000
    assert bounds.latency_floor(layer, acc) == -(-(2048 + 2_048_000) // 64)
    assert bounds.gap(40000.0, bounds.floor(layer, acc, "latency")) == pytest.approx(0.2, abs=0.001)
