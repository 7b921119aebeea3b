"""This host as a latency dict's `where` names it, and the CPUs a measurement pins itself to."""

from __future__ import annotations

import contextlib
import os
import platform
from typing import Iterator


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what platform knows."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_where() -> str:
    """CPU model and load, so a reader knows what 'measured' means here."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"this machine ({cpu_name()}, {os.cpu_count()} CPUs, load avg {load:.2f})"


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
