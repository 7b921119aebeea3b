"""Benchmark (issue 3): scratch vs each distillation method vs the default recipe on Fashion-MNIST.

    nice -n 5 .venv/bin/python benchmarks/distill_fashion_mnist.py   # all methods: ~50 CPU-min, 1 thread
    nice -n 5 .venv/bin/python benchmarks/distill_fashion_mnist.py --methods scratch,hinton,default  # ~20 CPU-min
    # one process per seed (2+ cores), then one JSON:
    for s in 0 1 2; do .venv/bin/python benchmarks/distill_fashion_mnist.py --seeds 1 --seed-start $s \
        --speedup-reps $([ $s = 0 ] && echo 2 || echo 0) --out /tmp/s$s.json & done; wait
    .venv/bin/python benchmarks/distill_fashion_mnist.py --merge /tmp/s0.json /tmp/s1.json /tmp/s2.json
    .venv/bin/python benchmarks/distill_fashion_mnist.py --quick    # smoke run (digits, 1 seed)

Teacher: the built-in example (examples/fashion_mnist, its committed teacher.pt). Student: a built-in
with >= 10x fewer MACs. Every method: the same epochs, batch, optimizer and seeds (3); accuracy on the
real test set of the student picked by held-out (val) accuracy. 30 epochs (7500 steps): scratch peaks
early (best val epoch 9-19) and overfits the 8000 images while the KD students keep improving; at 6 and 15
epochs every KD run was still climbing, which hid most of KD's gain (the shorter tables are kept in the
JSON under "previous_protocols"). gap_closed = (acc - acc_scratch) / (acc_teacher - acc_scratch), on
seed means. Teacher outputs come from one TeacherCache per augmentation setting shared by all runs (the views are fixed per dataset, see edgekd/distill/cache.py),
so the teacher runs once per (sample, view) for the whole benchmark. The cache speedup is measured
separately: epoch time of the same Hinton run with and without the cache, interleaved A/B, medians.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekd.core import atomic_write_text  # noqa: E402
from edgekd.data import load_data  # noqa: E402
from edgekd.data.bundle import ArrayDataset, DataBundle  # noqa: E402
from edgekd.distill import TeacherCache, distill, load_recipe  # noqa: E402
from edgekd.distill.trainer.ddp import Dist  # noqa: E402
from edgekd.distill.trainer.evaluation import evaluate  # noqa: E402
from edgekd.models import count_macs_params, create_model, load_weights  # noqa: E402

SCRATCH = {"name": "scratch", "loss": [{"type": "ce"}]}
SCRATCH_AUG = {"name": "scratch-aug", "train": {"augment": "crop-flip", "views": 4}, "loss": [{"type": "ce"}]}
METHODS = ["scratch", "hinton", "fitnets", "at", "rkd", "distilbert", "default"]  # + "scratch-aug" on request


def subset(d: DataBundle, n_train: int, n_val: int, seed: int = 0) -> DataBundle:
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.choice(len(d.train), size=min(n_train, len(d.train)), replace=False))
    va = np.sort(rng.choice(len(d.val), size=min(n_val, len(d.val)), replace=False))
    return DataBundle(d.name, ArrayDataset(d.train.x[tr], d.train.y[tr]), ArrayDataset(d.val.x[va], d.val.y[va]),
                      d.test, d.num_classes, d.input_shape, d.mean, d.std, source=d.source)


def recipe_for(name: str):
    return {"scratch": SCRATCH, "scratch-aug": SCRATCH_AUG}.get(name, name)


def summarise(runs: dict[str, list[dict]], teacher_test: float) -> dict:
    """Mean/std accuracy per method and gap_closed against the scratch mean (seed means, test set)."""
    scratch = statistics.fmean(r["test_acc"] for r in runs["scratch"]) if runs.get("scratch") else None
    out = {}
    for m, rs in runs.items():
        accs = [r["test_acc"] for r in rs]
        if not accs:
            continue
        row = {"acc_mean": round(statistics.fmean(accs), 4),
               "acc_std": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
               "runs": len(accs), "seconds_mean": round(statistics.fmean(r["seconds"] for r in rs), 1)}
        if scratch is not None and teacher_test > scratch:
            gap = teacher_test - scratch
            row["gap_closed"] = round((statistics.fmean(accs) - scratch) / gap, 3)
            per = [(a - scratch) / gap for a in accs]
            row["gap_closed_std"] = round(statistics.stdev(per), 3) if len(per) > 1 else 0.0
        out[m] = row
    return out


def merge(paths: list[str], out: str) -> None:
    """One result from several partial ones (e.g. seeds run in parallel processes): runs concatenated by seed."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    result = dict(parts[0])
    runs: dict[str, list[dict]] = {}
    for part in parts:
        if part["protocol"]["epochs"] != result["protocol"]["epochs"] or part["data"] != result["data"]:
            raise SystemExit(f"cannot merge results of different protocols: {paths}")
        for m, rs in part["runs"].items():
            runs.setdefault(m, []).extend(rs)
        for key in ("cache_speedup", "benchmark_cache"):
            if key in part:
                result[key] = part[key]
    for m in runs:
        runs[m].sort(key=lambda r: r["seed"])
    result["protocol"] = {**result["protocol"], "seeds": len({r["seed"] for rs in runs.values() for r in rs})}
    result["runs"], result["summary"] = runs, summarise(runs, result["teacher"]["test_acc"])
    result["status"] = "complete" if all(p["status"].startswith("complete") for p in parts) else "partial"
    result["merged_from"] = [Path(p).name for p in paths]
    result["total_seconds"] = round(sum(p["total_seconds"] for p in parts), 1)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--teacher-weights", default=None, help="default: examples/fashion_mnist weights for --data")
    ap.add_argument("--student", default="cnn-s")
    ap.add_argument("--train-size", type=int, default=8000)
    ap.add_argument("--val-size", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-start", type=int, default=0, help="first seed (split seeds over processes, then --merge)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speedup-reps", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], help="recipe override for every run, KEY=VALUE")
    ap.add_argument("--quick", action="store_true", help="digits, 1 seed, 2 epochs: a smoke run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/distill_fashion_mnist.json"))
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="combine the runs of partial results into --out; no training")
    args = ap.parse_args()
    if args.merge:
        return merge(args.merge, args.out)
    if args.quick:
        args.data, args.seeds, args.epochs, args.speedup_reps = "digits", 1, 2, 1
        args.out = str(ROOT / "benchmarks/results/distill_quick.json") if args.out.endswith("fashion_mnist.json") else args.out
    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()

    from examples.fashion_mnist.teacher import build_teacher, weights_for

    full = load_data(args.data, seed=0)
    data = subset(full, args.train_size, args.val_size)
    teacher = build_teacher()
    load_weights(teacher, args.teacher_weights or weights_for(args.data))
    teacher.eval()
    shape = data.input_shape
    t_macs, t_params = count_macs_params(teacher, shape)
    probe = create_model(args.student, in_channels=shape[0], num_classes=data.num_classes)
    s_macs, s_params = count_macs_params(probe, shape)
    if t_macs / s_macs < 10:
        raise SystemExit(f"student {args.student} has only {t_macs / s_macs:.1f}x fewer MACs than the teacher")
    one = Dist()
    teacher_test, _ = evaluate(teacher, data.test.x, data.test.y, one)
    overrides = dict(kv.split("=", 1) for kv in args.set)

    # One shared cache per augmentation setting (views): every run reuses the teacher's outputs.
    caches: dict[int, TeacherCache] = {}

    def cache_for(name: str) -> TeacherCache:
        rec = load_recipe(recipe_for(name), overrides)
        views = 1 if rec.train["augment"] == "none" else rec.train["views"]
        return caches.setdefault(views, TeacherCache(len(data.train), views, max_bytes=3 << 30))

    methods = [m for m in args.methods.split(",") if m]
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    info = {
        "benchmark": "distill_fashion_mnist", "issue": 3, "data": args.data,
        "train_samples": len(data.train), "val_samples": len(data.val), "test_samples": len(data.test),
        "subset": f"{len(data.train)} train / {len(data.val)} val images drawn (seed 0) from the {len(full.train)} / "
                  f"{len(full.val)} split; the full {len(data.test)}-image test set",
        "teacher": {"model": "examples.fashion_mnist.teacher:build_teacher", "macs": t_macs, "params": t_params,
                    "test_acc": round(teacher_test, 4)},
        "student": {"model": args.student, "macs": s_macs, "params": s_params, "macs_ratio": round(t_macs / s_macs, 1)},
        "protocol": {"epochs": args.epochs, "batch_size": args.batch_size, "seeds": args.seeds,
                     "selection": "per run, the epoch with the best held-out (val) accuracy; its accuracy on the test set",
                     "gap_closed": "(acc_mean(method) - acc_mean(scratch)) / (acc_teacher - acc_mean(scratch)), test set",
                     "overrides": overrides,
                     "recipes": {m: load_recipe(recipe_for(m), overrides).to_dict() for m in methods}},
        "threads": args.threads, "where": f"{platform.machine()} host, PyTorch {torch.__version__} CPU, shared 2-core machine",
    }

    def write(status: str, extra: dict | None = None) -> None:
        result = {**info, "status": status, "summary": summarise(runs, teacher_test), "runs": runs, **(extra or {}),
                  "teacher_cache": {str(v): c.stats() for v, c in caches.items()},
                  "total_seconds": round(time.perf_counter() - t_all, 1)}
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")

    for seed in range(args.seed_start, args.seed_start + args.seeds):
        for m in methods:
            torch.manual_seed(seed)
            student = create_model(args.student, in_channels=shape[0], num_classes=data.num_classes)
            t0 = time.perf_counter()
            res = distill(teacher, student, data, recipe=recipe_for(m), epochs=args.epochs, batch_size=args.batch_size,
                          seed=seed, progress=False, overrides=overrides, cache=cache_for(m))
            test_acc, _ = evaluate(res.student, data.test.x, data.test.y, one)
            runs[m].append({"seed": seed, "test_acc": round(test_acc, 4), "best_val_acc": round(res.metrics["best_val_acc"], 4),
                            "best_epoch": res.metrics["best_epoch"], "seconds": round(time.perf_counter() - t0, 2),
                            "val_acc_per_epoch": [round(e["val_acc"], 4) for e in res.metrics["epochs"]]})
            print(f"[{time.perf_counter() - t_all:6.0f} s] seed {seed} {m:12s} test acc {test_acc:.4f}  "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        write(f"partial: seeds {args.seed_start}..{seed}")  # a cut-short run still leaves whole seeds on disk

    if args.speedup_reps < 1:
        write("complete (no cache-speedup measurement)")
        return
    # Cache speedup: the same Hinton run with a fresh cache vs no cache, interleaved A/B, medians.
    speed: dict[str, list[float]] = {"cached_epoch1_s": [], "cached_epoch2_s": [], "uncached_epoch1_s": [],
                                     "uncached_epoch2_s": []}
    for rep in range(args.speedup_reps):
        for mode in ("uncached", "cached"):
            torch.manual_seed(0)
            student = create_model(args.student, in_channels=shape[0], num_classes=data.num_classes)
            res = distill(teacher, student, data, recipe="hinton", epochs=2, batch_size=args.batch_size, seed=0,
                          progress=False, cache=None if mode == "cached" else False)
            e = res.metrics["epochs"]
            speed[f"{mode}_epoch1_s"].append(e[0]["seconds"])
            speed[f"{mode}_epoch2_s"].append(e[1]["seconds"])
            print(f"speedup rep {rep} {mode}: epochs {e[0]['seconds']:.1f} s, {e[1]['seconds']:.1f} s", flush=True)
    med = {k: statistics.median(v) for k, v in speed.items()}
    E = args.epochs
    cache_speedup = {
        "what": "seconds per epoch (train + held-out eval) of one Hinton run, fresh cache vs teacher every step",
        "where": info["where"], "threads": args.threads, "kind": "measured", "reps": args.speedup_reps,
        "method": "interleaved A/B (uncached, cached) per rep; medians", **{k: round(v, 2) for k, v in med.items()},
        "speedup_per_epoch_after_first": round(med["uncached_epoch2_s"] / med["cached_epoch2_s"], 2),
        f"speedup_{E}_epochs": round(E * med["uncached_epoch2_s"]
                                     / (med["cached_epoch1_s"] + (E - 1) * med["cached_epoch2_s"]), 2),
        f"speedup_{E}_epochs_note": "estimated from the measured epoch times: 1 filling epoch + E-1 cached epochs",
    }
    hits = sum(c.hits for c in caches.values())
    misses = sum(c.misses for c in caches.values())
    benchmark_cache = {"teacher_forwards_run": misses, "teacher_forwards_saved": hits,
                       "teacher_seconds_spent": round(sum(c.teacher_seconds for c in caches.values()), 1),
                       "note": "one cache per augmentation setting shared by every method and seed of this benchmark"}
    write("complete", {"cache_speedup": cache_speedup, "benchmark_cache": benchmark_cache})
    print(json.dumps({"summary": summarise(runs, teacher_test), "cache_speedup": cache_speedup, "teacher_test_acc": teacher_test},
                     indent=2))


if __name__ == "__main__":
    main()
