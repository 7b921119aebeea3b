"""Does a student that starts well above chance want a smaller prior LR? (issue 18, stop 33)

    .venv/bin/python benchmarks/initial_fit_lr_study.py --pairs digits-mlp --epochs 5 --seeds 0,1 --out x.json
    .venv/bin/python benchmarks/initial_fit_lr_report.py x.json --factor 3     # the per-pair table, before / with the rule

Per pair, budget and seed, with the same (cached) teacher: the initial student's val accuracy and the val split's
majority-class rate (before any training; as auto's head-start rule measures it and raw), scratch (labels only, its 4-LR sweep, as the suite) and
auto's no-probe prior at several LR factors (x20 is auto before the rule). Written in the suite's per-pair format
(methods scratch, auto-x<f>), so distill_suite's summarise() reads it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distill_suite as ds

from edgekd.core import atomic_write_text
from edgekd.distill import (
    TeacherCache,
    auto,
)
from edgekd.distill.trainer.ddp import Dist
from edgekd.distill.trainer.evaluation import evaluate


def initial_fit(student, data) -> dict:
    """The untrained student's val accuracy as auto's head-start rule measures it (batch-norm statistics
    re-estimated on training inputs) and raw, with the majority-class rate."""
    raw, _ = evaluate(student, data.val.x, data.val.y, Dist())
    acc, chance, _ = auto._student_vs_chance(student, data)
    return {"val_acc": acc, "raw_val_acc": raw, "majority": chance}


def run_pair(name: str, epochs: int, seeds: list[int], factors: list[float]) -> dict:
    data, teacher, t_info, t_key, s_spec = ds.pair_setup(name)
    runs: dict[str, list] = {"scratch": [], **{f"auto-x{f:g}": [] for f in factors}}
    init = []
    cache = TeacherCache(len(data.train), 1)
    for seed in seeds:
        init.append(initial_fit(ds.make_student(s_spec, teacher, data, seed), data))
        acc, chance = init[-1]["val_acc"], init[-1]["majority"]
        sweep = [dict(ds.run_one(teacher, ds.make_student(s_spec, teacher, data, seed), data, "ce", epochs, seed,
                                 lr=lr), lr=lr) for lr in ds.SCRATCH_LRS]
        best = max(sweep, key=lambda r: r["val_acc"])
        runs["scratch"].append(dict(best, sweep=sweep, seconds=sum(r["seconds"] for r in sweep)))
        for f in factors:
            auto.PRIOR_LR_FACTOR = f  # every student at factor f: the head-start rule is off (it would pick for it)
            auto.HEAD_START = float("inf")
            runs[f"auto-x{f:g}"].append(ds.run_one(teacher, ds.make_student(s_spec, teacher, data, seed), data,
                                                   "auto", epochs, seed, cache=cache))
        print(f"[{name}@{epochs}] seed {seed} init {acc:.3f} (maj {chance:.3f}) scratch {best['test_acc']:.4f} "
              f"(lr {best['lr']}) " + " ".join(f"x{f:g} {runs[f'auto-x{f:g}'][-1]['test_acc']:.4f}" for f in factors),
              flush=True)
    return {"teacher": {**t_info, "arch": t_key}, "student": {"spec": s_spec if isinstance(s_spec, str) else
                                                               getattr(s_spec, "__name__", "lambda")},
            "data": data.describe(), "epochs": epochs, "seeds": seeds, "initial": init, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--epochs", default="5")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--factors", default="20,1,3")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    names = sorted(ds.KEPT_BACK) if a.pairs == "kept-back" else a.pairs.split(",")
    seeds = [int(s) for s in a.seeds.split(",")]
    factors = [float(f) for f in a.factors.split(",")]
    out = Path(a.out)
    doc = json.loads(out.read_text()) if out.is_file() else {"results": {}}
    t0 = time.perf_counter()
    for e in [int(x) for x in a.epochs.split(",")]:
        for name in names:
            if f"{name}@{e}" in doc["results"]:
                continue
            doc["results"][f"{name}@{e}"] = run_pair(name, e, seeds, factors)
            doc["seconds"] = doc.get("seconds", 0) + round(time.perf_counter() - t0)
            t0 = time.perf_counter()
            atomic_write_text(out, json.dumps(doc, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
