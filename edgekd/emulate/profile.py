"""emulate_profile / instruction_count: a model file on the target's ARM core under qemu-user.

What comes back is two different kinds of number, labelled so nobody mistakes one for the other:
  - "emulated instructions": executed aarch64 instructions per inference, counted exactly by a TCG
    plugin (deterministic: a cost signal a CI gate can compare without timing noise);
  - an estimated latency = instructions / (clock x instructions-per-cycle) from the target file's
    [emulation] table, kind="estimated" (qemu counts instructions, not cycles).
Everything runs on one thread: helper threads would add spin-wait instructions that vary run to run.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError

FORMATS = {".tflite": ("tflite", "litert-xnnpack"), ".onnx": ("onnx", "onnxruntime-cpu")}
DEFAULT_RUNS = 3
MAX_RUNS = 10  # the count repeats exactly; more emulated runs (~400x slower than native) add no information


def _runs(runs: int | None) -> int:
    if runs is None:
        return DEFAULT_RUNS
    if runs < 1:
        raise EdgeKDError(f"emulation needs runs >= 1, got {runs}")
    return min(runs, MAX_RUNS)


def _resolve(model_path: str | Path, target: Any):
    from edgekd.emulate.cpus import check_cpu
    from edgekd.targets import load_target

    path = Path(model_path)
    if path.suffix not in FORMATS:
        raise EdgeKDError(f"{path.name}: emulation runs .tflite or .onnx files, not '{path.suffix}'")
    from edgekd.core.inputs import check_model_file

    check_model_file(path)
    tgt = load_target(target)
    if tgt.emulation is None:
        raise EdgeKDError(f"target {tgt.name!r} has no [emulation] table (qemu_cpu, clock_ghz, ...): "
                          "emulation needs an ARM CPU target such as android or raspberry-pi-5")
    check_cpu(tgt.emulation.qemu_cpu)
    return path, tgt


def _inputs(runner, sample: Any, n: int, seed: int = 0):
    """Real samples (array or a load_data spec) as runtime-ready rows; random ones if none given."""
    import numpy as np

    if sample is None:
        # the model's own input shape passes through runner.prepare unchanged (it matches exactly)
        shape = tuple(d if d > 0 else 1 for d in runner.input_shape)
        x = np.random.default_rng(seed).standard_normal((n, *shape[1:])).astype(np.float32)
        kind = "random"
    elif isinstance(sample, (str, Path)):
        from edgekd.data import load_data

        bundle = load_data(str(sample), seed=seed)
        x, kind = bundle.test.x[:n], f"real ({bundle.name} test set)"
    else:
        x = np.asarray(sample, dtype=np.float32)
        if x.ndim < 2 or len(x) == 0:
            raise EdgeKDError(f"sample must be a non-empty batch (N, C, H, W), got shape {x.shape}")
        x, kind = x[:n], "real (given samples)"
    rows = [runner.prepare(x[i : i + 1]) for i in range(len(x))]
    return np.stack(rows), kind


def _count_stats(counts: list[int]) -> dict[str, Any]:
    med = statistics.median(counts)
    return {
        "emulated_instructions": int(round(med)),
        "instructions_runs": counts,
        "instructions_spread": (max(counts) - min(counts)) / med if med else 0.0,
    }


def _run(model_path, target, sample, runs, warmup, samples, timeout_s):
    from edgekd.emulate.env import find_arm_env
    from edgekd.emulate.qemu import run_guest
    from edgekd.runtime import load_runner

    path, tgt = _resolve(model_path, target)
    env = find_arm_env()
    fmt, runtime = FORMATS[path.suffix]
    host = load_runner(path, threads=1)
    inputs, kind = _inputs(host, sample, max(1, samples))
    guest = run_guest(env, path, fmt, tgt.emulation.qemu_cpu, inputs, runs=runs, warmup=warmup,
                      timeout_s=timeout_s)
    return path, tgt, env, runtime, host, inputs, kind, guest


def instruction_count(model_path: str | Path, target: Any, runs: int | None = DEFAULT_RUNS, *, warmup: int = 1,
                      timeout_s: float = 900.0) -> dict[str, Any]:
    """Executed aarch64 instructions per inference on the target's core (one thread, setup excluded).

    Deterministic for TFLite files (identical run to run); the CI gate compares it as a hard check.
    """
    from edgekd.core import sha256_file

    runs = _runs(runs)
    path, tgt, env, runtime, _, _, _, guest = _run(model_path, target, None, runs, warmup, 1, timeout_s)
    return {
        "model": str(path),
        "sha256": sha256_file(path),
        "target": tgt.name,
        "qemu_cpu": tgt.emulation.qemu_cpu,
        "runtime": f"{runtime} ({guest.runtime}, aarch64)",
        "threads": 1,
        "runs": runs,
        "warmup": warmup,
        "kind": "emulated instructions",
        **_count_stats(guest.counts),
        "where": f"qemu-aarch64 {env.info.get('qemu', '')} -cpu {tgt.emulation.qemu_cpu} (TCG plugin count)",
    }


def emulate_profile(model_path: str | Path, target: Any, *, sample: Any = None, runs: int | None = DEFAULT_RUNS,
                    warmup: int | None = 1, samples: int = 8, timeout_s: float = 900.0) -> list[dict[str, Any]]:
    """Run `model_path` on the aarch64 runtime under qemu with the target's CPU model.

    sample: real inputs, float32 NCHW normalised (N, C, H, W), or a load_data spec ("fashion-mnist");
            None uses seeded random inputs (numerics then say so). The first `samples` are compared.
    runs: counted invokes, capped at MAX_RUNS (the count is deterministic; None = DEFAULT_RUNS).
    Returns one latency dict (ARCHITECTURE.md keys, kind="estimated") with "emulated_instructions",
    per-run counts and spread, and "numerics" (max abs error and top-1 agreement vs the host run).
    Raises EdgeKDError when the ARM environment is missing (`make arm-env`) or the target has no
    [emulation] table.
    """
    import numpy as np

    requested, runs, warmup = runs, _runs(runs), 1 if warmup is None else min(max(warmup, 0), MAX_RUNS)
    path, tgt, env, runtime, host, inputs, kind, guest = _run(model_path, target, sample, runs, warmup, samples,
                                                              timeout_s)
    host_out = np.stack([host.run_once(row) for row in inputs]).astype(np.float32)
    arm_out = guest.outputs.reshape(host_out.shape) if guest.outputs.size == host_out.size else guest.outputs
    if arm_out.shape != host_out.shape:
        raise EdgeKDError(f"emulated output shape {arm_out.shape} differs from the host's {host_out.shape}")
    flat_h, flat_a = host_out.reshape(len(host_out), -1), arm_out.reshape(len(arm_out), -1)
    numerics = {
        "samples": len(inputs),
        "inputs": kind,
        "max_abs_error": float(np.max(np.abs(flat_h - flat_a))) if flat_h.size else 0.0,
        "top1_agreement": float(np.mean(flat_h.argmax(1) == flat_a.argmax(1))),
        "host_runtime": f"{host.format} on {_host_machine()}",
    }

    emu = tgt.emulation
    per_ms = emu.clock_ghz * 1e6 * emu.instructions_per_cycle  # instructions retired per millisecond
    ms = sorted(c / per_ms for c in guest.counts)
    stats = _count_stats(guest.counts)
    return [{
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(np.mean(ms)),
        "runs": runs,
        "runs_requested": requested,
        "warmup": warmup,
        "threads": 1,
        "target_threads": tgt.threads,
        "backend": "qemu-emulation",
        "runtime": f"{runtime} ({guest.runtime}, aarch64)",
        "kind": "estimated",
        "where": (f"estimated from emulated instructions: qemu-aarch64 {env.info.get('qemu', '')} "
                  f"-cpu {emu.qemu_cpu} on {_host_machine()}, 1 thread; "
                  f"{emu.clock_ghz} GHz x {emu.instructions_per_cycle} instructions/cycle"),
        "target": tgt.name,
        "qemu_cpu": emu.qemu_cpu,
        **stats,
        "instructions_per_ms": per_ms,
        "calibration_source": emu.source,
        "numerics": numerics,
        "emulation_wall_s": round(guest.wall_s, 2),
        "model": str(path),
    }]


def _host_machine() -> str:
    import platform

    return f"{platform.machine()} host"
