"""Measure a model on this machine by running edgekd's stand-alone profiler in a fresh subprocess.

A subprocess keeps peak RSS honest (only numpy + the runtime + the model, not torch and friends)
and gives host and boards the exact same timing loop (remote_runner.py).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError

RUNNER = Path(__file__).with_name("remote_runner.py")


def runner_args(model: str, runs: int, warmup: int, threads: int, max_seconds: float,
                inputs: str | None, xnnpack: bool = True, op_profile: int = 0,
                shape: tuple[int, ...] | None = None) -> list[str]:
    args = [model, "--runs", str(runs), "--warmup", str(warmup), "--threads", str(threads),
            "--max-seconds", f"{max_seconds:g}"]
    if shape:
        args += ["--shape", ",".join(str(int(d)) for d in shape)]
    if op_profile:
        args += ["--op-profile", str(op_profile)]
    if inputs:
        args += ["--inputs", inputs]
    if not xnnpack:
        args.append("--no-xnnpack")
    return args


def parse_runner_output(stdout: str, stderr: str, rc: int, what: str) -> dict[str, Any]:
    """The runner prints one JSON line last; runtimes may print log lines before it."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                break
            if "error" in data:
                raise EdgeKDError(f"profiling on {what} failed: {data['error']}")
            return data
    tail = (stderr.strip().splitlines() or [f"exit code {rc}"])[-1][:300]
    raise EdgeKDError(f"profiling on {what} failed (exit code {rc}): {tail}")


def host_where(data: dict[str, Any]) -> str:
    rt = f"{data['runtime']} {data['runtime_version']}"
    if data.get("delegates"):
        rt += " + " + "/".join(data["delegates"])
    return (f"host {data['machine']} ({data['cpu']}, {data['cpu_count']} cores), {rt}, "
            f"{data['threads']} thread{'s' if data['threads'] != 1 else ''}")


def measure_local(model: str | Path, *, runs: int, warmup: int, threads: int, max_seconds: float,
                  inputs: str | None = None, xnnpack: bool = True, op_profile: int = 0,
                  timeout: float | None = None, shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, str(RUNNER),
           *runner_args(str(model), runs, warmup, threads, max_seconds, inputs, xnnpack, op_profile, shape)]
    env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                           timeout=timeout or max_seconds * 2 + 120)
    except subprocess.TimeoutExpired:
        raise EdgeKDError(f"profiling {Path(model).name} on the host timed out") from None
    return parse_runner_output(p.stdout, p.stderr, p.returncode, f"host {platform.machine()}")
