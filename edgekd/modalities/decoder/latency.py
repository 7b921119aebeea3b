"""The decoder modality's profile: for every ONNX file (teacher's included, so the ratio means something),
prefill time of a prompt, decode tokens/s with the KV cache, and peak memory, measured on this host with ONNX
Runtime, the files interleaved; the onnxruntime-genai folder through og.Generator after them. No phone is
touched: the figures say so."""

from __future__ import annotations

from edgekd.core import Artifact, StageResult

MIN_ROUNDS = 3


def _memory(path, threads: int, prompt, n: int) -> dict:
    """Peak RSS while loading the file and generating n tokens (VmHWM reset first), and its rise over the
    process's baseline (Python, torch and the other models already loaded)."""
    from edgekd.hf.decoder_runtime import OrtDecoder, proc_status_kb, reset_peak_rss

    base = proc_status_kb("VmRSS")
    if not reset_peak_rss() or base is None:
        return {}
    dec = OrtDecoder(path, threads=threads)
    dec.greedy(prompt, n)
    peak = proc_status_kb("VmHWM")
    del dec
    return {"peak_rss_mb": round(peak / 1024, 1), "peak_over_baseline_mb": round((peak - base) / 1024, 1)}


def measure_decoders(paths: dict, prompt, *, new_tokens: int, threads: int, runs: int, max_seconds: float = 120) -> dict:
    """{name: Latency dict}: p50 = ms per decoded token; prefill and tokens/s beside it."""
    import onnxruntime

    from edgekd.hf.decoder_runtime import OrtDecoder
    from edgekd.hf.runtime import where_host
    from edgekd.runtime import Latency
    from edgekd.runtime.stats import summarize
    from edgekd.runtime.timing import time_calls

    mem = {k: _memory(p, threads, prompt, new_tokens) for k, p in paths.items()}
    decs = {k: OrtDecoder(p, threads=threads) for k, p in paths.items()}
    states = {k: d.prefill(prompt) for k, d in decs.items()}
    pre = time_calls({k: (lambda d=d: d.prefill(prompt)) for k, d in decs.items()}, rounds=runs, warmup=1,
                     min_rounds=MIN_ROUNDS, max_seconds=max_seconds)
    dec = time_calls({k: (lambda k=k, d=d: d.decode(*states[k], prompt.shape[1], new_tokens)) for k, d in decs.items()},
                     rounds=runs, warmup=1, min_rounds=MIN_ROUNDS, max_seconds=max_seconds)
    rt = f"onnxruntime {onnxruntime.__version__} CPU EP"
    where = (where_host(rt, threads, prompt.shape[1]).replace(", seq ", ", prompt ") +
             f", {new_tokens} greedy tokens with the KV cache, files interleaved; not a phone")
    out = {}
    for k in paths:
        per_tok = dec[k] / max(1, new_tokens - 1)  # the first token comes from the prefill's logits
        p50_pre = summarize(pre[k])["p50_ms"]
        out[k] = Latency.from_ms(per_tok, warmup=1, threads=threads, runtime=rt, kind="measured", where=where, extra={
            "metric": "ms per decoded token", "prompt_len": int(prompt.shape[1]), "new_tokens": new_tokens,
            "prefill_ms_p50": round(p50_pre, 3), "time_to_first_token_ms": round(p50_pre, 3),
            "decode_tokens_per_s": round(1000.0 / summarize(per_tok)["p50_ms"], 2), **mem[k]}).to_dict()
    return out


def latency_stage(m, rows: list[Artifact]) -> list[Artifact]:
    import numpy as np

    from edgekd.modalities.decoder.evaluate import _prompts
    from edgekd.modalities.text.latency import _tflite_latency

    c = m.cfg
    files = [a for a in rows if a.format == "onnx"]  # the KV-cache files; the fixed-window TFLite is not a decoder loop
    genai_rows = [a for a in rows if a.format == "onnx-genai"]  # through onnxruntime_genai's own loop
    settings = {"files": {a.name: a.sha256 for a in rows if a.format in ("onnx", "tflite", "onnx-genai")}, "prompt_len": c.prompt_len, "new_tokens": c.new_tokens,
                "threads": m.threads, "runs": c.runs}

    def run_latency() -> StageResult:
        prompt = np.asarray(_prompts(m)[:1] or [[m.teacher.tokenizer.eos_token_id] * c.prompt_len], np.int64)
        m.say(f"timing {len(files)} decoder ONNX files interleaved (prompt {prompt.shape[1]}, {c.new_tokens} tokens, "
              f"{m.threads} threads)")
        lat = measure_decoders({a.name: m.run.path(a.path) for a in files}, prompt, new_tokens=c.new_tokens,
                               threads=m.threads, runs=c.runs)
        if genai_rows:
            from edgekd.modalities.decoder.genai import measure_genai

            for a in genai_rows:
                lat[a.name] = measure_genai(m.run.path(a.path), prompt, new_tokens=c.new_tokens, threads=m.threads,
                                            runs=c.runs)
        for a in rows:  # the fixed-window TFLite file: one window's forward, through the target's own profiler
            if a.format == "tflite":
                lat[a.name] = _tflite_latency(m.run.path(a.path), m.target, c.runs, m.threads)
        return StageResult([], {"latency": lat})

    res, _ = m.run.run_stage("decoder-latency", settings, run_latency, force=c.force)
    for a in rows:
        if a.name in res.metrics["latency"]:
            a.latency = res.metrics["latency"][a.name]
    return rows
