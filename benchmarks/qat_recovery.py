"""Benchmark (issue 21, part 3): what quantization-aware training recovers where post-training int8 loses points.

    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python benchmarks/qat_recovery.py --student-cache /tmp/v3s.pt
    # ~15 CPU-min, 1 thread (fp32 training ~3.5 min, then per variant: PTQ + fallback search, QAT, int8 again)
    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python benchmarks/qat_recovery.py --quick    # smoke run (digits)

Student: the built-in `mobilenetv3-s` (depthwise 3x3/5x5 convs, hard-swish, squeeze-and-excitation with a
hard-sigmoid gate; 2.2 M MACs, 130 k params), trained fp32 on real Fashion-MNIST (labels only). Teacher for
QAT: that fp32 student itself (self-distillation: the int8 student learns to match its float self).
For each format (ONNX QDQ via ONNX Runtime, full-int8 TFLite via ai-edge-quantizer) edgekd.quantize.qat's
quantize_qat(qat="on") reports the drop against the float file after post-training int8, after the
float-fallback search under --max-drop, and after QAT (the tuned weights through the same quantizer); QAT's
seconds are wall time on this machine, 1 thread. Accuracy: the real Fashion-MNIST test split.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekd.core import atomic_write_text  # noqa: E402
from edgekd.data import load_data  # noqa: E402
from edgekd.models import count_macs_params, create_model  # noqa: E402
from edgekd.quantize.qat import quantize_qat  # noqa: E402
from edgekd.runtime import accuracy, load_runner  # noqa: E402


def train_fp32(model, x, y, *, epochs: int, lr: float, batch: int, seed: int) -> list[float]:
    """Plain supervised training (Adam, cosine), the student's float starting point."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(x) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    model.train()
    for _ in range(epochs):
        order, run = rng.permutation(len(x)), 0.0
        for b in range(len(x) // batch):
            idx = order[b * batch : (b + 1) * batch]
            loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            run += float(loss)
        losses.append(round(run / (len(x) // batch), 4))
    return losses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="digits, tiny settings (smoke run)")
    ap.add_argument("--student", default="mobilenetv3-s")
    ap.add_argument("--data", default="fashion-mnist", help="fashion-mnist | digits (real data either way)")
    ap.add_argument("--lr", type=float, default=3e-3, help="fp32 training: Adam learning rate (cosine decay)")
    ap.add_argument("--calib-samples", type=int, default=256, help="calibration images (edgekd's default: 256)")
    ap.add_argument("--epochs", type=int, default=3, help="fp32 training epochs")
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--qat-samples", type=int, default=8000)
    ap.add_argument("--max-drop", type=float, default=0.3)
    ap.add_argument("--eval", type=int, default=10000, help="test images scored")
    ap.add_argument("--variants", default="onnx,onnx-per-tensor,tflite",
                    help="onnx (per-channel QDQ), onnx-per-tensor (per-tensor weights, as many NPUs/DSPs need), tflite")
    ap.add_argument("--student-cache", default=None, help="reuse (or write) the fp32 student here: .pt + .json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/qat_recovery.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_data("digits" if args.quick else args.data, seed=args.seed)
    if args.quick:
        args.epochs, args.qat_epochs, args.qat_samples, args.eval = 2, 1, 512, 300
    student = create_model(args.student, in_channels=data.input_shape[0], num_classes=data.num_classes)
    macs, params = count_macs_params(student, data.input_shape)
    cache = Path(args.student_cache) if args.student_cache else None
    if cache and cache.is_file():  # trained earlier by this script with the same options (its log beside it)
        student.load_state_dict(torch.load(cache, weights_only=True))
        meta = json.loads(cache.with_suffix(".json").read_text())
        losses, train_s = meta["losses"], meta["seconds"]
    else:
        t0 = time.perf_counter()
        losses = train_fp32(student, data.train.x, data.train.y, epochs=args.epochs, lr=args.lr, batch=128,
                            seed=args.seed)
        train_s = time.perf_counter() - t0
        if cache:
            torch.save(student.state_dict(), cache)
            cache.with_suffix(".json").write_text(json.dumps({"losses": losses, "seconds": train_s}))
    student.eval()
    n = min(args.eval, len(data.test))
    x_test, y_test = data.test.x[:n], data.test.y[:n]
    fp32_acc = accuracy(load_runner(student, threads=1), x_test, y_test)
    print(f"fp32 {args.student}: {fp32_acc:.2f} % on {n} test images after {train_s:.0f} s", flush=True)
    calib = data.calibration(args.calib_samples, seed=args.seed)

    def write(rows: dict) -> None:
        out = {
            "what": "points of top-1 lost against the float file by int8: post-training, post-training + float fallback "
                    "under --max-drop, quantization-aware training (edgekd.quantize.qat, KD from the fp32 student)",
            "data": data.describe() | {"evaluated_on": f"the first {n} images of the test split"},
            "student": {"name": args.student, "macs": macs, "params": params, "fp32_epochs": args.epochs,
                        "fp32_train_seconds": round(train_s, 1), "fp32_epoch_loss": losses, "fp32_lr": args.lr,
                        "fp32_accuracy_pytorch": round(fp32_acc, 3)},
            "teacher": "the fp32 student itself (self-distillation)",
            "max_drop": args.max_drop,
            "calibration_samples": len(calib),
            "variants": rows,
            "how": {"measured": "accuracy on real test images in ONNX Runtime / LiteRT (CPU), 1 thread; seconds are wall "
                                "time on this host", "threads": 1, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                    "host": f"{platform.machine()} {platform.processor() or ''}".strip(), "seed": args.seed,
                    "quick": args.quick, "noise": "one test image is {:.3f} points".format(100 / n),
                    "load_average_1_5_15_min": [round(v, 2) for v in os.getloadavg()],
                    "seconds_note": "wall time under nice -n 15 on a shared 2-core host: QAT's CPU cost is lower "
                                    "when the host is busy (compare qat_seconds with the load average)"},
        }
        atomic_write_text(path, json.dumps(out, indent=2, default=str) + "\n")

    rows = {}
    path = Path(args.out) if not args.quick else Path(args.out).with_name("qat_recovery_quick.json")
    for variant in args.variants.split(","):
        fmt, per_channel = variant.split("-")[0], not variant.endswith("per-tensor")
        with tempfile.TemporaryDirectory() as d:
            t1 = time.perf_counter()
            rep = quantize_qat(student, Path(d) / f"student_int8.{fmt}", teacher=student, train_x=data.train.x,
                               train_y=data.train.y, qat="on", epochs=args.qat_epochs, samples=args.qat_samples,
                               seed=args.seed, calib=calib, eval_data=(x_test, y_test), max_drop=args.max_drop,
                               allow_drop=True, eval_split=f"the first {n} test images", per_channel=per_channel,
                               log=lambda m: print(f"  [{variant}] {m}", flush=True))
            q = rep.qat
            rows[variant] = {"format": fmt, "weights": "per-channel" if per_channel else "per-tensor",
                         "float_file_accuracy": q["reference"], "ptq_drop": q["ptq_drop"],
                         "ptq_fallback_drop": q["fallback_drop"], "fallback_kept_float": q["fallback_kept_float"],
                         "qat_all_int8_drop": q["qat_all_int8_drop"], "qat_drop": q["qat_drop"],
                         "qat_kept_float": q["qat_kept_float"], "qat_float_drop": q["qat_float_drop"],
                         "qat_seconds": q["seconds"],
                         "teacher_seconds": q["teacher_seconds"], "total_seconds": round(time.perf_counter() - t1, 2),
                         "shipped": q["shipped"], "budget_met": rep.budget_met, "search": rep.search,
                         "qat": {k: q[k] for k in ("epochs", "samples_per_epoch", "steps", "batch_size", "lr", "loss",
                                                   "optimizer", "scheme", "epoch_loss", "frozen_after_step")}}
            print(f"  [{variant}] PTQ drop {q['ptq_drop']}, PTQ+fallback {q['fallback_drop']} "
                  f"({q['fallback_kept_float']} float), QAT {q['qat_all_int8_drop']} all-int8, {q['qat_drop']} "
                  f"({q['qat_kept_float']} float) in {q['seconds']} s", flush=True)
            write(rows)  # after every variant: a long run interrupted keeps what it measured
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
