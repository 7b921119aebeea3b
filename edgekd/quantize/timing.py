"""Small interleaved host timing, to state what keeping layers in float costs (blocks of invokes, A B A B ...)."""

from __future__ import annotations

import numpy as np

WARMUP = 3  # first invokes allocate and pack weights


def interleaved(paths: dict[str, str], sample: np.ndarray, *, rounds: int = 5, runs: int = 20, threads: int = 1) -> dict:
    """{label: latency dict} measured on this host, one sample per invoke, same sample for every file."""
    import platform

    from edgekd.runtime import Latency, load_runner, time_calls

    runners = {k: load_runner(p, threads=threads) for k, p in paths.items()}
    calls = {k: (lambda r=r, x=r.prepare(sample[:1]): r.run_once(x)) for k, r in runners.items()}
    ms = time_calls(calls, rounds=rounds, warmup=WARMUP, per_turn=runs)
    where = f"host {platform.machine()} ({platform.node()}), interleaved {rounds}x{runs}"
    return {k: Latency.from_ms(v, warmup=WARMUP, threads=threads, runtime=runners[k].format, kind="measured",
                               where=where).to_dict() for k, v in ms.items()}
