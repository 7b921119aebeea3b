"""Run exported HF models (ONNX via ONNX Runtime, TFLite via LiteRT) on tokenised batches, and time them.

edgekd.runtime's runners feed one float image tensor; text models take several integer inputs with a
dynamic sequence axis, so they get small encoders here, on edgekd.runtime's sessions and timing loop.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekd.errors import EdgeKDError
from edgekd.runtime.machine import cpu_name
from edgekd.runtime.sessions import litert_interpreter, ort_session
from edgekd.runtime.stats import summarize
from edgekd.runtime.timing import time_calls

MIN_ROUNDS = 5  # a max_seconds cut still leaves this many samples per file


def _ort(path: str | Path, threads: int):
    return ort_session(path, threads=threads, log_severity=3)


def ort_encoder(path: str | Path, kind: str, *, pooling: str = "mean", normalize: bool = True,
                threads: int = 2) -> Callable[[dict], np.ndarray]:
    """encode(batch) -> sentence embeddings (embedding kind, pooled like the teacher) or logits."""
    from edgekd.hf.evaluate import reduce_output

    sess = _ort(path, threads)
    names = [i.name for i in sess.get_inputs()]

    def enc(b: dict) -> np.ndarray:
        feed = {n: b[n].astype(np.int64) if n in b else np.zeros_like(b["input_ids"], np.int64) for n in names}
        raw = sess.run(None, feed)[0]
        return reduce_output(raw, b, kind, pooling=pooling, normalize=normalize)

    return enc


def tflite_encoder(path: str | Path, threads: int = 2) -> Callable[[dict], np.ndarray]:
    """encode(batch) for the fixed-shape file from export_tflite: (input_ids, attention_mask), batch 1
    per invoke; the file already outputs the pooled embedding / logits."""
    runner = litert_interpreter(path, threads=threads).get_signature_runner()
    in_names = sorted(runner.get_input_details())  # args_0 = input_ids, args_1 = attention_mask
    seq = int(runner.get_input_details()[in_names[0]]["shape"][-1])

    def enc(b: dict) -> np.ndarray:
        ids, mask = b["input_ids"], b["attention_mask"]
        if ids.shape[1] != seq:
            raise EdgeKDError(f"the TFLite file takes sequences of exactly {seq} tokens, got {ids.shape[1]}")
        rows = []
        for r in range(ids.shape[0]):
            out = runner(**{in_names[0]: ids[r:r + 1].astype(np.int32), in_names[1]: mask[r:r + 1].astype(np.int32)})
            rows.append(next(iter(out.values()))[0])
        return np.stack(rows)

    return enc


def where_host(runtime: str, threads: int, seq_len: int) -> str:
    return (f"host {platform.machine()} ({cpu_name()}, {os.cpu_count()} cores, shared), {runtime}, "
            f"{threads} thread{'s' if threads != 1 else ''}, batch 1, seq {seq_len}")


def interleaved(fns: dict[str, Callable[[], Any]], *, runs: int = 30, warmup: int = 3,
                max_seconds: float = 60.0) -> dict[str, dict[str, float]]:
    """{name: p50/p90/p99/mean_ms and runs}: the callables timed A B C A B C ... in one loop."""
    ms = time_calls(fns, rounds=runs, warmup=warmup, min_rounds=MIN_ROUNDS, max_seconds=max_seconds)
    return {k: {**summarize(v), "runs": int(v.size)} for k, v in ms.items()}


def latency_inputs(tokenizer, text: str, seq_len: int) -> dict[str, np.ndarray]:
    """One real sentence padded to exactly seq_len tokens (padding costs the same as text in BERT)."""
    b = tokenizer([text], padding="max_length", truncation=True, max_length=seq_len, return_tensors="np")
    return {k: v.astype(np.int64) for k, v in b.items()}


def ort_call(path: str | Path, inputs: dict[str, np.ndarray], threads: int) -> Callable[[], Any]:
    sess = _ort(path, threads)
    names = [i.name for i in sess.get_inputs()]
    feed = {n: inputs.get(n, np.zeros_like(inputs["input_ids"])) for n in names}
    return lambda: sess.run(None, feed)
