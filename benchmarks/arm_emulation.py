"""ARM without a board (issue 9): instructions per inference on Cortex-A76 NEON under qemu, int8/fp32 on ARM vs host.

For the built-in example's student (cnn-s, trained briefly on real Fashion-MNIST), the other built-in
students (cnn-xs/m/l, mobilenet-xs/s/m) and a MobileNetV2 1.0 at 224x224 (random weights: instruction
counts do not depend on weight values), each as fp32 and full-int8 TFLite made with edgekd's own export
(litert-torch) and quantize (ai-edge-quantizer, calibrated on real images):
  - emulated instructions per inference on qemu-aarch64 -cpu cortex-a76 (LiteRT 2.3.0 aarch64 + XNNPACK, 1 thread)
    and the spread over the counted runs; for the student also a second emulator process (cross-run repeat)
  - int8/fp32 on ARM (ratio of instruction counts) beside int8/fp32 on this x86 host (measured LiteRT
    latency, 1 thread, the two files timed interleaved A B A B ..., medians)
  - numerics of the aarch64 run vs the host run on real test images
  - for MobileNetV2 1.0 224 fp32, a public single-thread XNNPACK figure beside the estimate
Bounded: --budget-s (default 1500 s) stops starting new models once spent (they are listed as skipped).
Usage: .venv/bin/python benchmarks/arm_emulation.py [--budget-s 1500] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "arm_emulation.json"

# MobileNetV2 1.0 224, fp32, single thread, XNNPACK end2end_bench (random weights), on the big core of a Pixel 3a
# (Snapdragon 670: Kryo 360 Gold = Cortex-A75 derivative, 2.0 GHz). No single-thread A76 figure for this model was
# found; qemu 7.2 has no cortex-a75 model and the A75 runs the same ARMv8.2 dot-product NEON kernels.
PUBLIC = {
    "mobilenetv2-1.0-224": {
        "fp32_ms": 55.0, "core": "Cortex-A75 (Pixel 3a big core, 2.0 GHz)", "clock_ghz": 2.0, "threads": 1,
        "source": "XNNPACK README, 'Performance / Mobile phones' single-threaded table (benchmarked March 27, 2020, "
                  "end2end_bench, random weights): MobileNet v2 1.0X on Pixel 3a = 55 ms",
    },
}


# --- models ------------------------------------------------------------------------------------

def mobilenet_v2(num_classes: int = 1000, width: float = 1.0):
    """MobileNetV2 (Sandler et al. 2018), the standard 224x224 layout: t, c, n, s per stage."""
    import torch.nn as nn

    def cbr(i, o, k=3, s=1, g=1):
        return nn.Sequential(nn.Conv2d(i, o, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(o), nn.ReLU6())

    class Block(nn.Module):
        def __init__(self, i, o, s, t):
            super().__init__()
            h = i * t
            layers = ([cbr(i, h, 1)] if t != 1 else []) + [cbr(h, h, 3, s, h),
                                                          nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o)]
            self.body, self.res = nn.Sequential(*layers), s == 1 and i == o

        def forward(self, x):
            return x + self.body(x) if self.res else self.body(x)

    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    c = int(32 * width)
    layers = [cbr(3, c, 3, 2)]
    for t, ch, n, s in cfg:
        for j in range(n):
            layers.append(Block(c, int(ch * width), s if j == 0 else 1, t))
            c = int(ch * width)
    layers += [cbr(c, 1280, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, num_classes)]
    return nn.Sequential(*layers).eval()


def train_student(model, bundle, steps: int, seed: int = 0):
    """A short plain-CE fit, so the student's numerics check compares meaningful predictions."""
    import torch

    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    x, y = torch.from_numpy(bundle.train.x), torch.from_numpy(bundle.train.y)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.inference_mode():
        acc = float((model(torch.from_numpy(bundle.test.x[:2000])).argmax(1).numpy() == bundle.test.y[:2000]).mean())
    return acc


