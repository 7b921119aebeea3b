"""The gate's yardstick for absolute times: the A/B itself is edgekd.runtime.timing.measure_ab."""

from __future__ import annotations

import time

import numpy as np


def reference_ms(samples: int = 25) -> float:
    """A fixed numpy workload's median time: a yardstick that lets a later run scale absolute times.

    Only used when the baseline is a stored JSON (no A/B possible); it shrinks, not removes, the
    error from a machine being faster or busier than when the baseline was recorded. Sort and
    elementwise math only: a BLAS matmul would start its own threads, which fight over the one
    pinned CPU (measured: 10 s instead of 0.05 s under load).
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20_000).astype(np.float32)
    times = []
    for _ in range(samples):  # a fixed count, not a wall-clock budget: bounded CPU on a busy machine
        t0 = time.perf_counter()
        np.sort(np.tanh(x * 0.5) + x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)
