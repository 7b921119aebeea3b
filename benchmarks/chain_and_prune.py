"""Benchmark for issue 6: (a) direct KD vs teacher-assistant chain at a large capacity gap,
(b) structured pruning 0.3 / 0.5 / 0.7 with and without KD recovery.

Fashion-MNIST (real data), the built-in example teacher (examples/fashion_mnist, trained by the lead),
3 seeds. Bounded: a training subset and a fixed number of optimizer steps per run (see --help); the
script prints its own wall time. Latency is measured on this host, interleaved (A B A B ...), medians:
PyTorch eager and ONNX Runtime CPU, batch 1, the thread count given.

    .venv/bin/python benchmarks/chain_and_prune.py            # full run, writes benchmarks/results/chain_and_prune.json
    .venv/bin/python benchmarks/chain_and_prune.py --quick    # smoke run (minutes less), writes *_quick.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train", type=int, default=12000, help="training images used (subset of the 54k)")
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=600, help="total optimizer steps per student (a)")
    ap.add_argument("--recover-steps", type=int, default=100, help="recovery steps per pruning step (b)")
    ap.add_argument("--probe-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", choices=["a", "b"], default=None)
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.train, args.val, args.steps, args.recover_steps, args.probe_steps = [0], 3000, 500, 120, 30, 30

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from edgekd.data import load_data
    from edgekd.distill import TeacherCache, distill
    from edgekd.models import load_model
    from edgekd.prune import _train
    from edgekd.prune.chain import auto_probe, plan_chain, run_chain
    from edgekd.prune.derived import derive
    from edgekd.prune.structured import prune

    t_start = time.perf_counter()
    weights = ROOT / "examples" / "fashion_mnist" / "teacher.pt"
    if not weights.is_file():
        sys.exit(f"missing {weights}: train it with examples/fashion_mnist/train_teacher.py first")
    full = load_data("fashion-mnist", seed=0)
    data = dataclasses.replace(full, train=full.train.subset(args.train, 0), val=full.val.subset(args.val, 0))
    teacher = load_model(f"{ROOT}/examples/fashion_mnist/teacher.py:build_teacher", weights).eval()
    x1 = torch.from_numpy(data.test.x[:1])
    t_acc = _train.accuracy(teacher, data.test)
    batch = 128
    epochs_for = lambda steps: max(1, math.ceil(steps * batch / len(data.train)))  # noqa: E731
    cache = TeacherCache(len(data.train), 1)  # recipe hinton: no augmentation, one view; shared by all runs

    out = {"setup": {
        "data": "fashion-mnist (real)", "train_images": len(data.train), "val_images": len(data.val),
        "test_images": len(data.test), "seeds": args.seeds, "batch_size": batch, "recipe": "hinton (T=4, alpha=0.9)",
        "teacher": "examples/fashion_mnist teacher.pt", "teacher_test_acc": t_acc, "threads": args.threads,
        "host": f"{platform.machine()} {platform.processor() or ''}".strip(), "quick": args.quick}}
    print(f"teacher test acc {t_acc:.4f}", flush=True)

    # ---------------------------------------------------------------- (a) large gap: direct vs chain
    if args.skip != "a":
        ratio, round_to = 0.02, 4  # 50x fewer MACs; round_to 4 so width pruning can get that small
        rows = []
        for seed in args.seeds:
            torch.manual_seed(seed)
            d = derive(teacher, ratio=ratio, example_input=x1, round_to=round_to, measure_latency=False)
            s = d.model
            t0 = time.perf_counter()
            m = distill(teacher, s, data, recipe="hinton", epochs=epochs_for(args.steps), max_steps=args.steps,
                        batch_size=batch, seed=seed, progress=False, cache=cache).metrics
            direct = {"test_acc": _train.accuracy(s, data.test), "macs": d.macs_after,
                      "macs_ratio": d.macs_after / d.macs_before, "steps": m["steps"],
                      "seconds": round(time.perf_counter() - t0, 1),
                      "agreement": _train.agreement(s, teacher, data.test.x[:2000])}
            t0 = time.perf_counter()
            probe = auto_probe(teacher, data, ratio, example_input=x1, steps=args.probe_steps, batch_size=batch,
                               seed=seed, round_to=round_to)
            auto_plan = plan_chain(None, ratio, probe=probe, chain="auto")
            probe_s = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            res = run_chain(teacher, None, data, student_ratio=ratio, plan=plan_chain(None, ratio, chain="1"),
                            recipe="hinton", max_steps=args.steps, batch_size=batch, seed=seed, round_to=round_to,
                            teacher_cache=cache)
            chain = {"test_acc": _train.accuracy(res.student, data.test), "links": res.links,
                     "macs": res.links[-1]["macs"], "macs_ratio": res.links[-1]["macs_ratio"],
                     "steps": sum(l["steps"] for l in res.links), "seconds": round(time.perf_counter() - t0, 1),
                     "agreement": _train.agreement(res.student, teacher, data.test.x[:2000])}
            auto_uses_chain = auto_plan.n_assistants > 0
            row = {"seed": seed, "direct_kd": direct, "ta_chain_1": chain,
                   "auto_plan": auto_plan.to_dict(), "probe_seconds": probe_s,
                   "auto_result_test_acc": chain["test_acc"] if auto_uses_chain else direct["test_acc"]}
            rows.append(row)
            print(f"(a) seed {seed}: direct {direct['test_acc']:.4f}  chain {chain['test_acc']:.4f}  "
                  f"auto -> {auto_plan.n_assistants} TA ({auto_plan.reason})", flush=True)
        dacc = [r["direct_kd"]["test_acc"] for r in rows]
        cacc = [r["ta_chain_1"]["test_acc"] for r in rows]
        aacc = [r["auto_result_test_acc"] for r in rows]
        diff = [c - d for c, d in zip(cacc, dacc)]
        out["a_large_gap"] = {
            "student_macs_ratio_target": ratio, "round_to": round_to, "total_steps_each": args.steps,
            "budget_note": "same optimizer steps: direct KD trains the student all steps; the chain splits them "
                           "equally over teacher->TA and TA->student (student derived from the trained TA)",
            "runs": rows,
            "summary": {"direct_mean": statistics.fmean(dacc), "chain_mean": statistics.fmean(cacc),
                        "auto_mean": statistics.fmean(aacc), "chain_minus_direct_mean": statistics.fmean(diff),
                        "chain_minus_direct_per_seed": diff,
                        "winner": "ta_chain" if statistics.fmean(diff) > 0 else "direct_kd"}}
        _write(out, args)

    # ---------------------------------------------------------------- (b) pruning with / without KD recovery
    if args.skip != "b":
        torch.manual_seed(0)
        d = derive(teacher, ratio=0.25, example_input=x1, measure_latency=False)
        base = d.model
        distill(teacher, base, data, recipe="hinton", epochs=epochs_for(args.steps), max_steps=args.steps,
                batch_size=batch, seed=0, progress=False, cache=cache)
        base.requires_grad_(True)
        base_acc = _train.accuracy(base, data.test)
        print(f"(b) base student: {d.macs_after} MACs, test acc {base_acc:.4f}", flush=True)
        rows, models = [], {"base": base}
        for r in (0.3, 0.5, 0.7):
            for recovery in ("none", "ce", "kd"):
                for seed in (args.seeds if recovery != "none" else args.seeds[:1]):
                    t0 = time.perf_counter()
                    pr = prune(base, teacher, data, ratio=r, steps=2, recover_epochs=1 if recovery != "none" else 0,
                               recover_steps=args.recover_steps, recovery=recovery if recovery != "none" else "kd",
                               recipe="hinton", batch_size=batch, seed=seed, measure_latency=False,
                               teacher_cache=cache if recovery == "kd" else None)
                    rows.append({"ratio": r, "recovery": recovery, "seed": seed, "test_acc": pr.test_accuracy_after,
                                 "macs": pr.macs_after, "params": pr.params_after,
                                 "macs_ratio": pr.macs_after / pr.macs_before,
                                 "seconds": round(time.perf_counter() - t0, 1)})
                    if recovery == "kd" and seed == args.seeds[0]:
                        models[f"pruned_{r}"] = pr.model
                    print(f"(b) ratio {r} {recovery} seed {seed}: acc {pr.test_accuracy_after:.4f} "
                          f"MACs {pr.macs_after}", flush=True)
        latency = _latency(models, data, args.threads, out_dir=ROOT / "benchmarks" / "results" / "_chain_prune_onnx")
        summary = {}
        for r in (0.3, 0.5, 0.7):
            for recovery in ("none", "ce", "kd"):
                accs = [x["test_acc"] for x in rows if x["ratio"] == r and x["recovery"] == recovery]
                summary[f"{r}/{recovery}"] = {"test_acc_mean": statistics.fmean(accs), "n": len(accs),
                                             "test_acc_min": min(accs), "test_acc_max": max(accs)}
        out["b_prune"] = {
            "base_student": {"macs": d.macs_after, "params": d.params_after, "test_acc": base_acc,
                             "how": "derive(teacher, ratio=0.25) then KD (hinton) for the same steps as (a)"},
            "settings": {"steps": 2, "scope": "global", "importance": "magnitude", "round_to": 8,
                         "recover_steps_per_step": args.recover_steps,
                         "recovery": {"none": "no training after pruning", "ce": "cross-entropy on labels",
                                      "kd": "distillation from the teacher (hinton)"}},
            "runs": rows, "summary": summary, "latency": latency}
    out["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    _write(out, args)
    print(f"done in {out['wall_seconds']} s", flush=True)


def _latency(models, data, threads, *, out_dir, runs=200, warmup=20):
    """Interleaved host latency: PyTorch eager and ONNX Runtime (CPU EP), batch 1, medians."""
    import numpy as np

    from edgekd.export import export_onnx
    from edgekd.prune._util import count, measure_latency
    from edgekd.runtime import load_runner

    import torch

    x1 = torch.from_numpy(data.test.x[:1])
    eager = measure_latency(models, x1, threads=threads, runs=runs, warmup=warmup)
    out_dir.mkdir(parents=True, exist_ok=True)
    runners, parity = {}, {}
    for name, m in models.items():
        rep = export_onnx(m, data.test.x[:32], out_dir / f"{name}.onnx")
        parity[name] = {"passed": rep.passed, **{k: rep.parity.get(k) for k in ("max_abs", "top1_agreement")
                                                if k in rep.parity}}
        runners[name] = load_runner(out_dir / f"{name}.onnx", threads=threads)
    prepared = {k: r.prepare(data.test.x[:1]) for k, r in runners.items()}
    times = {k: [] for k in runners}
    for _ in range(warmup):
        for k, r in runners.items():
            r.run_once(prepared[k])
    for _ in range(runs):
        for k, r in runners.items():
            t0 = time.perf_counter()
            r.run_once(prepared[k])
            times[k].append((time.perf_counter() - t0) * 1000)
    base_e, base_o = eager["base"]["p50_ms"], float(np.median(times["base"]))
    res = {}
    for k in models:
        macs, params = count(models[k], x1)
        o = float(np.median(times[k]))
        res[k] = {"macs": macs, "params": params, "pytorch_eager_p50_ms": eager[k]["p50_ms"],
                  "onnxruntime_p50_ms": round(o, 4), "speedup_vs_base_eager": round(base_e / eager[k]["p50_ms"], 3),
                  "speedup_vs_base_ort": round(base_o / o, 3), "onnx_parity": parity[k]}
    return {"kind": "measured", "where": f"host {platform.machine()} (shared 2-core machine, loaded)",
            "threads": threads, "runs": runs, "warmup": warmup, "batch": 1,
            "method": "interleaved A B A B..., median; ORT CPUExecutionProvider 1.32; PyTorch eager", "models": res}


def _write(out, args):
    name = "chain_and_prune_quick.json" if args.quick else "chain_and_prune.json"
    p = ROOT / "benchmarks" / "results" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
