"""The decoder modality's evaluation: perplexity, top-1 agreement and KL to the teacher of every model on the same
held-out token blocks, parity with the PyTorch student (logits, greedy tokens), a few greedy continuations."""

from __future__ import annotations

from typing import Any

from edgekd.core import Artifact, StageResult

GENAI = "onnx-genai"  # the onnxruntime-genai folder's format (genai.py)
PARITY_TOL = {"fp32": 1e-3}  # max |logit diff| of the fp32 file vs torch; quantized files are judged by top-1 match


def _prompts(m) -> list[list[int]]:
    from edgekd.hf.train import pack_tokens

    c = m.cfg
    blocks = pack_tokens(m.teacher.tokenizer, m.test, c.prompt_len)
    return [b for b in blocks if len(b) == c.prompt_len][:c.continuations]


def _greedy(m, student, files: list[Artifact]) -> dict:
    """Greedy continuations of each prompt: torch student vs each ONNX file (own decode loop; the genai folder
    through og.Generator), and once through optimum's ORTModelForCausalLM.generate on the fp32 directory (the
    loader users will call)."""
    import numpy as np
    import torch
    from optimum.onnxruntime import ORTModelForCausalLM

    from edgekd.modalities.decoder.genai import first_divergence

    c, tok = m.cfg, m.teacher.tokenizer
    prompts = _prompts(m)
    gen = dict(max_new_tokens=c.new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    out = {"prompts": [tok.decode(p) for p in prompts], "teacher": [], "student": [], "same_tokens": {}}
    ref = []
    for p in prompts:
        x = torch.tensor([p])
        with torch.no_grad():
            out["teacher"].append(tok.decode(m.teacher.model.generate(x, attention_mask=torch.ones_like(x), **gen)[0, len(p):]))
            ref.append(student.generate(x, attention_mask=torch.ones_like(x), **gen)[0, len(p):].tolist())
        out["student"].append(tok.decode(ref[-1]))
    for a in (f for f in files if f.format in ("onnx", GENAI)):
        dec = _decoder(m, a)
        got = [dec.greedy(np.asarray([p], np.int64), len(r)) for p, r in zip(prompts, ref)]
        out["same_tokens"][a.name] = float(np.mean([g == r for g, r in zip(got, ref)])) if ref else None
        if a.format == GENAI:  # generation through onnxruntime_genai's own loop: where it first leaves the student's
            out.setdefault("first_divergence", {})[a.name] = [first_divergence(r, g) for r, g in zip(ref, got)]
    onnx = next(a for a in files if a.name == "student-onnx")
    om = ORTModelForCausalLM.from_pretrained(m.run.path(onnx.extra["optimum_dir"]))
    opt = [om.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long), **gen)[0, len(p):].tolist()
           for p in prompts]
    out["optimum_generate_same_tokens"] = float(np.mean([o == r for o, r in zip(opt, ref)])) if ref else None
    return out


def _decoder(m, a: Artifact):
    """The KV-cache runner of a file: edgekd's ONNX Runtime loop, or onnxruntime_genai for the genai folder."""
    if a.format == GENAI:
        from edgekd.modalities.decoder.genai import GenaiDecoder

        return GenaiDecoder(m.run.path(a.path), threads=m.threads)
    from edgekd.hf.decoder_runtime import OrtDecoder

    return OrtDecoder(m.run.path(a.path), threads=m.threads)


def _logits_of(m, a: Artifact):
    from edgekd.hf.decoder_runtime import tflite_lm

    if a.format == "tflite":
        return tflite_lm(m.run.path(a.path), m.teacher.tokenizer.pad_token_id or 0, threads=m.threads)
    return _decoder(m, a).logits


def evaluate_files(m, student, files: list[Artifact]) -> list[Artifact]:
    from edgekd.hf.lm_eval import lm_batches, score_lms, torch_logits

    c = m.cfg
    scored = [a for a in files if a.name != "teacher-onnx"]
    settings = {"files": {a.name: a.sha256 for a in scored}, "student": m.student_key, "teacher": m.t_key,
                "n": len(m.test), "max_length": c.max_length, "prompt_len": c.prompt_len, "new_tokens": c.new_tokens}

    def run_eval() -> StageResult:
        batches = lm_batches(m.teacher.tokenizer, m.test, max_length=c.max_length, batch_size=c.batch_size,
                             limit=c.eval_samples)
        m.say(f"perplexity and agreement on {sum(len(b['input_ids']) for b in batches)} held-out blocks of "
              f"{c.max_length} tokens")
        models = {"student": torch_logits(student),
                  **{a.name: _logits_of(m, a) for a in scored if a.format in ("onnx", GENAI) or c.seq_len >= c.max_length}}
        scores = score_lms(models, torch_logits(m.teacher.model), batches, reference="student")
        return StageResult([], {"scores": scores, "greedy": _greedy(m, student, scored)})

    res, _ = m.run.run_stage("decoder-evaluate", settings, run_eval, force=c.force)
    m.scores, m.greedy = res.metrics["scores"], res.metrics["greedy"]
    return _rows(m, files)


