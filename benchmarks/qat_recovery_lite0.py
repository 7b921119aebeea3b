"""Benchmark (issue 21, part 3): QAT where post-training int8 really loses points, with real ImageNet weights.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/qat_recovery_lite0.py    # ~10 min, 1 thread
    # (2 QAT epochs; --qat-epochs 4 --out benchmarks/results/qat_recovery_lite0_4ep.json: the longer run)

Model: EfficientNet-Lite0 with its published ImageNet weights (benchmarks/real_weights.py's loader), 224 px.
Per-tensor int8 weights (one scale per weight tensor, what many DSP / NPU toolchains take; `[quantize] weights =
"per-tensor"` in a target file) are the textbook PTQ failure of depthwise-conv mobile nets: batch-norm folding
leaves a few output channels with weights far larger than the rest, and one scale cannot serve both.
Photos: the bundled scikit-image / matplotlib / scikit-learn photos (real_weights.photos), no labels, so every
file is scored by top-1 agreement with the fp32 model (as issue 22 does) on held-out views of the held-out half
of the photos; calibration and QAT training views come from the other half only.

Rows, all through edgekd's own calls (ONNX Runtime QDQ, 8-bit weights, bias correction on, as `edgekd quantize`):
  - ONNX per-tensor PTQ (edgekd.quantize.quantize, per_channel=False),
  - per-tensor PTQ + float fallback under --max-drop, then QAT: edgekd.quantize.qat.quantize_qat(qat="on") with
    the fp32 model as its own teacher (pure KD: the photos have no labels) on unlabeled views of the calibration
    photos; the tuned weights through the same per-tensor quantizer (all-int8, and with fallback under the budget),
  - ONNX per-channel PTQ as the reference (what per-channel scales alone recover).
Seconds are wall time on this host (2-core VM, 1 thread, nice 10), with the load average beside them.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks/results/qat_recovery_lite0.json"


def _ptq(float_onnx: Path, out: Path, calib, held, per_channel: bool) -> dict:
    from edgekd.quantize import quantize

    t = time.perf_counter()
    rep = quantize(float_onnx, out, mode="int8", calib=calib, calib_samples=len(calib), eval_data=(held, None),
                   eval_split="held-out photo views", per_channel=per_channel)
    return {"weights": "per-channel" if per_channel else "per-tensor", "agreement": rep.agreement,
            "drop_points": rep.drop_points, "seconds": round(time.perf_counter() - t, 1), "notes": rep.notes,
            "warnings": rep.warnings, "size_bytes": rep.size_bytes}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="input resolution (Lite0's native: 224)")
    ap.add_argument("--calib-views", type=int, default=16, help="views per calibration photo")
    ap.add_argument("--held-views", type=int, default=20, help="views per held-out photo")
    ap.add_argument("--train-views", type=int, default=64, help="QAT: unlabeled views per calibration photo")
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--qat-batch", type=int, default=8)
    ap.add_argument("--qat-lr", type=float, default=1e-5, help="Adam, cosine decay (pretrained weights, 11 photos)")
    ap.add_argument("--qat-bn", default="frozen", help="frozen: the model's batch-norm statistics throughout | train")
    ap.add_argument("--max-drop", type=float, default=2.0, help="points of top-1 agreement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--earlier", default="", help="a JSON of settings tried before, kept in the output")
    args = ap.parse_args(argv)

    import importlib.metadata as md

    import torch

    from edgekd.core import atomic_write_text
    from edgekd.export import export_onnx
    from edgekd.quantize.qat import quantize_qat
    from real_weights import lite_model, split_views

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model, info = lite_model("lite0")
    names, cal_parts, held = split_views(args.size, args.calib_views, args.held_views, seed=args.seed)
    calib = np.concatenate(cal_parts)
    # QAT training views: other random crops / flips of the same calibration photos (another seed); the held-out
    # photos are never trained on
    train_x = np.concatenate(split_views(args.size, args.train_views, 1, seed=args.seed + 1)[1])
    doc: dict = {
        "issue": 21, "what": __doc__.split("\n\n")[0],
        "model": {**info, "size": args.size},
        "photos": names,
        "views": {"calibration": len(calib), "held_out": len(held), "qat_train": len(train_x)},
        "measure": "top-1 agreement with the fp32 PyTorch model on the held-out views (no labels); drop = 100 - "
                   "agreement, in points; one view = {:.2f} points".format(100 / len(held)),
        "max_drop": args.max_drop, "rows": {},
        "how": {"runtime": "ONNX Runtime CPU EP, 1 thread (scores); PyTorch CPU, 1 thread (QAT)",
                "host": f"{platform.machine()} {platform.processor()}".strip(), "threads": args.threads,
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "seed": args.seed,
                "seconds": "wall time on a shared 2-core VM under nice 10"},
        "versions": {p: md.version(p) for p in ("torch", "torchao", "executorch", "timm", "onnxruntime")},
    }

    def write() -> None:
        doc["how"]["load_average_1_5_15_min"] = [round(v, 2) for v in os.getloadavg()]
        doc["seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_text(args.out, json.dumps(doc, indent=1, default=str) + "\n")

    if Path(args.earlier).is_file():  # settings tried before this run (same photos, views and seed)
        doc["earlier"] = json.loads(Path(args.earlier).read_text())
    log = lambda m: print(m, flush=True)  # noqa: E731
    log(f"lite0 at {args.size} px: {len(calib)} calibration, {len(held)} held-out, {len(train_x)} QAT views")
    with tempfile.TemporaryDirectory(prefix="edgekd-qat-lite0-") as d:
        work = Path(d)
        f32 = work / "lite0_fp32.onnx"
        export_onnx(model, held[:16], f32)
        for key, pc in (("ptq_per_tensor", False), ("ptq_per_channel", True)):
            doc["rows"][key] = _ptq(f32, work / f"{key}.onnx", calib, held, pc)
            log(f"  {key}: agreement {doc['rows'][key]['agreement']['top1']} % in {doc['rows'][key]['seconds']} s")
            write()
        t = time.perf_counter()
        rep = quantize_qat(model, work / "qat.onnx", teacher=model, train_x=train_x, train_y=None, qat="on",
                           epochs=args.qat_epochs, lr=args.qat_lr, batch_size=args.qat_batch, samples=len(train_x),
                           seed=args.seed, bn=args.qat_bn, calib=calib, calib_samples=len(calib), eval_data=(held, None),
                           eval_split="held-out photo views", max_drop=args.max_drop, allow_drop=True,
                           per_channel=False, log=lambda m: log(f"  [qat] {m}"))
        q = rep.qat
        doc["rows"]["per_tensor_fallback_and_qat"] = {
            "weights": "per-tensor", "ptq_drop": q["ptq_drop"], "fallback_drop": q["fallback_drop"],
            "fallback_kept_float": q["fallback_kept_float"], "qat_all_int8_drop": q["qat_all_int8_drop"],
            "qat_drop": q["qat_drop"], "qat_kept_float": q["qat_kept_float"], "qat_float_drop": q["qat_float_drop"],
            "qat_seconds": q["seconds"], "teacher_seconds": q["teacher_seconds"],
            "total_seconds": round(time.perf_counter() - t, 1), "shipped": q["shipped"], "budget_met": rep.budget_met,
            "shipped_agreement": rep.agreement, "search": rep.search, "notes": rep.notes,
            "qat": {k: q[k] for k in ("epochs", "samples_per_epoch", "steps", "batch_size", "lr", "loss", "optimizer",
                                      "scheme", "epoch_loss", "frozen_after_step", "batch_norm")}}
        log(f"  PTQ {q['ptq_drop']}, PTQ+fallback {q['fallback_drop']} ({q['fallback_kept_float']} float), QAT "
            f"all-int8 {q['qat_all_int8_drop']}, QAT {q['qat_drop']} ({q['qat_kept_float']} float), tuned float "
            f"{q['qat_float_drop']}; QAT {q['seconds']} s")
        write()
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
