"""profile(): pick the backend a target needs and return every figure in one result format."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import EdgeKDError, UsageError
from edgekd.profile.report import ProfileReport, check_budgets, make_result
from edgekd.targets import Target, load_target

MODEL_SUFFIXES = (".onnx", ".tflite")
OP_PROFILE_RUNS = 10  # per-op breakdown (ONNX), in a separate session after the timed runs


def _load_sample(sample: Any) -> np.ndarray | None:
    """A float32 NCHW array, or a .npy / .npz file holding one (first array of an .npz)."""
    if sample is None:
        return None
    if isinstance(sample, (str, os.PathLike)):
        p = Path(sample)
        if not p.is_file():
            raise EdgeKDError(f"sample file {p} does not exist")
        try:
            if p.suffix == ".npz":
                with np.load(p) as z:
                    if not z.files:
                        raise EdgeKDError(f"sample file {p} holds no array")
                    sample = z[z.files[0]]
            else:
                sample = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise EdgeKDError(f"sample file {p} is not a numpy .npy/.npz file of numbers ({str(exc).split('.')[0]})") from None
    arr = np.asarray(sample)
    if arr.dtype == object or arr.size == 0:
        raise EdgeKDError("sample must be a non-empty numeric array")
    return arr


def _host(model: Path, runs: int, warmup: int, threads: int, max_s: float, inputs: Path | None,
          xnnpack: bool, op_profile: int, shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    from edgekd.profile.host import host_where, measure_local

    data = measure_local(model, runs=runs, warmup=warmup, threads=threads, max_seconds=max_s,
                         inputs=str(inputs) if inputs else None, xnnpack=xnnpack, op_profile=op_profile, shape=shape)
    return make_result("measured", host_where(data), "host", **data)


def _host_fallback(model: Path, target: Target, reason: str, *args) -> dict[str, Any]:
    """Measured on this machine because the target's device is not reachable: said in `where`."""
    runs, warmup, threads, *rest = args
    host_threads = min(threads, os.cpu_count() or 1)  # oversubscribing a small host would only add noise
    res = _host(model, runs, warmup, host_threads, *rest)
    capped = f", threads capped from {threads} to the host's {host_threads} cores" if host_threads < threads else ""
    res["where"] += f"{capped}; no {target.name} device reachable, measured on this host, NOT the device ({reason})"
    res["backend"] = "host-fallback"
    res["fallback_reason"] = reason
    return res


def _emulate(model: Path, target: Target, sample: np.ndarray | None, runs: int | None, warmup: int | None) -> list[dict]:
    """Issue 9's qemu estimate; runs=None lets it pick (its instruction count repeats exactly)."""
    try:
        from edgekd.emulate import emulate_profile
    except ImportError:
        raise EdgeKDError("--emulate needs edgekd.emulate (aarch64 under qemu-user), which this install lacks") from None
    if target.emulation is None:
        raise EdgeKDError(f"target {target.name} has no [emulation] table: nothing to emulate")
    params = inspect.signature(emulate_profile).parameters
    kwargs = {k: v for k, v in (("sample", sample), ("runs", runs), ("warmup", warmup))
              if k in params and v is not None}
    out = emulate_profile(model, target, **kwargs)
    out = out if isinstance(out, list) else [out]
    return [o.to_dict() if hasattr(o, "to_dict") else dict(o) for o in out]


def _arm_env_ready() -> bool:
    try:
        from edgekd.emulate import arm_env_available
    except ImportError:
        return False
    return bool(arm_env_available())


