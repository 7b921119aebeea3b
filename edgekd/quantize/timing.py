"""Small interleaved host timing, to state what keeping layers in float costs (A B A B ..., medians)."""

from __future__ import annotations

import time

import numpy as np


def interleaved(paths: dict[str, str], sample: np.ndarray, *, rounds: int = 5, runs: int = 20, threads: int = 1) -> dict:
    """{label: latency dict} measured on this host, one sample per invoke, same sample for every file."""
    import platform

    from edgekd.runtime import load_runner

    runners = {k: load_runner(p, threads=threads) for k, p in paths.items()}
    prepared = {k: r.prepare(sample[:1]) for k, r in runners.items()}
    for k, r in runners.items():  # warm-up: first invokes allocate and pack weights
        for _ in range(3):
            r.run_once(prepared[k])
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for k, r in runners.items():
            for _ in range(runs):
                t = time.perf_counter()
                r.run_once(prepared[k])
                times[k].append((time.perf_counter() - t) * 1e3)
    out = {}
    for k, v in times.items():
        a = np.asarray(v)
        out[k] = {"p50_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)),
                  "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()), "runs": len(a), "warmup": 3,
                  "threads": threads, "runtime": runners[k].format, "kind": "measured",
                  "where": f"host {platform.machine()} ({platform.node()}), interleaved {rounds}x{runs}"}
    return out
