"""Probe (issue 21, part 3): does edgekd's static int8 PTQ lose points on a MobileNetV3-style student here?

Looks for the case QAT is for (post-training int8 losing >= 1 point with edgekd's defaults) on real data:
trains a built-in student fp32, then quantizes it with edgekd.quantize.quantize (ONNX QDQ per-channel, ONNX QDQ
per-tensor weights as many DSP/NPU paths need, TFLite full int8) and scores the int8 file against the float file.

    # train, checkpoint every epoch, PTQ after the listed epochs (Adam or AdamW, cosine decay, batch 128/64):
    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python benchmarks/ptq_loss_probe.py train --data fashion-mnist \
        --student mobilenetv3-xs --epochs 4 --lr 3e-3 --eval-at 2,4
    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python benchmarks/ptq_loss_probe.py train --data digits \
        --student mobilenetv3-s --epochs 60 --lr 5e-3 --wd 0.05 --eval-at 60
    # few calibration images on a checkpoint written by `train`:
    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python benchmarks/ptq_loss_probe.py sweep --data fashion-mnist \
        --student mobilenetv3-xs --weights W.pt --combos onnx-pt:8,tflite:8,onnx-pt:2,tflite:2

Each run appends one JSON line per measurement to --log (default benchmarks/results/ptq_loss_probe.jsonl).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekd.data import load_data  # noqa: E402
from edgekd.models import create_model  # noqa: E402
from edgekd.quantize.api import quantize  # noqa: E402
from edgekd.runtime import accuracy, load_runner  # noqa: E402


def _ptq(m, variant: str, calib, held) -> dict:
    fmt = variant.split("-")[0]
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        r = quantize(m, Path(d) / f"q.{fmt}", calib=calib, calib_samples=len(calib), eval_data=held,
                     per_channel=not variant.endswith("-pt"), allow_drop=True)
        return {"float": r.accuracy_float, "int8": r.accuracy, "drop": r.drop_points,
                "seconds": round(time.perf_counter() - t, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["train", "sweep"])
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--student", default="mobilenetv3-xs")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=0.0, help="> 0: AdamW with this weight decay, else Adam")
    ap.add_argument("--eval-at", default="", help="epochs after which PTQ is measured (default: the last)")
    ap.add_argument("--variants", default="onnx-pt,onnx,tflite", help="onnx (per-channel), onnx-pt (per-tensor), tflite")
    ap.add_argument("--calib-samples", type=int, default=256)
    ap.add_argument("--eval", type=int, default=3000, help="test images scored")
    ap.add_argument("--weights", default=None, help="sweep: checkpoint to quantize")
    ap.add_argument("--combos", default="onnx-pt:8,tflite:8", help="sweep: variant:calibration images, ...")
    ap.add_argument("--out-dir", default="/tmp/edgekd-ptq-probe", help="checkpoints")
    ap.add_argument("--log", default=str(ROOT / "benchmarks/results/ptq_loss_probe.jsonl"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_data(args.data, seed=0)
    held = (data.test.x[: args.eval], data.test.y[: args.eval])
    m = create_model(args.student, in_channels=data.input_shape[0], num_classes=data.num_classes)
    base = {"data": args.data, "student": args.student, "eval_images": len(held[0])}

    def log(row: dict) -> None:
        print(json.dumps(row), flush=True)
        with open(args.log, "a") as f:
            f.write(json.dumps(row) + "\n")

    if args.what == "sweep":
        m.load_state_dict(torch.load(args.weights, weights_only=True))
        m.eval()
        for combo in args.combos.split(","):
            variant, n = combo.split(":")
            log(base | {"weights": Path(args.weights).name, "variant": variant, "calibration": int(n),
                        **_ptq(m, variant, data.calibration(int(n), seed=0), held)})
        return
    x, y = data.train.x, data.train.y
    batch = 128 if len(x) > 10_000 else 64
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    opt = (torch.optim.AdamW(m.parameters(), lr=args.lr, weight_decay=args.wd) if args.wd > 0
           else torch.optim.Adam(m.parameters(), lr=args.lr))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * (len(x) // batch))
    evals = {int(v) for v in args.eval_at.split(",") if v} or {args.epochs}
    calib = data.calibration(args.calib_samples, seed=0)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for ep in range(1, args.epochs + 1):
        m.train()
        order = rng.permutation(len(x))
        for b in range(len(x) // batch):
            idx = order[b * batch : (b + 1) * batch]
            loss = torch.nn.functional.cross_entropy(m(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        m.eval()
        tag = f"{args.data}_{args.student}_{args.epochs}ep_lr{args.lr}_wd{args.wd}"
        torch.save(m.state_dict(), out / f"{tag}_ep{ep}.pt")
        if ep in evals:
            row = base | {"epoch": ep, "of": args.epochs, "lr": args.lr, "wd": args.wd, "calibration": len(calib),
                          "train_seconds_so_far": round(time.perf_counter() - t0, 1),
                          "fp32": round(accuracy(load_runner(m, threads=1), *held), 3)}
            log(row | {v: _ptq(m, v, calib, held) for v in args.variants.split(",")})


if __name__ == "__main__":
    main()
