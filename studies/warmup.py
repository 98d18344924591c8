"""Compile (or load) the cost model's compiled kernel before a long run, and say how long it took.

    python -m studies.warmup

Numba compiles the kernel on its first use on a machine (about 45 s on two cores) and caches the
machine code (``costmodel.jit``: ``~/.cache/dataflow-dse/numba``); later processes load it in under a
second. ``make demo`` runs this first, so that the wait is announced rather than hidden in the
first trial.
"""

from __future__ import annotations

import sys
import time


def warm_up() -> tuple[float, bool]:
    """Evaluate one layer through the compiled kernel: (seconds it took, whether a cache was there)."""
    from costmodel import Accelerator, Layer, evaluate_batch, jit, read_dataflow
    from costmodel.networks import bundled_dataflow

    cached = jit.CACHE_DIR is not None and any(jit.CACHE_DIR.glob("costmodel_*"))
    start = time.perf_counter()
    layer = Layer.conv("warmup", K=64, C=64, R=3, S=3, Y=58, X=58)
    evaluate_batch(layer, read_dataflow(bundled_dataflow("kcp_ws")), accelerator=Accelerator(num_pes=64),
                   engine="compiled")
    return time.perf_counter() - start, cached


def main() -> int:
    seconds, cached = warm_up()
    from costmodel import jit

    where = f" in {jit.CACHE_DIR}" if jit.CACHE_DIR is not None else " (no writable cache folder)"
    how = "loaded from its cache" if cached else "compiled and cached" + where
    print(f"cost-model kernel ready: {how} ({seconds:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
