"""Arm Ethos-U, offline: compile a full-int8 TFLite with Vela and read its performance estimate
(NPU vs CPU operators, cycles, inference time, memory) from the CSV files it writes. Estimated, not
measured: Vela's static model of the NPU and its memory system at the configured clock.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError
from edgekd.targets import Target


def _vela_exe() -> list[str]:
    beside = Path(sys.executable).parent / "vela"  # the venv's own, even when PATH lacks it
    exe = str(beside) if beside.exists() else shutil.which("vela")
    if not exe:
        raise EdgeKDError("Ethos-U profiling needs Vela: pip install 'edgekd[npu]' (ethos-u-vela)")
    return [exe]


def vela_command(model: Path, target: Target, out_dir: Path) -> list[str]:
    npu = target.npu
    argv = [*_vela_exe(), str(model.resolve()), "--accelerator-config", npu["accelerator_config"],
            "--output-dir", str(out_dir), "--verbose-performance", "--show-cpu-operations"]
    if npu.get("system_config"):
        argv += ["--system-config", npu["system_config"]]
    if npu.get("memory_mode"):
        argv += ["--memory-mode", npu["memory_mode"]]
    return argv


def _num(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def parse_outputs(out_dir: Path, stdout: str) -> dict[str, Any]:
    summaries = sorted(out_dir.glob("*_summary_*.csv"))
    if not summaries:
        raise EdgeKDError("Vela wrote no summary CSV")
    with open(summaries[0], newline="") as f:
        s = next(csv.DictReader(f))
    layers = []
    for p in out_dir.glob("*_per-layer.csv"):
        with open(p, newline="") as f:
            for row in csv.DictReader(f):
                layers.append({"op": row.get("Original Operator"), "npu_op": row.get("NNG Operator"),
                               "target": row.get("Target"), "cycles": _num(row.get("Op Cycles")),
                               "macs": _num(row.get("MAC Count")), "name": row.get("Name")})
    counts = {k.lower(): int(v) for k, v in re.findall(r"^(CPU|NPU) operators = (\d+)", stdout, re.M)}
    if not counts:  # older Vela: count the per-layer rows
        c = Counter(layer["target"] for layer in layers)
        counts = {"cpu": c.get("CPU", 0), "npu": c.get("NPU", 0)}
    kib = 1024
    t = _num(s.get("inference_time"))
    return {
        "p50_ms": None if t is None else t * 1e3,  # Vela's estimate: one number, no distribution
        "mean_ms": None if t is None else t * 1e3,
        "inference_time_ms": None if t is None else t * 1e3,
        "inferences_per_second": _num(s.get("inferences_per_second")),
        "cycles_total": _num(s.get("cycles_total")),
        "cycles_npu": _num(s.get("cycles_npu")),
        "core_clock_hz": _num(s.get("core_clock")),
        "nn_macs": _num(s.get("nn_macs")),
        "npu_ops": counts.get("npu", 0),
        "cpu_ops": counts.get("cpu", 0),
        "cpu_op_types": dict(Counter(layer["op"] for layer in layers if layer["target"] == "CPU")),
        "npu_op_types": dict(Counter(layer["op"] for layer in layers if layer["target"] == "NPU")),
        "sram_used_bytes": None if _num(s.get("sram_memory_used")) is None else int(_num(s.get("sram_memory_used")) * kib),
        "dram_used_bytes": None if _num(s.get("dram_memory_used")) is None else int(_num(s.get("dram_memory_used")) * kib),
        "off_chip_flash_used_bytes": None if _num(s.get("off_chip_flash_memory_used")) is None
        else int(_num(s.get("off_chip_flash_memory_used")) * kib),
        "weights_encoded_bytes": _num(s.get("total_npu_encoded_weights")),
        "layers": layers,
        "system_config": s.get("system_config"),
        "memory_mode": s.get("memory_mode"),
    }


def profile_vela(model: Path, target: Target, *, output_dir: Path | None = None) -> dict[str, Any]:
    from edgekd.profile.report import make_result

    if model.suffix != ".tflite":
        raise EdgeKDError(f"Ethos-U profiling compiles a full-int8 TFLite with Vela: {model.name} is not a .tflite file")
    tmp = Path(tempfile.mkdtemp(prefix="edgekd-vela-"))
    try:
        argv = vela_command(model, target, tmp)
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise EdgeKDError(f"Vela did not finish compiling {model.name} in 600 s") from None
        if p.returncode != 0:
            msg = (p.stderr.strip() or p.stdout.strip() or f"exit code {p.returncode}").splitlines()[-1][:300]
            raise EdgeKDError(f"Vela failed on {model.name}: {msg}")
        figures = parse_outputs(tmp, p.stdout)
        if figures["npu_ops"] == 0:
            raise EdgeKDError(f"Vela placed no operator of {model.name} on the NPU: Ethos-U needs a full-int8 TFLite "
                              "(float operators fall back to the CPU)")
        compiled = next(tmp.glob("*_vela.tflite"), None)
        if compiled is not None:
            figures["compiled_bytes"] = compiled.stat().st_size
            if output_dir is not None:
                output_dir.mkdir(parents=True, exist_ok=True)
                part = output_dir / (compiled.name + ".partial")
                shutil.copyfile(compiled, part)
                part.replace(output_dir / compiled.name)
                figures["compiled_file"] = str(output_dir / compiled.name)
        version = subprocess.run([*_vela_exe(), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    acc = target.npu["accelerator_config"]
    clock = figures["core_clock_hz"]
    where = (f"Vela {version} static estimate for {acc}, {figures['system_config']} / {figures['memory_mode']}"
             + (f" at {clock / 1e6:g} MHz" if clock else "") + "; estimated, not measured on hardware")
    return make_result("estimated", where, "vela", runtime=f"vela {version}", delegates=[acc], threads=1,
                       runs=None, warmup=None, file_size_bytes=model.stat().st_size, command=argv[1:], **figures)
