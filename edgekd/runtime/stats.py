"""What a series of timings says: percentiles per invoke, and the paired ratio of two interleaved series."""

from __future__ import annotations

import numpy as np


def summarize(ms) -> dict[str, float]:
    """p50/p90/p99/mean of per-invoke milliseconds (the figures of every latency dict)."""
    ms = np.asarray(ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": float(ms.mean())}


def median_ratio_ci(
    base: np.ndarray, cand: np.ndarray, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(median ratio, CI low, CI high) of cand_i / base_i over adjacent pairs.

    Pairs, not two separate medians: both halves of a pair ran back to back, so load that comes and
    goes on a shared machine hits both and cancels in the ratio. Percentile bootstrap over pairs.
    """
    base = np.asarray(base, dtype=np.float64)
    cand = np.asarray(cand, dtype=np.float64)
    if base.shape != cand.shape or base.size < 2:
        raise ValueError("need two equally long timing series with at least 2 pairs")
    ratios = cand / base
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, ratios.size, size=(resamples, ratios.size))
    meds = np.median(ratios[idx], axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(meds, [alpha, 1.0 - alpha])
    return float(np.median(ratios)), float(lo), float(hi)
