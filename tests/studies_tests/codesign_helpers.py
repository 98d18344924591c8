"""A small co-design problem the study tests share: fast trials, a budget that rules out some designs."""

from __future__ import annotations

import optuna

from .cli_helpers import write_file

NETWORK = """\
Network tiny {
Layer conv_a { Type: CONV Stride { X: 1, Y: 1 } Dimensions { K: 16, C: 8, R: 3, S: 3, Y: 10, X: 10 } }
Layer conv_b { Type: CONV Stride { X: 1, Y: 1 } Dimensions { K: 16, C: 8, R: 3, S: 3, Y: 10, X: 10 } }
Layer pw { Type: CONV Stride { X: 1, Y: 1 } Dimensions { K: 32, C: 16, R: 1, S: 1, Y: 8, X: 8 } }
Layer fc { Type: GEMM Dimensions { M: 8, N: 24, K: 32 } }
}
"""
# 4 x 1 x 4 x 3 x 3 x 2 x 1 = 288 designs, 0.04 to 1.4 mm^2: the budget rules out about a third.
HARDWARE = ["--num-pes", "4:32:*2", "--simd-lanes", "1", "--l1-size", "16:128:*2", "--l2-size",
            "1024,4096,16384", "--noc-bw", "4:16:*2", "--offchip-bw", "8,32", "--noc-hop-latency", "1"]
BUDGET = ["--max-area-mm2", "0.4"]


def write_network(tmp_path):
    return write_file(tmp_path, "tiny.m", NETWORK)


def codesign_args(network, storage: str, *extra, trials: int = 6, study: str = "tiny") -> list[str]:
    return ["codesign", "--network", str(network), "--study", study, "--storage", storage,
            "--trials", str(trials), *HARDWARE, *BUDGET, "--output-dir", str(network.parent / "best"),
            *extra]


def load(storage: str, name: str = "tiny") -> optuna.Study:
    from studies.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(storage))


def states(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def hardware_of(t) -> tuple:
    a = t.user_attrs
    return tuple(a.get(k) for k in ("num_pes", "simd_lanes", "l1_size", "l2_size", "noc_bw", "offchip_bw"))


def count_layer_searches(monkeypatch) -> dict:
    """Count the layer searches co-design trials run from now on (``["n"]``); they still run."""
    from studies import codesign as cd

    searched = {"n": 0}
    real = cd.search_layer

    def counting(*args, **kwargs):
        searched["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(cd, "search_layer", counting)
    return searched
