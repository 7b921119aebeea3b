"""Which MLP neurons a narrower decoder student keeps (issue 20), on SmolLM2-135M: by activation x output-weight
norm on the training text (edgekd.hf.mlp_neurons, what derive does when it has text), by the weights alone (the
product of each neuron's row / column norms in every MLP tensor, tried and dropped), and the leading slice (what
derive did before stop 33, and still does without text).

Two settings, each scored untrained on the same held-out Debian-text blocks (perplexity, KL to the teacher, top-1
agreement): "layers" keeps the same influence-chosen layers as benchmarks/decoder_distill.py, "full-depth" keeps all
30 (only the MLP is narrowed, so only the neuron choice differs from the teacher). Untrained, because the choice
sets where training starts. Also the decode speed of each width's ONNX file against the teacher's (KV cache, ONNX
Runtime, same threads, interleaved): what narrowing buys on top of dropping layers.
Writes benchmarks/results/decoder_mlp_neurons.json.

    python benchmarks/decoder_mlp_neurons.py [--layers 10] [--widths 1024,768] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "decoder_mlp_neurons.json"


def weight_norm_neurons(t_state, axes, keep, *rest):
    """By weights alone: the sum over the layer's 2-D MLP tensors of log row / column norms (data-free)."""
    import torch

    score = sum(torch.log(t_state[k].double().norm(dim=1 - ax) + 1e-12) for k, ax in axes.items()
                if t_state[k].dim() == 2)
    return torch.sort(torch.topk(score, keep).indices).values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--widths", default="1024,768", help="student MLP widths (the teacher's is 1536)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--eval-blocks", type=int, default=64)
    ap.add_argument("--runs", type=int, default=6, help="timed rounds per file for the decode speed")
    ap.add_argument("--work", default="/tmp/edgekd_mlp_neurons")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()

    import torch

    import edgekd.hf.student as student_mod
    from edgekd.core import atomic_write_text
    from edgekd.hf.export import export_optimum, save_student_dir
    from edgekd.hf.lm_eval import lm_batches, score_lms, torch_logits
    from edgekd.hf.teacher import load_hf_teacher
    from edgekd.hf.text_data import load_texts

    from decoder_distill import paired_speedup, smollm_gguf

    torch.set_num_threads(a.threads)
    t0 = time.time()
    teacher = load_hf_teacher(f"gguf:{smollm_gguf()}", max_length=a.block)
    data = load_texts("python-docs+wordnet+fortunes", seed=0)
    test = [b for b in lm_batches(teacher.tokenizer, data.test.texts, max_length=a.block, batch_size=4,
                                  limit=a.eval_blocks) if b["input_ids"].shape[1] == a.block]
    students, infos = {}, {}
    # the other two choices are the same derive with one part swapped: no activations (weights only), or the
    # first k neurons whatever they hold (the leading slice)
    swaps = {"activation": {}, "weights": {"important_neurons": weight_norm_neurons},
             "leading": {"important_neurons": lambda state, axes, keep, *rest: torch.arange(keep)}}
    for setting, layers in (("layers", f"influence:{a.layers}"), ("full-depth", list(range(teacher.num_layers)))):
        for w in [int(x) for x in a.widths.split(",")]:
            for choice, patch in swaps.items():
                saved = {k: getattr(student_mod, k) for k in patch}
                for k, v in patch.items():
                    setattr(student_mod, k, v)
                try:
                    key = f"{setting}/{choice}-{w}"
                    students[key], infos[key] = student_mod.derive_hf_student(
                        teacher, layers=layers, intermediate_size=w, texts=data.train.texts, max_length=a.block)
                finally:
                    for k, v in saved.items():
                        setattr(student_mod, k, v)
    students["layers/full-width"], infos["layers/full-width"] = student_mod.derive_hf_student(
        teacher, layers=f"influence:{a.layers}", texts=data.train.texts, max_length=a.block)
    scores = score_lms({k: torch_logits(s) for k, s in students.items()}, torch_logits(teacher.model), test,
                       reference="layers/full-width")
    print({k: round(v["perplexity"], 1) for k, v in scores.items()}, flush=True)

    work = Path(a.work)
    save_student_dir(teacher.model, teacher, work / "teacher-hf")
    t_onnx = export_optimum(work / "teacher-hf", work / "teacher-onnx", "text-generation-with-past")
    prompt = np.asarray([test[0]["input_ids"][0, :64]], np.int64)
    speed = {}
    for k in ["layers/full-width"] + [k for k in students if k.startswith("layers/activation-")]:
        d = work / k.replace("/", "_")
        save_student_dir(students[k], teacher, d)
        s_onnx = export_optimum(d, Path(f"{d}-onnx"), "text-generation-with-past")
        speed[k] = paired_speedup(t_onnx, s_onnx, prompt, threads=a.threads, runs=a.runs)
        print(k, speed[k]["speedup_median"], flush=True)

    res = {
        "what": "SmolLM2-135M-Instruct (GGUF Q4_1, dequantised to fp32) -> narrower-MLP students, MLP neurons kept by "
                "activation x output-weight norm (8 blocks of the training text), by weight norms alone, or the leading "
                "slice; 'layers/' keep the influence-chosen layers, 'full-depth/' all 30; untrained scores on held-out "
                "Debian-text blocks; decode speed-up of each width's ONNX over the teacher's",
        "layers": infos["layers/full-width"]["layers"], "teacher_intermediate_size": 1536,
        "params": {k: v["params"] for k, v in infos.items()},
        "teacher_params": infos["layers/full-width"]["teacher_params"],
        "untrained": {k: {"perplexity": round(v["perplexity"], 2), "kl_to_teacher": round(v["kl_to_teacher"], 4),
                          "top1_agreement": round(v["top1_agreement"], 4)} for k, v in scores.items()},
        "teacher_perplexity": round(scores["teacher"]["perplexity"], 2),
        "eval_tokens": scores["teacher"]["tokens"],
        "decode_speedup": {k: {"median": v["speedup_median"], **{kk: vv for kk, vv in v.items() if kk != "speedup_median"}}
                           for k, v in speed.items()},
        "host": {"machine": platform.machine(), "threads": a.threads, "note": "shared, loaded 2-core VM: speed-ups are "
                 "paired ratios (teacher and student interleaved in one run)"},
        "seconds": round(time.time() - t0, 1),
    }
    atomic_write_text(a.out, json.dumps(res, indent=2, default=str) + "\n")
    print(json.dumps({"untrained": res["untrained"], "speedup": {k: v["median"] for k, v in res["decode_speedup"].items()}},
                     indent=1))


if __name__ == "__main__":
    main()