def export_pair(model, x_nchw: np.ndarray, calib: np.ndarray, work: Path, name: str) -> tuple[Path, Path]:
    import torch

    from edgekd.export.tflite_export import litert_convert
    from edgekd.quantize.tflite_quant import quantize_tflite

    fp32, int8 = work / f"{name}_fp32.tflite", work / f"{name}_int8.tflite"
    litert_convert(model.eval(), (torch.from_numpy(x_nchw[:1]),), fp32, nhwc=True)
    quantize_tflite(fp32, int8, mode="int8", calib=calib, int8_io=True)  # full-integer, as shipped to phones
    return fp32, int8


# --- host timing --------------------------------------------------------------------------------

def host_ratio(fp32: Path, int8: Path, x1: np.ndarray, rounds: int, inner: int) -> dict:
    """int8/fp32 latency on this host: LiteRT 1 thread, A B A B ... interleaved, medians of per-round means."""
    from edgekd.runtime import load_runner

    runners = {k: load_runner(p, threads=1) for k, p in (("fp32", fp32), ("int8", int8))}
    prepared = {k: r.prepare(x1) for k, r in runners.items()}
    for k, r in runners.items():
        for _ in range(3):
            r.run_once(prepared[k])
    times = {"fp32": [], "int8": []}
    for _ in range(rounds):
        for k, r in runners.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                r.run_once(prepared[k])
            times[k].append((time.perf_counter() - t0) / inner * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"fp32_ms": med["fp32"], "int8_ms": med["int8"], "int8_over_fp32": med["int8"] / med["fp32"],
            "rounds": rounds, "invokes_per_round": inner,
            "where": f"measured: this {platform.machine()} host, LiteRT (XNNPACK) 1 thread, interleaved"}


