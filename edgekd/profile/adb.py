"""Android over adb: push the model and TFLite's benchmark_model, run it on the big cores, parse it.

Every command is an argument list; what runs on the device goes through `adb shell`, which joins its
arguments into one device-side shell line, so each argument is quoted with shlex first.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError
from edgekd.profile import benchmark_model as bm
from edgekd.targets import Target

# candidate places a benchmark_model may already lie on a device
DEVICE_BENCHMARK_PATHS = ("/data/local/tmp/benchmark_model", "/data/local/tmp/android_aarch64_benchmark_model")
# constant (no user input): "<cpu number> <max kHz>" per core
_CPU_FREQ_SCRIPT = ("for c in /sys/devices/system/cpu/cpu[0-9]*; do "
                    "echo ${c##*cpu} $(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null || echo 0); done")


class DeviceUnreachable(EdgeKDError):
    """No adb, or no device attached: the caller may fall back to a labelled host measurement."""


class Adb:
    def __init__(self, serial: str = "", adb: str | None = None, timeout: float = 300):
        serial = serial or os.environ.get("ANDROID_SERIAL", "")  # adb's own convention for picking a device
        exe = adb or shutil.which("adb")
        if not exe:
            raise DeviceUnreachable("adb is not installed (no `adb` on PATH)")
        if serial.startswith("-"):
            raise EdgeKDError(f"adb serial {serial!r} must not start with '-'")
        self.base = [exe] + (["-s", serial] if serial else [])
        self.exe, self.serial, self.timeout = exe, serial, timeout

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        try:
            p = subprocess.run(self.base + args, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise EdgeKDError(f"adb {args[0]} timed out after {self.timeout:g} s") from None
        if check and p.returncode != 0:
            msg = (p.stderr.strip() or p.stdout.strip() or f"exit code {p.returncode}").splitlines()[-1]
            raise EdgeKDError(f"adb {args[0]} failed: {msg[:300]}")
        return p

    def devices(self) -> list[str]:
        p = subprocess.run([self.exe, "devices"], capture_output=True, text=True, timeout=60)
        out = []
        for ln in p.stdout.splitlines()[1:]:
            parts = ln.split()
            if len(parts) >= 2 and parts[1] == "device":
                out.append(parts[0])
        return out

    def check_device(self) -> str:
        devs = self.devices()
        if self.serial:
            if self.serial not in devs:
                raise DeviceUnreachable(f"android device {self.serial} is not attached (adb devices: {', '.join(devs) or 'none'})")
            return self.serial
        if not devs:
            raise DeviceUnreachable("no android device attached (adb devices lists none)")
        if len(devs) > 1:
            raise EdgeKDError(f"several android devices attached ({', '.join(devs)}): set connection.serial in the target")
        return devs[0]

    def shell(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        return self._run(["shell", shlex.join(argv)], check=check)

    def shell_script(self, script: str) -> subprocess.CompletedProcess:
        """Only for constant scripts written in this module (never user input)."""
        return self._run(["shell", script])

    def push(self, local: str | Path, remote: str) -> None:
        self._run(["push", str(local), remote])

    def getprop(self, name: str) -> str:
        return self.shell(["getprop", name], check=False).stdout.strip()


def _error_line(p: subprocess.CompletedProcess) -> str:
    """The most specific error benchmark_model printed (not its closing 'Benchmarking failed.')."""
    lines = [ln.strip() for ln in (p.stderr + "\n" + p.stdout).splitlines() if ln.strip()]
    errs = [ln for ln in lines if "ERROR" in ln and "Benchmarking failed" not in ln]
    return (errs or lines or [f"exit code {p.returncode}"])[0][:300]


def big_core_mask(adb: Adb, threads: int) -> tuple[str, list[int]]:
    """taskset mask of the `threads` fastest cores (highest cpuinfo_max_freq); all cores if unknown."""
    cores = []
    for ln in adb.shell_script(_CPU_FREQ_SCRIPT).stdout.splitlines():
        parts = ln.split()
        if len(parts) == 2 and parts[0].isdigit():
            cores.append((int(parts[1]) if parts[1].isdigit() else 0, int(parts[0])))
    if not cores:
        return "", []
    # fastest first; ties keep the higher-numbered core (big clusters sit at the top on Android SoCs)
    cores.sort(key=lambda fc: (fc[0], fc[1]), reverse=True)
    chosen = sorted(c for _, c in cores[: max(threads, 1)])
    return format(sum(1 << c for c in chosen), "x"), chosen


def _find_benchmark_model(adb: Adb, workdir: str, local: str) -> str:
    if local:
        path = Path(local).expanduser()
        if not path.is_file():
            raise EdgeKDError(f"benchmark_model binary {path} does not exist")
        remote = f"{workdir}/benchmark_model"
        adb.push(path, remote)
        adb.shell(["chmod", "755", remote])
        return remote
    for cand in DEVICE_BENCHMARK_PATHS:
        if adb.shell(["test", "-x", cand], check=False).returncode == 0:
            return cand
    raise EdgeKDError(
        "no benchmark_model on the device (looked in " + ", ".join(DEVICE_BENCHMARK_PATHS)
        + "): set connection.benchmark_model in the target to a host path of TFLite's android_aarch64 benchmark_model")


def profile_adb(model: Path, target: Target, *, runs: int, warmup: int, threads: int, max_seconds: float,
                adb: Adb | None = None, benchmark_binary: str = "") -> list[dict[str, Any]]:
    """One result per delegate: the target's delegates, then its optional ones where the device has them."""
    from edgekd.profile.report import make_result

    if model.suffix != ".tflite":
        raise EdgeKDError(f"android profiling runs TFLite's benchmark_model: {model.name} is not a .tflite file")
    conn = target.connection
    adb = adb or Adb(conn.serial)
    serial = adb.check_device()
    device = " ".join(x for x in (adb.getprop("ro.product.manufacturer"), adb.getprop("ro.product.model")) if x) or serial
    soc = adb.getprop("ro.soc.model") or adb.getprop("ro.board.platform")

    workdir = f"{conn.remote_dir.rstrip('/')}/edgekd-{uuid.uuid4().hex[:8]}"
    adb.shell(["mkdir", "-p", workdir])
    try:
        remote_model = f"{workdir}/model.tflite"
        adb.push(model, remote_model)
        binary = _find_benchmark_model(adb, workdir, benchmark_binary or conn.benchmark_model)
        mask, cores = ("", [])
        if target.cpu_affinity == "auto":
            mask, cores = big_core_mask(adb, threads)
        elif target.cpu_affinity:
            mask = target.cpu_affinity
        prefix = ["taskset", mask] if mask else []

        results = []
        delegates = list(target.delegates or ["xnnpack"])
        optional = [d for d in target.optional_delegates if d not in delegates]
        for delegate in delegates + optional:
            argv = prefix + bm.command(binary, remote_model, threads=threads, runs=runs, warmup=warmup,
                                       max_seconds=max_seconds, delegate=delegate)
            p = adb.shell(argv, check=False)
            where = (f"android {device}{' (' + soc + ')' if soc else ''} serial {serial}, "
                     f"TFLite benchmark_model, {delegate}, {threads} threads"
                     + (f" pinned to cores {','.join(map(str, cores)) or mask} (taskset {mask})" if mask else ""))
            try:
                figures = bm.parse(p.stdout)
            except ValueError:
                err = _error_line(p)
                if delegate in optional:  # "where present": a missing GPU/NNAPI is reported, not fatal
                    results.append(make_result("measured", where, f"adb-{delegate}", runtime="tflite-benchmark_model",
                                               delegates=[delegate], available=False, error=err, threads=threads))
                    continue
                raise EdgeKDError(f"benchmark_model on {serial} failed with {delegate}: {err}") from None
            figures.setdefault("file_size_bytes", model.stat().st_size)
            results.append(make_result(
                "measured", where, f"adb-{delegate}", runtime="tflite-benchmark_model", delegates=[delegate],
                threads=threads, warmup=warmup, runs_requested=runs, cpu_mask=mask or None, command=argv,
                available=True, **figures))
        return results
    finally:
        adb.shell(["rm", "-rf", workdir], check=False)
