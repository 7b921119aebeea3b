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
  - for MobileNetV2 1.0 224 and MobileNet v3 small/large fp32, a public single-thread XNNPACK figure beside the estimate
Plus timm models from the coverage suite (benchmarks/conversion_coverage.py; pretrained=False, real Fashion-MNIST
images as ImageNet-normalised RGB at --timm-res), exported and quantized the same way (timm and torchvision are
in .venv: the timm extra). To redo only the timm rows:
  .venv/bin/python benchmarks/arm_emulation.py --only-timm --merge
--merge keeps the rows of the existing JSON that this run does not redo, recomputing their estimated latency from
their stored (deterministic) instruction counts with the target file's current calibration.
Bounded: --budget-s (default 1500 s) stops starting new models once spent (they are listed as skipped).
Usage: .venv/bin/python benchmarks/arm_emulation.py [--budget-s 1500] [--quick] [--no-timm]
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
# Same table, same phone and core; XNNPACK's models are the paper's MobileNet v3 (224x224), as timm's
# mobilenetv3_*_100 are (timm adds nothing at inference but its own head layout: conv_head 1024/1280).
for _name, _ms, _label in (("mobilenetv3_small_100", 14.0, "Small"), ("mobilenetv3_large_100", 44.0, "Large")):
    PUBLIC[_name] = {**PUBLIC["mobilenetv2-1.0-224"], "fp32_ms": _ms,
                     "source": "XNNPACK README, 'Performance / Mobile phones' single-threaded table (benchmarked "
                               f"March 27, 2020, end2end_bench, random weights): MobileNet v3 {_label} on Pixel 3a "
                               f"= {_ms:g} ms"}

# timm mobile / edge families from the coverage suite, cheapest first so a spent budget skips the dearest
TIMM_MODELS = ["mobilenetv3_small_100", "mnasnet_050", "ghostnet_100", "mobilenetv3_large_100",
               "efficientnet_lite0", "mobilenetv2_100"]


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

    from edgekd.export.converters.litert import litert_convert
    from edgekd.quantize.tflite_quant import quantize_tflite

    fp32, int8 = work / f"{name}_fp32.tflite", work / f"{name}_int8.tflite"
    litert_convert(model.eval(), (torch.from_numpy(x_nchw[:1]),), fp32, nhwc=True)
    quantize_tflite(fp32, int8, mode="int8", calib=calib, int8_io=True)  # full-integer, as shipped to phones
    return fp32, int8


def timm_model(name: str):
    import timm
    import torch

    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=1000).eval()


def estimate_ms(instr: float, cal) -> float:
    return instr / (cal.clock_ghz * 1e6 * cal.instructions_per_cycle)


def recalibrate(row: dict, cal) -> dict:
    """A kept row's estimates recomputed from its stored instruction counts (counts do not depend on calibration)."""
    for prec in row.get("arm", {}).values():
        prec["estimated_ms_1thread"] = estimate_ms(prec["emulated_instructions"], cal)
    row["estimate_recomputed"] = ("estimated_ms_1thread recomputed from the stored instruction counts with the "
                                  "target file's current calibration; counts are from the run that made the row")
    return row


# instructions/cycle of the public core implied by the calibration point (MobileNetV2 1.0 fp32: 120.46 M / 55 ms
# at 2.0 GHz), i.e. the target's calibration before its A76 uplift: other models' figures check it out of sample
PUBLIC_CORE_IPC = 1.10


def public_row(name: str, pub: dict, instr: float, est_ms: float) -> dict:
    at_core = instr / (pub["clock_ghz"] * 1e6 * PUBLIC_CORE_IPC)
    return {**pub, "estimate_ms_at_target_calibration": est_ms,
            "implied_instructions_per_cycle": instr / (pub["fp32_ms"] * pub["clock_ghz"] * 1e6),
            "estimate_ms_at_public_core": at_core,
            "estimate_at_public_core_over_public": at_core / pub["fp32_ms"],
            "estimate_at_public_core_note": (
                f"instructions / ({pub['clock_ghz']} GHz x {PUBLIC_CORE_IPC} instructions/cycle), like for like with "
                "the public figure's core; " + ("this model IS the calibration point (in-sample)"
                                                if name in ("mobilenetv2-1.0-224", "mobilenetv2_100")
                                                else "out of sample: calibrated on MobileNetV2 only"))}