def _rows(m, files: list[Artifact]) -> list[Artifact]:
    d = m.d_res.artifacts[0]
    rows = [Artifact("teacher", str(m.cfg.teacher), "pytorch", "fp32"),
            Artifact("student", d.path, "pytorch", "fp32", size_bytes=d.size_bytes, sha256=m.student_key,
                     extra={"hf_dir": "student"})] + files
    for a in rows:
        s = m.scores.get("teacher" if a.name == "teacher-onnx" else a.name)
        if not s:
            continue
        a.accuracy = round(s["top1_agreement"] * 100, 2)
        a.extra.update({"accuracy_metric": "next-token top-1 agreement with the teacher (x100)",
                        "perplexity": s["perplexity"], "kl_to_teacher": s["kl_to_teacher"]})
        if "parity" in s:
            p = {**s["parity"], "same_greedy_tokens": m.greedy["same_tokens"].get(a.name)}
            a.extra["parity_vs_student"] = p
            _check_parity(m, a, p)
    return rows


def _check_parity(m, a: Artifact, p: dict) -> None:
    """A failed parity check is never silent: a note (the report's) names the file and the figure."""
    tol = PARITY_TOL.get(a.precision)
    if tol is not None and p["max_abs_logit_diff"] > tol:
        m.notes.append(f"PARITY: {a.name} logits differ from the PyTorch student by {p['max_abs_logit_diff']:.2e} "
                       f"(tolerance {tol:g}).")
    if p.get("same_greedy_tokens") is not None and p["same_greedy_tokens"] < 1.0 and a.precision == "fp32":
        m.notes.append(f"PARITY: {a.name} greedy tokens differ from the PyTorch student on "
                       f"{1 - p['same_greedy_tokens']:.0%} of the prompts.")


def describe(m, rows: list[Artifact]) -> dict[str, Any]:
    met, c, t = m.d_res.metrics, m.cfg, m.teacher
    lat = {a.name: a.latency or {} for a in rows}
    t_tps = lat.get("teacher-onnx", {}).get("decode_tokens_per_s")
    speed = {a.name: round(lat[a.name]["decode_tokens_per_s"] / t_tps, 3) for a in rows
             if t_tps and lat[a.name].get("decode_tokens_per_s") and a.name != "teacher-onnx"}
    sizes = {a.name: a.size_bytes for a in rows if a.format in ("onnx", GENAI)}
    fp32 = sizes.get("student-onnx")
    return {
        "data": m.texts.describe(),
        "teacher": {"spec": str(c.teacher), "kind": t.kind, "layers": t.num_layers, "gguf": t.gguf_file,
                    "params": met["student"]["teacher_params"], "architecture": type(t.model).__name__},
        "student": {**met["student"], "params_ratio": round(met["student"]["teacher_params"] / met["student"]["params"], 3)},
        "distill": {"epochs": c.epochs, "seed": c.seed, "temperature": c.temperature,
                    **{k: met["train"][k] for k in ("steps", "seconds", "stopped", "weights", "train_tokens")},
                    "val_perplexity_before": met["val_before"]["student"]["perplexity"],
                    "val_perplexity_after": met["val_after"]["student"]["perplexity"],
                    "val_perplexity_teacher": met["val_after"]["teacher"]["perplexity"]},
        "accuracy_metric": "next-token top-1 agreement with the teacher on held-out text, x100",
        "accuracy_column": "top-1 agreement x100",
        "perplexity": {k: round(v["perplexity"], 3) for k, v in m.scores.items()},
        "kl_to_teacher": {k: round(v["kl_to_teacher"], 4) for k, v in m.scores.items() if k != "teacher"},
        "greedy": m.greedy,
        "decode_speedup_vs_teacher_onnx": speed,
        "size_ratio_vs_student_onnx": {k: round(v / fp32, 4) for k, v in sizes.items() if fp32 and v},
    }