def profile(model_path: str | os.PathLike, target: str | os.PathLike | Target, *, sample: Any = None,
            runs: int | None = None, warmup: int | None = None, threads: int | None = None,
            emulate: bool | str = False, output_dir: str | os.PathLike | None = None,
            require_device: bool = False, benchmark_model: str = "",
            input_shape: tuple[int, ...] | None = None) -> ProfileReport:
    """Profile one .onnx/.tflite file for a target.

    sample: a real input (float32 NCHW array or .npy/.npz; row 0 is timed, all rows calibrate/compare
    on NPUs) — random data when None. runs/warmup/threads default to the target's. output_dir keeps
    compiled files (QNN context binary, Vela .tflite). require_device: fail instead of measuring on
    the host when an adb/ssh device is unreachable. input_shape: the shape of inputs declared with dynamic
    dims besides the batch (e.g. (1, 128) for a transformer's token ids); required for such files.
    emulate: True adds the qemu estimate (errors are errors); "auto" adds it where the target has [emulation]
    and the ARM environment is installed, and turns its failure into a note (compress uses this: one missing
    extra must not lose the rest).
    """
    if emulate not in (True, False, "auto"):
        raise UsageError(f"emulate must be True, False or 'auto', got {emulate!r}")
    model = Path(model_path)
    if model.suffix.lower() not in MODEL_SUFFIXES:
        raise EdgeKDError(f"cannot profile {model.name}: want a .onnx or .tflite file")
    from edgekd.core.inputs import check_model_file

    check_model_file(model)
    t = load_target(target)
    user_runs, user_warmup = runs, warmup
    runs = t.benchmark.runs if runs is None else runs
    warmup = t.benchmark.warmup if warmup is None else warmup
    threads = t.threads if threads is None else threads
    if runs < 1 or warmup < 0 or threads < 1:
        raise UsageError(f"need runs >= 1, warmup >= 0, threads >= 1 (got runs={runs}, warmup={warmup}, threads={threads})")
    arr = _load_sample(sample)
    out_dir = Path(output_dir) if output_dir is not None else None
    report = ProfileReport(model=str(model), target=t.name)
    max_s = t.benchmark.max_seconds
    xnnpack = t.runtime != "litert" or "xnnpack" in t.delegates or not t.delegates

    with tempfile.TemporaryDirectory(prefix="edgekd-profile-") as tmp:
        inputs = None
        if arr is not None:
            inputs = Path(tmp) / "inputs.npz"
            np.savez(inputs, arr.astype(np.float32) if arr.dtype == np.float64 else arr)
        op_runs = min(runs, OP_PROFILE_RUNS)
        host_args = (runs, warmup, threads, max_s, inputs, xnnpack, op_runs, input_shape)

        if t.runtime == "qnn":
            from edgekd.profile.qnn import profile_qnn

            report.results.append(profile_qnn(model, t, sample=arr, runs=runs, warmup=warmup, output_dir=out_dir))
        elif t.runtime == "vela":
            from edgekd.profile.vela import profile_vela

            report.results.append(profile_vela(model, t, output_dir=out_dir))
        elif t.connection.kind == "ssh":
            from edgekd.profile.ssh import HostUnreachable, profile_ssh

            try:
                data = profile_ssh(model, t.connection, runs=runs, warmup=warmup, threads=threads, max_seconds=max_s,
                                   inputs=inputs, xnnpack=xnnpack, op_profile=op_runs, shape=input_shape)
                where = data.pop("where")
                report.results.append(make_result("measured", where, "ssh", **data))
            except HostUnreachable as exc:
                if require_device:
                    raise
                report.notes.append(str(exc))
                report.results.append(_host_fallback(model, t, f"ssh host not reachable: {exc}", *host_args))
        elif t.connection.kind == "adb":
            from edgekd.profile.adb import DeviceUnreachable, profile_adb

            if model.suffix != ".tflite":  # checked before any fallback, so the answer does not depend on a phone
                raise EdgeKDError(f"{t.name} runs TFLite's benchmark_model: {model.name} is not a .tflite file")
            try:
                report.results.extend(profile_adb(model, t, runs=runs, warmup=warmup, threads=threads,
                                                  max_seconds=max_s, benchmark_binary=benchmark_model))
            except DeviceUnreachable as exc:
                if require_device:
                    raise
                report.notes.append(str(exc))
                report.results.append(_host_fallback(model, t, str(exc), *host_args))
        else:
            report.results.append(_host(model, *host_args))

        if emulate is True:
            report.results.extend(_emulate(model, t, arr, user_runs, user_warmup))
        elif emulate == "auto" and t.emulation is not None and _arm_env_ready():
            try:
                report.results.extend(_emulate(model, t, arr, user_runs, user_warmup))
            except EdgeKDError as exc:
                report.notes.append(f"ARM emulation estimate skipped: {exc}")
    report.budgets = check_budgets(t.budgets, report.results)
    return report
