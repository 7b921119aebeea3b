"""Which loss mix should a too-short-to-probe run (under auto.PRIOR_SHORT_STEPS) train a fresh student with?
(issue 18, stop 34)

    .venv/bin/python benchmarks/short_fresh_recipe_study.py --pairs digits-wide8-micro3 --seeds 0,1 --out x.json

Per pair and seed, with the suite's cached teacher and seeded student: the prior's LR (auto.prior_lr_factor x the
base LR: x20 for a fresh student, x3 for one with a head start) and each candidate loss mix (VARIANTS). Scratch is not rerun: the suite's committed scratch rows
(benchmarks/results/distill_suite*.json, the same teachers, students and seeds) are read beside it, and `kd-ls`
(what auto trains there now) reproduces the suite's auto rows, which checks that the setup is the same.
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
from edgekd.distill import TeacherCache, auto, distill, load_recipe

BASE_LR = 3e-3


def kd(temperature: float, alpha: float, **extra) -> list[dict]:
    return [{"type": "kd", "temperature": temperature, "alpha": alpha, **extra}]


VARIANTS = {
    "kd-ls": "kd-ls",
    "ce": "ce",
    "kd-balanced": "kd-balanced",
    "kd-T4-a0.25": {"name": "kd-T4-a0.25", "loss": kd(4.0, 0.25)},
    # the same augmented view for teacher and student (the teacher cache holds `views` flips per image)
    "kd-balanced-flip": {"name": "kd-balanced-flip", "loss": kd(4.0, 0.5), "train": {"augment": "flip"}},
    "kd-ls-ramp-flip": {"name": "kd-ls-ramp-flip", "loss": [
        {"type": "ce", "weight": 1.0},
        {"type": "kd", "temperature": 2.0, "alpha": 1.0, "weight": 9.0, "standardize": True, "warmup": 0.5}],
        "train": {"augment": "flip"}},
    "ce-flip": {"name": "ce-flip", "loss": [{"type": "ce", "weight": 1.0}], "train": {"augment": "flip"}},
    # kd-balanced's two halves with the soft half ramping in (kd with alpha a is a*T^2*KL + (1-a)*CE)
    "kdb-ramp": {"name": "kdb-ramp", "loss": [{"type": "ce", "weight": 0.5},
                                              {"type": "kd", "temperature": 4.0, "alpha": 1.0, "weight": 0.5,
                                               "warmup": 0.5}]},
    "kdb-ramp0.25": {"name": "kdb-ramp0.25", "loss": [{"type": "ce", "weight": 0.5},
                                                      {"type": "kd", "temperature": 4.0, "alpha": 1.0, "weight": 0.5,
                                                       "warmup": 0.25}]},
    "kd-T4-a0.7": {"name": "kd-T4-a0.7", "loss": kd(4.0, 0.7)},
    "kd-T1-a0.5": {"name": "kd-T1-a0.5", "loss": kd(1.0, 0.5)},
    "kd-T2-a0.5": {"name": "kd-T2-a0.5", "loss": kd(2.0, 0.5)},
    # the soft term ramps in over the first half: a fresh student first fits the labels it can still fit
    "ce+kd-ramp": {"name": "ce+kd-ramp", "loss": [{"type": "ce", "weight": 1.0},
                                                  {"type": "kd", "temperature": 4.0, "alpha": 1.0, "weight": 1.0,
                                                   "warmup": 0.5}]},
    "ce+kd-ramp1": {"name": "ce+kd-ramp1", "loss": [{"type": "ce", "weight": 1.0},
                                                    {"type": "kd", "temperature": 4.0, "alpha": 1.0, "weight": 1.0,
                                                     "warmup": 1.0}]},
    # kd-ls's terms with its KD weight ramping in over the first half
    "kd-ls-ramp": {"name": "kd-ls-ramp", "loss": [{"type": "ce", "weight": 1.0},
                                                  {"type": "kd", "temperature": 2.0, "alpha": 1.0, "weight": 9.0,
                                                   "standardize": True, "warmup": 0.5}]},
    "kd-ls-ramp0.25": {"name": "kd-ls-ramp0.25", "loss": [{"type": "ce", "weight": 1.0},
                                                          {"type": "kd", "temperature": 2.0, "alpha": 1.0,
                                                           "weight": 9.0, "standardize": True, "warmup": 0.25}]},
    "kd-ls-ramp1": {"name": "kd-ls-ramp1", "loss": [{"type": "ce", "weight": 1.0},
                                                    {"type": "kd", "temperature": 2.0, "alpha": 1.0, "weight": 9.0,
                                                     "standardize": True, "warmup": 1.0}]},
    "ce+kd-ls-w1-ramp": {"name": "ce+kd-ls-w1-ramp", "loss": [
        {"type": "ce", "weight": 1.0},
        {"type": "kd", "temperature": 2.0, "alpha": 1.0, "weight": 1.0, "standardize": True, "warmup": 0.5}]},
    "ce+kd-ls-w3-ramp": {"name": "ce+kd-ls-w3-ramp", "loss": [
        {"type": "ce", "weight": 1.0},
        {"type": "kd", "temperature": 2.0, "alpha": 1.0, "weight": 3.0, "standardize": True, "warmup": 0.5}]},
}


def run(teacher, student, data, variant, epochs, seed, cache, lr=None) -> dict:
    t0 = time.perf_counter()
    spec = VARIANTS[variant]
    recipe = load_recipe(spec) if isinstance(spec, dict) else spec
    if isinstance(spec, dict) and spec.get("train", {}).get("augment", "none") != "none":
        cache = None  # the shared cache holds un-augmented outputs; augmented views get the run's own cache
    factor = auto.prior_lr_factor(auto._student_vs_chance(student, data))  # x3 for a head start, as auto does
    res = distill(teacher, student, data, recipe=recipe, epochs=epochs, batch_size=128, seed=seed,
                  lr=lr or BASE_LR * factor, progress=False, cache=cache)
    return {"test_acc": ds.test_accuracy(res.student, data), "val_acc": res.metrics["best_val_acc"],
            "lr": lr or BASE_LR * factor, "seconds": round(time.perf_counter() - t0, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--lr", type=float, default=None, help="a fixed LR instead of the prior's")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in a.seeds.split(",")]
    variants = a.variants.split(",")
    out = Path(a.out)
    doc = json.loads(out.read_text()) if out.is_file() else {"results": {}}
    for name in a.pairs.split(","):
        data, teacher, t_info, _, s_spec = ds.pair_setup(name)
        key = f"{name}@{a.epochs}"
        runs = doc["results"].setdefault(key, {"teacher": t_info, "epochs": a.epochs, "seeds": seeds, "runs": {}})
        cache = TeacherCache(len(data.train), 1)
        for v in variants:
            runs["runs"][v] = [run(teacher, ds.make_student(s_spec, teacher, data, s), data, v, a.epochs, s, cache, a.lr)
                               for s in seeds]
            accs = [r["test_acc"] for r in runs["runs"][v]]
            print(f"[{key}] {v}: {100 * sum(accs) / len(accs):.2f}", flush=True)
            atomic_write_text(out, json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
