"""profile(): resolve the settings, let the target's backend (edgekd/backends.py) measure, gather the results."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.backends import backend_for, get_backend
from edgekd.errors import EdgeKDError, UsageError
from edgekd.profile.backends.emulation import NAME as EMULATION
from edgekd.profile.report import ProfileReport, check_budgets
from edgekd.profile.request import ProfileRequest
from edgekd.targets import Target, load_target

MODEL_SUFFIXES = (".onnx", ".tflite", ".pte", ".mlpackage")
OP_PROFILE_RUNS = 10  # per-op breakdown (ONNX), in a separate session after the timed runs
MAX_THREADS = 256  # more than any target's cores: a typo, not a setting


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
        raise EdgeKDError(f"cannot profile {model.name}: want a .onnx, .tflite, .pte or .mlpackage file")
    from edgekd.core.inputs import check_model_file

    check_model_file(model)
    t = load_target(target)
    user_runs, user_warmup = runs, warmup
    runs = t.benchmark.runs if runs is None else runs
    warmup = t.benchmark.warmup if warmup is None else warmup
    threads = t.threads if threads is None else threads
    if runs < 1 or warmup < 0 or threads < 1:
        raise UsageError(f"need runs >= 1, warmup >= 0, threads >= 1 (got runs={runs}, warmup={warmup}, threads={threads})")
    if threads > MAX_THREADS:  # a typo: ONNX Runtime would start them all and the run hang until its time-out
        raise UsageError(f"threads {threads} is more than any target has (at most {MAX_THREADS})")
    arr = _load_sample(sample)
    req = ProfileRequest(model=model, target=t, runs=runs, warmup=warmup, threads=threads, sample=arr,
                         op_profile=min(runs, OP_PROFILE_RUNS), input_shape=input_shape,
                         output_dir=Path(output_dir) if output_dir is not None else None,
                         require_device=require_device, benchmark_model=benchmark_model, emulate=emulate,
                         user_runs=user_runs, user_warmup=user_warmup)
    report = ProfileReport(model=str(model), target=t.name)
    with tempfile.TemporaryDirectory(prefix="edgekd-profile-") as tmp:
        if arr is not None:
            req.inputs = Path(tmp) / "inputs.npz"
            np.savez(req.inputs, arr.astype(np.float32) if arr.dtype == np.float64 else arr)
        # a Core ML package runs on no target reachable from here, whatever the target says
        runner = get_backend("coreml") if model.suffix.lower() == ".mlpackage" else backend_for(t)
        report.results.extend(runner.profile(req))
        if emulate:
            report.results.extend(get_backend(EMULATION).profile(req))
    report.notes.extend(req.notes)
    report.budgets = check_budgets(t.budgets, report.results)
    return report