def output_lsb(path: Path, max_abs: float) -> dict:
    """For an int8 output, its quantization step, so an ARM-vs-host difference reads in LSBs (1 = one rounding)."""
    from ai_edge_litert.interpreter import Interpreter

    scale = Interpreter(model_path=str(path)).get_output_details()[0]["quantization"][0]
    return {"output_lsb": scale, "max_abs_error_lsb": max_abs / scale} if scale else {}


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
    ap.add_argument("--no-timm", action="store_true", help="skip the timm models (no timm extra installed)")
    ap.add_argument("--only-timm", action="store_true", help="only the timm models (use with --merge)")
    ap.add_argument("--timm", default=",".join(TIMM_MODELS), help="comma-separated timm model names")
    ap.add_argument("--timm-res", type=int, default=224)
    ap.add_argument("--merge", action="store_true", help="keep the existing JSON's rows this run does not redo")
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
    if args.only_timm:
        plan = []
    if not args.no_timm:
        plan += [(n, f"timm {n}, pretrained=False, {args.timm_res}x{args.timm_res}x3") for n in args.timm.split(",") if n]
    timm_res = args.timm_res
    if not args.no_timm:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from conversion_coverage import real_images  # the coverage suite's inputs: real images, RGB, ImageNet norm

        timm_x = real_images(24, timm_res, seed=0)
        timm_test, timm_calib = timm_x[:8], timm_x[8:24]
    calib_t = target.emulation
    kept = []
    if args.merge and OUT.is_file():
        redo, old = {n for n, _ in plan}, json.loads(OUT.read_text())
        same = old.get("calibration", {}) == {"clock_ghz": calib_t.clock_ghz,
                                              "instructions_per_cycle": calib_t.instructions_per_cycle,
                                              "source": calib_t.source}
        kept = [r if same else recalibrate(r, calib_t) for r in old["rows"] if r["model"] not in redo]
        for r in kept:
            if "public_figure" in r:
                r["public_figure"] = public_row(r["model"], PUBLIC[r["model"]], r["arm"]["fp32"]["emulated_instructions"],
                                                r["arm"]["fp32"]["estimated_ms_1thread"])

    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="edgekd-armbench-") as tmp:
        work = Path(tmp)
        for name, note in plan:
            if time.monotonic() - t_start > args.budget_s:
                skipped.append(name)
                continue
            t0 = time.monotonic()
            is_timm = not args.no_timm and name in args.timm.split(",")
            big = name == "mobilenetv2-1.0-224" or is_timm
            if is_timm:
                model, x, calib, shape = timm_model(name), timm_test, timm_calib, (3, timm_res, timm_res)
            elif big:
                model, x, calib, shape = mobilenet_v2(), test224, calib224, (3, 224, 224)
            else:
                model, x, calib, shape = create_model(name, in_channels=1, num_classes=10), test28, calib28, (1, 28, 28)
            row = {"model": name, "note": note, "input": list(shape)}
            row["macs"], row["params"] = (int(v) for v in count_macs_params(model, shape))
            if name == "cnn-s":
                row["test_accuracy_torch"] = train_student(model, bundle, steps=300)
            print(f"[{name}] export fp32 + int8", flush=True)
            t_exp = time.monotonic()
            try:
                fp32, int8 = export_pair(model, x, calib, work, name)
            except Exception as exc:  # a converter failure is a result for this model, not the end of the run
                skipped.append({"model": name, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
                continue
            row["export_wall_s"] = round(time.monotonic() - t_exp, 1)
            row["size_bytes"] = {"fp32": fp32.stat().st_size, "int8": int8.stat().st_size}
            n_samples = 2 if name == "mobilenetv2-1.0-224" else 8  # the timm rows are cheap enough for 8
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
                    "numerics_vs_host": r["numerics"] | output_lsb(path, r["numerics"]["max_abs_error"]),
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
            if name in PUBLIC and shape[1:] == (224, 224):
                row["public_figure"] = public_row(name, PUBLIC[name], arm["fp32"]["emulated_instructions"],
                                                  arm["fp32"]["estimated_ms_1thread"])
            row["bench_wall_s"] = round(time.monotonic() - t0, 1)
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("model", "arm_int8_over_fp32_instructions")} |
                             {"instr_fp32": arm["fp32"]["emulated_instructions"],
                              "instr_int8": arm["int8"]["emulated_instructions"],
                              "host_int8_over_fp32": round(row["host"]["int8_over_fp32"], 3)}), flush=True)
            write(result(target, env, load_start, kept + rows, skipped, t_start, timm_res, args))  # partial
    out = result(target, env, load_start, kept + rows, skipped, t_start, timm_res, args)
    write(out)
    print(f"wrote {OUT} in {out['wall_s']} s")
    return 0


def write(result: dict) -> None:
    from edgekd.core import atomic_path

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(OUT) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2) + "\n")


def result(target, env, load_start, rows, skipped, t_start, timm_res, args) -> dict:
    import torch

    versions = {"torch": torch.__version__}
    try:
        import timm

        versions["timm"] = timm.__version__
    except ImportError:
        pass
    return {
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
        "host_versions": versions,
        "timm_models": {"resolution": [3, timm_res, timm_res], "weights": "random (pretrained=False)",
                        "inputs": "real Fashion-MNIST test images, grey replicated to RGB, bilinear-resized, "
                                  "ImageNet-normalised (conversion_coverage.real_images); int8 calibrated on 16 of them"},
        "rows": rows,
        "skipped_for_time": skipped,
        "wall_s": round(time.monotonic() - t_start, 1),
        "command": " ".join([Path(sys.executable).parent.parent.name + "/bin/python"] + sys.argv),
    }


if __name__ == "__main__":
    sys.exit(main())
