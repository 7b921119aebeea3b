"""Wall-time A/B in one process: baseline and candidate interleaved, warmed up, pinned to fixed CPUs."""

from __future__ import annotations

import contextlib
import gc
import math
import os
import platform
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from edgekd.gate.stats import latency_summary, median_ratio_ci


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


def pick_cpus(threads: int) -> list[int]:
    """The last `threads` CPUs this process may use (CPU 0 tends to take interrupts)."""
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[-max(1, threads):]


@contextlib.contextmanager
def pinned(cpus: list[int] | None) -> Iterator[list[int] | None]:
    """Pin this process (and the runtime threads it starts later) to `cpus`, then restore."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, set(cpus))
    except OSError:  # a sandbox may forbid it: measure unpinned rather than not at all
        yield None
        return
    try:
        yield cpus
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    # A collection in the middle of one block would charge its pause to whichever model ran then.
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _block(fn: Callable[[], object], inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return time.perf_counter() - t0


def calibrate_inner(run_a: Callable[[], object], run_b: Callable[[], object], block_ms: float) -> int:
    """Invokes per sample so the faster model's block lasts ~block_ms (timer and call overhead stay small)."""
    best = min(min(_block(run_a, 1), _block(run_b, 1)) for _ in range(3))
    return max(1, math.ceil(block_ms / 1e3 / max(best, 1e-7)))


def measure_ab(
    run_a: Callable[[], object], run_b: Callable[[], object], settings: TimingSettings, inner: int | None = None
) -> dict:
    """Time A (baseline) and B (candidate) as pairs in ABBA order until the budget or max_pairs is reached.

    ABBA: the order flips every pair, so a model that always runs second (warmer caches, or a slow
    drift in clock speed) does not get a systematic edge.
    """
    for _ in range(settings.warmup):
        run_a()
        run_b()
    if inner is None:
        inner = calibrate_inner(run_a, run_b, settings.block_ms)
    # A slow model cannot reach min_pairs inside the budget: settle for fewer (>= 10) pairs and a wider CI.
    pair_s = _block(run_a, inner) + _block(run_b, inner)
    min_pairs = max(10, min(settings.min_pairs, int(settings.budget_s / max(pair_s, 1e-9))))
    ta: list[float] = []
    tb: list[float] = []
    t_start = time.perf_counter()
    deadline = t_start + settings.budget_s
    with _no_gc():
        i = 0
        while i < settings.max_pairs and (i < min_pairs or time.perf_counter() < deadline):
            if i % 2 == 0:
                ta.append(_block(run_a, inner))
                tb.append(_block(run_b, inner))
            else:
                tb.append(_block(run_b, inner))
                ta.append(_block(run_a, inner))
            i += 1
    elapsed = time.perf_counter() - t_start
    a, b = np.array(ta), np.array(tb)
    ratio, lo, hi = median_ratio_ci(a, b, confidence=settings.confidence, seed=settings.seed)
    return {
        "ratio": ratio,
        "ci_low": lo,
        "ci_high": hi,
        "confidence": settings.confidence,
        "pairs": len(ta),
        "inner": inner,
        "seconds": round(elapsed, 3),
        "baseline": latency_summary(a, inner),
        "candidate": latency_summary(b, inner),
    }


def machine_where() -> str:
    """CPU model and load, so a reader knows what 'measured' means here."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"this machine ({cpu}, {os.cpu_count()} CPUs, load avg {load:.2f})"


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


def measure_one(run: Callable[[], object], settings: TimingSettings) -> dict:
    """Absolute per-invoke latency of one model (for comparisons against a stored baseline)."""
    for _ in range(settings.warmup):
        run()
    best = min(_block(run, 1) for _ in range(3))
    inner = max(1, math.ceil(settings.block_ms / 1e3 / max(best, 1e-7)))
    times: list[float] = []
    deadline = time.perf_counter() + settings.budget_s / 2
    with _no_gc():
        while len(times) < settings.max_pairs and (len(times) < settings.min_pairs or time.perf_counter() < deadline):
            times.append(_block(run, inner))
    return {**latency_summary(np.array(times), inner), "runs": len(times) * inner, "inner": inner}
