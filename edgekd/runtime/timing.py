"""The one timing loop: every in-process latency edgekd reports is measured by time_calls.

Several callables are timed in one loop, turn by turn (A B C A B C ..., or ABBA for two), so load
that comes and goes on a shared machine hits them alike and their ratio means something.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from edgekd.runtime.stats import median_ratio_ci, summarize

Call = Callable[[], object]


@dataclass(frozen=True)
class TimingSettings:
    warmup: int = 20  # invokes of each model before timing (allocations, caches, XNNPACK packing)
    min_pairs: int = 60
    max_pairs: int = 1000
    budget_s: float = 5.0  # wall-clock budget for the timed pairs of one attempt
    # Samples stay short on purpose: measured here under load 8 on 2 cores, single ~0.08 ms invokes
    # gave a 95 % CI of +-0.3 % on the ratio, 20-invoke blocks +-100 %: a preemption then spoils
    # only the few samples it lands in, and the median discards them. Only sub-50 us models batch.
    block_ms: float = 0.05
    confidence: float = 0.95
    pin: bool = True  # os.sched_setaffinity to `threads` fixed CPUs while measuring
    seed: int = 0


@contextlib.contextmanager
def _gc_paused(pause: bool) -> Iterator[None]:
    # A collection in the middle of one block would charge its pause to whichever model ran then.
    was = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause and was:
            gc.enable()


def _block(fn: Call, inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return time.perf_counter() - t0


def warm_up(fns: Sequence[Call], n: int) -> None:
    """First invokes allocate and pack weights: run each n times, interleaved, before timing."""
    for _ in range(n):
        for f in fns:
            f()


def time_calls(fns: Mapping[str, Call], *, rounds: int, warmup: int = 0, min_rounds: int = 1,
               max_seconds: float | None = None, inner: int = 1, per_turn: int = 1, abba: bool = False,
               pause_gc: bool = False) -> dict[str, np.ndarray]:
    """Per-invoke milliseconds of each callable, all timed in one interleaved loop.

    A round gives every callable one turn; a turn takes `per_turn` samples, a sample times `inner`
    back-to-back invokes. Rounds stop at `rounds`, or once `max_seconds` have passed and at least
    `min_rounds` are done. abba reverses the order every other round, so no callable always runs
    second (warmer caches, or a slow clock drift, would give it a systematic edge).
    """
    items = list(fns.items())
    warm_up([f for _, f in items], warmup)
    samples: dict[str, list[float]] = {k: [] for k, _ in items}
    start = time.perf_counter()
    done = 0
    with _gc_paused(pause_gc):
        while done < rounds and (done < min_rounds or max_seconds is None
                                 or time.perf_counter() - start <= max_seconds):
            for k, f in (items[::-1] if abba and done % 2 else items):
                for _ in range(per_turn):
                    samples[k].append(_block(f, inner))
            done += 1
    return {k: np.asarray(v) * 1e3 / inner for k, v in samples.items()}


def calibrate_inner(fns: Sequence[Call], block_ms: float) -> int:
    """Invokes per sample so the fastest model's block lasts ~block_ms (timer and call overhead stay small)."""
    best = min(min(_block(f, 1) for f in fns) for _ in range(3))
    return max(1, math.ceil(block_ms / 1e3 / max(best, 1e-7)))


def measure_ab(run_a: Call, run_b: Call, settings: TimingSettings, inner: int | None = None) -> dict:
    """Time A (baseline) and B (candidate) as ABBA pairs until the budget or max_pairs is reached.

    Gives the median paired ratio B/A with its bootstrap CI, the figure to trust on a noisy machine,
    and each side's per-invoke percentiles.
    """
    warm_up([run_a, run_b], settings.warmup)
    if inner is None:
        inner = calibrate_inner([run_a, run_b], settings.block_ms)
    # A slow model cannot reach min_pairs inside the budget: settle for fewer (>= 10) pairs and a wider CI.
    pair_s = _block(run_a, inner) + _block(run_b, inner)
    min_pairs = max(10, min(settings.min_pairs, int(settings.budget_s / max(pair_s, 1e-9))))
    t_start = time.perf_counter()
    ms = time_calls({"a": run_a, "b": run_b}, rounds=settings.max_pairs, min_rounds=min_pairs,
                    max_seconds=settings.budget_s, inner=inner, abba=True, pause_gc=True)
    elapsed = time.perf_counter() - t_start
    ratio, lo, hi = median_ratio_ci(ms["a"], ms["b"], confidence=settings.confidence, seed=settings.seed)
    return {
        "ratio": ratio,
        "ci_low": lo,
        "ci_high": hi,
        "confidence": settings.confidence,
        "pairs": len(ms["a"]),
        "inner": inner,
        "seconds": round(elapsed, 3),
        "baseline": summarize(ms["a"]),
        "candidate": summarize(ms["b"]),
        # each ABBA pair's B/A: the distribution the median and its interval summarise (the gate's figure)
        "pair_ratios": [round(float(b) / float(a), 5) for a, b in zip(ms["a"], ms["b"]) if a > 0],
    }


def measure_one(run: Call, settings: TimingSettings) -> dict:
    """Absolute per-invoke latency of one model (for comparisons against a stored baseline)."""
    warm_up([run], settings.warmup)
    inner = calibrate_inner([run], settings.block_ms)
    ms = time_calls({"m": run}, rounds=settings.max_pairs, min_rounds=settings.min_pairs,
                    max_seconds=settings.budget_s / 2, inner=inner, pause_gc=True)["m"]
    return {**summarize(ms), "runs": len(ms) * inner, "inner": inner}
