"""Companion to decoder_distill.py: the same teacher, student, data, budget and CE baseline, training only (no files,
no timing), at another KD temperature. Writes benchmarks/results/decoder_distill_T{T}.json.

    python benchmarks/decoder_distill_temperature.py --temperature 1 --budget 240 --clock cpu --threads 1
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

from decoder_distill import DATA, OUT, PHASES, phase, smollm_gguf, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--budget", type=float, default=240.0)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="cpu")
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--eval-blocks", type=int, default=16)
    a = ap.parse_args()
    import torch

    from edgekd.hf.lm_eval import lm_batches, score_lms, torch_logits
    from edgekd.hf.student import derive_hf_student
    from edgekd.hf.teacher import load_hf_teacher
    from edgekd.hf.text_data import load_texts

    torch.set_num_threads(a.threads)
    teacher = load_hf_teacher(f"gguf:{smollm_gguf()}", max_length=a.block)
    data = load_texts(DATA, seed=0)
    test = lm_batches(teacher.tokenizer, data.test.texts, max_length=a.block, batch_size=a.batch, limit=a.eval_blocks)
    test = [b for b in test if b["input_ids"].shape[1] == a.block]
    kd, info = derive_hf_student(teacher, layers=a.layers)
    ce = copy.deepcopy(kd)
    phase("load + derive")
    untrained = score_lms({"untrained": torch_logits(kd)}, torch_logits(teacher.model), test)
    phase("score untrained")
    h_kd = train(teacher, kd, data.train.texts, budget=a.budget, steps=None, weights={"soft": 1.0, "hard": 1.0}, a=a)
    phase("train kd")
    h_ce = train(teacher, ce, data.train.texts, budget=None, steps=h_kd["steps"], weights={"soft": 0.0, "hard": 1.0}, a=a)
    phase("train ce")
    scores = score_lms({"kd": torch_logits(kd), "ce": torch_logits(ce)}, torch_logits(teacher.model), test)
    phase("score")
    keys = ("steps", "seconds", "wall_seconds", "stopped", "train_tokens", "weights", "lr", "batch_size", "temperature")
    res = {"summary": {"temperature": a.temperature, "ppl_teacher": round(scores["teacher"]["perplexity"], 2),
                       "ppl_untrained": round(untrained["untrained"]["perplexity"], 2),
                       "ppl_kd": round(scores["kd"]["perplexity"], 2), "ppl_ce": round(scores["ce"]["perplexity"], 2)},
           "student": info, "train": {"kd": {k: h_kd.get(k) for k in keys}, "ce": {k: h_ce.get(k) for k in keys}},
           "scores": {**scores, **untrained}, "phases": PHASES, "args": vars(a),
           "budget": {"clock": a.clock, "note": "cpu clock: process CPU seconds on a shared 2-core host"},
           "cpu_seconds": round(time.process_time(), 1)}
    out = OUT.with_name(f"decoder_distill_T{a.temperature:g}.json")
    out.write_text(json.dumps(res, indent=2, default=float) + "\n")
    print(json.dumps(res["summary"]))


if __name__ == "__main__":
    main()
