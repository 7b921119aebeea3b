"""The untrained students' val accuracy per pair and seed, raw and as auto's head-start rule measures it (batch-norm
statistics re-estimated on training inputs), with the majority-class rate: for initial_fit_lr_report.py.

    .venv/bin/python benchmarks/initial_fit_measure.py --pairs digits-mlp,... --seeds 0,1 --out initial.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distill_suite as ds  # noqa: E402

from edgekd.core import atomic_write_text  # noqa: E402
from edgekd.distill import auto  # noqa: E402
from edgekd.distill.trainer.ddp import Dist  # noqa: E402
from edgekd.distill.trainer.evaluation import evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    doc = json.loads(out.read_text()) if out.is_file() else {}
    names = sorted(ds.KEPT_BACK) if a.pairs == "kept-back" else a.pairs.split(",")
    for name in names:
        data, teacher, _, _, spec = ds.pair_setup(name)
        rows = []
        for seed in [int(s) for s in a.seeds.split(",")]:
            s = ds.make_student(spec, teacher, data, seed)
            raw, _ = evaluate(s, data.val.x, data.val.y, Dist())
            acc, chance, n_val = auto._student_vs_chance(s, data)
            rows.append({"seed": seed, "raw_val_acc": round(raw, 4), "val_acc": round(acc, 4),
                         "majority": round(chance, 4), "n_val": n_val,
                         "head_start": auto.head_start((acc, chance, n_val))})
        doc[name] = rows
        print(name, [(r["raw_val_acc"], r["val_acc"]) for r in rows], rows[0]["majority"], flush=True)
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
