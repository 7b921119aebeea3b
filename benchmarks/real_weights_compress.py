"""`edgekd compress` with real weights on unlabeled photos (issue 22 part 4): EfficientNet-Lite2 teacher, Lite0
student (both with their ImageNet weights, as entrypoint files), the bundled photos in a folder without class
sub-folders, 224 px, android target, one thread, a distillation time budget.

The photos (skimage / matplotlib / scikit-learn, benchmarks/real_weights.photos) are written as PNGs to a folder
and go through `edgekd compress` unchanged: it holds out a fifth of them (seeded), takes the validation split from
the rest, and scores every file by top-1 agreement with the teacher on crop-flip views of the held-out photos
(no labels: never accuracy). The student's agreement before distillation is measured here on the very same views
(edgekd's own data loading and views), so the report's figure has its reference.
Preprocessing: the images are resized to 224x224 (whole image, squashed; no centre crop) and normalised as the
reference code's (x - 127) / 128, i.e. --normalize 0.498/0.502 per channel on pixels in [0, 1].

    .venv/bin/python benchmarks/real_weights_compress.py [--budget 600] [--batch-size 16] [--lr 1e-4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks/results/real_weights_compress.json"
ENTRY = ROOT / "benchmarks/lite_entrypoints.py"
NORMALIZE = f"{127 / 255:.5f}/{128 / 255:.5f}"  # (x - 127) / 128 on 0..255 pixels


def write_photos(folder: Path) -> list[str]:
    from PIL import Image

    from real_weights import photos

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for name, a in photos():
        f = folder / (name.replace("/", "_").rsplit(".", 1)[0] + ".png")
        Image.fromarray(a).save(f)
        names.append(f.name)
    return names


def compress_args(args, photos: Path, out: Path) -> list[str]:
    return ["--teacher", f"{ENTRY}:lite2", "--student", f"{ENTRY}:lite0", "--data", str(photos),
            "--image-size", str(args.size), "--normalize", NORMALIZE, "--target", "android",
            "--time-budget", str(args.budget), "--batch-size", str(args.batch_size), "--set", f"train.lr={args.lr}",
            *(["--set", "train.freeze_bn=true"] if args.freeze_bn else []),
            "--threads", str(args.threads), "--output", str(out), "--seed", "0"]


def before_distillation(args, photos: Path) -> dict:
    """The pretrained Lite0's agreement with Lite2 on the held-out views compress scores on (same loader, seed and
    views): what distillation started from."""
    import torch

    from edgekd.data import load_data
    from edgekd.modalities.classifier.unlabeled import prepare_unlabeled
    from lite_entrypoints import lite0, lite2

    torch.set_num_threads(args.threads)
    data = load_data(str(photos), seed=0, image_size=str(args.size), normalize=NORMALIZE, need_labels=False)
    teacher, student = lite2().eval(), lite0().eval()
    data, _ = prepare_unlabeled(data, teacher)

    def top1(model, x):
        with torch.no_grad():
            return np.concatenate([model(torch.from_numpy(x[i:i + 16])).argmax(-1).numpy() for i in range(0, len(x), 16)])

    t, s = top1(teacher, data.test.x), top1(student, data.test.x)
    tv, sv = top1(teacher, data.val.x), top1(student, data.val.x)
    return {"test_views": len(t), "top1_agreement_test": round(100 * float((t == s).mean()), 2),
            "val_views": len(tv), "top1_agreement_val": round(100 * float((tv == sv).mean()), 2)}


def figures(report: dict, out: Path) -> dict:
    rows = {a["name"]: a for a in report["artifacts"]}

    def row(name):
        a = rows.get(name)
        if a is None:
            return None
        lat = a.get("latency") or {}
        d = {"agreement_with_teacher": a["accuracy"], "size_bytes": a["size_bytes"],
             "agreement_with_student": (a.get("extra") or {}).get("agreement_with_student")}
        if lat:
            d["latency"] = {k: lat.get(k) for k in ("p50_ms", "p90_ms", "kind", "where", "runtime", "threads", "runs",
                                                    "instructions") if lat.get(k) is not None}
        for other in (a.get("extra") or {}).get("other_latencies", []):
            d.setdefault("other_latencies", []).append(
                {k: other.get(k) for k in ("p50_ms", "kind", "where", "qemu_cpu", "emulated_instructions", "emulation_wall_s") if other.get(k) is not None})
        return d

    d = report["distill"]
    return {"shipped": report["shipped"], "metric": report.get("accuracy_metric"),
            "distill": {k: d.get(k) for k in ("recipe", "chosen", "time_budget_s", "budget_used_s", "steps",
                                              "planned_steps", "stopped", "train_samples", "views", "best_val_acc", "best_epoch",
                                              "val_metric")},
            "auto": {k: (d.get("auto") or {}).get(k) for k in ("chosen", "lr", "reason")},
            "data": {k: report["data"].get(k) for k in ("train", "val", "test", "test_images", "val_images",
                                                         "held_out_views", "input_shape", "test_split")},
            "teacher": report["teacher"], "student": {k: report["student"][k] for k in ("spec", "macs", "params")},
            "rows": {name: row(name) for name in rows},
            "notes": report["notes"], "compress_seconds": report["seconds"]}


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=600.0, help="distillation time budget, seconds")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4, help="AdamW LR (the student starts from ImageNet weights)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--freeze-bn", action="store_true", help="--set train.freeze_bn=true (keep ImageNet BN statistics)")
    ap.add_argument("--label", help="key of this run in the JSON's runs (default: default / freeze_bn)")
    ap.add_argument("--work", default="/tmp/edgekd_real_weights_compress")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)

    import importlib.metadata as md

    from edgekd.core import atomic_write_text

    label = args.label or ("freeze_bn" if args.freeze_bn else "default")
    work = Path(args.work)
    photos, out = work / "photos", work / f"run_{label}"
    names = write_photos(photos)
    print(f"{len(names)} photos in {photos}", flush=True)
    before = before_distillation(args, photos)
    print(f"before distillation: {before}", flush=True)
    cmd = [sys.executable, "-m", "edgekd.cli", "compress", *compress_args(args, photos, out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)  # progress lines stream on stderr
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"edgekd compress failed (exit {proc.returncode})", file=sys.stderr)
        return proc.returncode
    report = json.loads(proc.stdout)
    prior = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    runs = dict(prior.get("runs", {}))
    if "after" in prior:  # a file from before runs were keyed (the first, default run)
        runs.setdefault("default", {k: prior[k] for k in ("command", "before_distillation", "after",
                                                          "compress_wall_seconds", "threads") if k in prior})
    shown = " ".join(compress_args(args, Path("PHOTOS"), Path("RUN"))).replace(f"{ROOT}/", "")
    runs[label] = {"command": f"edgekd compress {shown}",
                   "before_distillation": before, "after": figures(report, out),
                   "compress_wall_seconds": round(wall, 1), "threads": args.threads,
                   "load_average_after": os.getloadavg(), "code": _commit()}
    doc = {"issue": 22, "part": 4, "what": __doc__.split("\n\n")[0], "photos": names, "runs": runs,
           "versions": {p: md.version(p) for p in ("torch", "timm", "litert-torch", "ai-edge-litert", "onnxruntime")},
           "host": f"{platform.machine()} {platform.processor()} ({os.cpu_count()} cores)"}
    atomic_write_text(args.out, json.dumps(doc, indent=1, default=str) + "\n")
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