# --- main ---------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget-s", type=float, default=1500.0, help="stop starting new models after this")
    ap.add_argument("--quick", action="store_true", help="only the student and two other architectures")
    ap.add_argument("--target", default="android")
    args = ap.parse_args()

    import torch

    from edgekd.data import load_data
    from edgekd.emulate import emulate_profile, find_arm_env, instruction_count
    from edgekd.models import count_macs_params, create_model
    from edgekd.targets import load_target

    torch.set_num_threads(1)
    env = find_arm_env()
    target = load_target(args.target)
    t_start = time.monotonic()
    load_start = os.getloadavg()
    bundle = load_data("fashion-mnist", seed=0)
    calib28 = bundle.calibration(64, seed=0)
    test28 = bundle.test.x[:8]

    # real images for the 224 model too: Fashion-MNIST upsampled to 224x224, grey copied to 3 channels
    up = torch.nn.functional.interpolate(torch.from_numpy(bundle.test.x[:8]), size=224, mode="bilinear")
    test224 = up.repeat(1, 3, 1, 1).numpy()
    cal = torch.nn.functional.interpolate(torch.from_numpy(calib28[:16]), size=224, mode="bilinear")
    calib224 = cal.repeat(1, 3, 1, 1).numpy()

    names = ["cnn-xs", "cnn-m", "cnn-l", "mobilenet-xs", "mobilenet-s", "mobilenet-m"]
    if args.quick:
        names = ["cnn-xs", "mobilenet-s"]
    plan = [("cnn-s", "example student (compress default), trained 300 steps")] + [(n, "built-in student, random weights") for n in names]
    plan.append(("mobilenetv2-1.0-224", "MobileNetV2 1.0 224x224x3, random weights"))

    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="edgekd-armbench-") as tmp:
        work = Path(tmp)
        for name, note in plan:
            if time.monotonic() - t_start > args.budget_s:
                skipped.append(name)
                continue
            t0 = time.monotonic()
            big = name == "mobilenetv2-1.0-224"
            if big:
                model, x, calib, shape = mobilenet_v2(), test224, calib224, (3, 224, 224)
            else:
                model, x, calib, shape = create_model(name, in_channels=1, num_classes=10), test28, calib28, (1, 28, 28)
            row = {"model": name, "note": note, "input": list(shape)}
            row["macs"], row["params"] = (int(v) for v in count_macs_params(model, shape))
            if name == "cnn-s":
                row["test_accuracy_torch"] = train_student(model, bundle, steps=300)
            print(f"[{name}] export fp32 + int8", flush=True)
            fp32, int8 = export_pair(model, x, calib, work, name)
            row["size_bytes"] = {"fp32": fp32.stat().st_size, "int8": int8.stat().st_size}
            n_samples = 2 if big else 8
            arm = {}
            for prec, path in (("fp32", fp32), ("int8", int8)):
                print(f"[{name}] emulate {prec}", flush=True)
                r = emulate_profile(path, target, sample=x, samples=n_samples, runs=3, warmup=1)[0]
                arm[prec] = {
                    "emulated_instructions": r["emulated_instructions"],
                    "instructions_runs": r["instructions_runs"],
                    "instructions_spread": r["instructions_spread"],
                    "instructions_per_mac": r["emulated_instructions"] / max(row["macs"], 1),
                    "estimated_ms_1thread": r["p50_ms"],
                    "numerics_vs_host": r["numerics"],
                    "emulation_wall_s": r["emulation_wall_s"],
                }
                if name == "cnn-s":  # a second emulator process: does the count repeat across runs?
                    again = instruction_count(path, target, runs=3, warmup=1)
                    arm[prec]["second_process_instructions"] = again["emulated_instructions"]
                    arm[prec]["cross_process_rel_diff"] = (
                        abs(again["emulated_instructions"] - r["emulated_instructions"]) / r["emulated_instructions"])
            row["arm"] = arm
            row["arm_int8_over_fp32_instructions"] = arm["int8"]["emulated_instructions"] / arm["fp32"]["emulated_instructions"]
            print(f"[{name}] host timing", flush=True)
            row["host"] = host_ratio(fp32, int8, x[:1], rounds=15 if big else 31, inner=2 if big else 20)
            if name in PUBLIC:
                pub = PUBLIC[name]
                instr = arm["fp32"]["emulated_instructions"]
                row["public_figure"] = {
                    **pub,
                    "estimate_ms_at_target_calibration": arm["fp32"]["estimated_ms_1thread"],
                    "estimate_ms_at_public_core_clock_2ipc": instr / (pub["clock_ghz"] * 1e6 * 2.0),
                    "implied_instructions_per_cycle": instr / (pub["fp32_ms"] * pub["clock_ghz"] * 1e6),
                }
            row["bench_wall_s"] = round(time.monotonic() - t0, 1)
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("model", "arm_int8_over_fp32_instructions")} |
                             {"instr_fp32": arm["fp32"]["emulated_instructions"],
                              "instr_int8": arm["int8"]["emulated_instructions"],
                              "host_int8_over_fp32": round(row["host"]["int8_over_fp32"], 3)}), flush=True)

    result = {
        "what": "instructions per inference on qemu-aarch64 -cpu cortex-a76 (LiteRT aarch64 + XNNPACK, 1 thread); "
                "int8/fp32 on ARM (instruction ratio) vs on this host (measured latency ratio)",
        "kinds": {"arm": "emulated instructions (counted) and estimated latency", "host": "measured"},
        "target": target.name,
        "calibration": {"clock_ghz": target.emulation.clock_ghz,
                        "instructions_per_cycle": target.emulation.instructions_per_cycle,
                        "source": target.emulation.source},
        "environment": {"qemu": env.info.get("qemu"), "guest_python": env.info.get("guest_python"),
                        "wheels": env.info.get("wheels"), "host": platform.platform(),
                        "host_cores": os.cpu_count(), "loadavg_at_start": load_start},
        "rows": rows,
        "skipped_for_time": skipped,
        "wall_s": round(time.monotonic() - t_start, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT} in {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
