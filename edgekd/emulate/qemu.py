"""Launch guest.py under qemu-aarch64 with the instruction-counting plugin and read back what it left."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekd.emulate.env import ArmEnv, qemu_binary
from edgekd.errors import EdgeKDError

GUEST = Path(__file__).with_name("guest.py")


@dataclass
class GuestRun:
    outputs: np.ndarray  # (N, ...) float32, the first output of the model for every input row
    counts: list[int]  # executed guest instructions of each timed invoke
    runtime: str  # e.g. "litert 2.3.0"
    wall_s: float  # host seconds the emulated process took (start-up included)


def _clean_env(env: ArmEnv) -> dict[str, str]:
    # a fresh environment: the host's PYTHONPATH / venv must not leak into the arm64 interpreter, and
    # fixed hash seed + single-threaded BLAS keep the guest's instruction stream repeatable
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(env.home),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(env.site),
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def qemu_argv(env: ArmEnv, cpu: str, marks_file: Path, script: list[str]) -> list[str]:
    return [
        qemu_binary(),
        "-cpu", cpu,
        "-L", str(env.cpu_root(cpu)),
        "-plugin", f"{env.plugin},out={marks_file}",
        str(env.python), *script,
    ]


def read_marks(path: Path, runs: int) -> list[int]:
    marks: dict[int, int] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "mark":
            marks[int(parts[1])] = int(parts[2])
    try:
        return [marks[2 * i + 1] - marks[2 * i] for i in range(runs)]
    except KeyError:
        raise EdgeKDError("the emulated run ended before all timed invokes were counted") from None


def run_guest(
    env: ArmEnv, model: Path, fmt: str, cpu: str, inputs: np.ndarray, *,
    runs: int, warmup: int, threads: int = 1, timeout_s: float = 600.0,
) -> GuestRun:
    if runs < 1 or warmup < 0:
        raise EdgeKDError(f"emulation needs runs >= 1 and warmup >= 0, got runs={runs} warmup={warmup}")
    with tempfile.TemporaryDirectory(prefix="edgekd-emu-") as tmp:
        job_dir = Path(tmp)
        np.save(job_dir / "inputs.npy", inputs)
        job = {"model": str(model.resolve()), "format": fmt, "threads": threads, "runs": runs, "warmup": warmup}
        (job_dir / "job.json").write_text(json.dumps(job))
        marks_file = job_dir / "marks.txt"
        argv = qemu_argv(env, cpu, marks_file, [str(GUEST), str(job_dir)])
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, env=_clean_env(env), stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise EdgeKDError(f"emulated run of {model.name} took longer than {timeout_s:.0f} s "
                              "(emulation is ~400x slower than native: lower runs or raise the timeout)") from None
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or not (job_dir / "result.json").is_file():
            lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
            last = lines[-1][:300] if lines else f"exit code {proc.returncode}"
            raise EdgeKDError(f"emulated {fmt} run of {model.name} on {cpu} failed: {last}")
        meta = json.loads((job_dir / "result.json").read_text())
        return GuestRun(
            outputs=np.load(job_dir / "outputs.npy"),
            counts=read_marks(marks_file, runs),
            runtime=meta["runtime"],
            wall_s=wall,
        )


def qemu_version() -> str:
    out = subprocess.run([qemu_binary(), "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    first = out.stdout.splitlines()[0] if out.stdout else "qemu-aarch64"
    return first.replace("qemu-aarch64 version ", "").strip()
