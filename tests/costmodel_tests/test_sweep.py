"""Hardware sweeps agree with single evaluations on every grid point."""

from __future__ import annotations

import numpy as np

from costmodel import Accelerator, evaluate, read_network
from costmodel.networks import DATA
from costmodel.sweep import sweep_hardware


def test_sweep_matches_single_evaluations():
    m = next(m for m in read_network(DATA / "resnet50_kcp_ws.m").layers if m.layer.name == "conv2_x_b")
    pes, bws, l1s, l2s = [64, 128, 256], [16, 256], [40, 200], [4096, 100_000]
    base = Accelerator(noc_hop_latency=1)
    result = sweep_hardware(m.layer, m.dataflow, num_pes=pes, noc_bw=bws, l1_size=l1s, l2_size=l2s,
                            accelerator=base)
    assert result.shape == (3, 2, 2, 2) and result.size == 24
    for i, p in enumerate(pes):
        for j, b in enumerate(bws):
            for k, l1 in enumerate(l1s):
                for n, l2 in enumerate(l2s):
                    acc = Accelerator(num_pes=p, noc_bw=b, l1_size=l1, l2_size=l2, noc_hop_latency=1)
                    single = evaluate(m.layer, m.dataflow, acc)
                    assert result.runtime_cycles[i, j, k, n] == single.runtime_cycles
                    assert result.valid[i, j, k, n] == single.valid
                    assert result.area_um2[i, j, k, n] == acc.area_um2()     # as provisioned
    flat = result.flat()
    assert len(flat["runtime_cycles"]) == 24 and np.array_equal(flat["num_pes"][:8], [64] * 8)
