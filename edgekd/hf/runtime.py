"""Run exported HF models (ONNX via ONNX Runtime, TFLite via LiteRT) on tokenised batches, and time them.

edgekd.runtime / edgekd.profile feed one float image tensor; text models take several integer
inputs with a dynamic sequence axis, so they get their own small runners here.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekd.errors import EdgeKDError


def ort_session(path: str | Path, threads: int = 2):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise EdgeKDError(f"ONNX Runtime cannot load {Path(path).name}: {str(exc).strip().splitlines()[0][:300]}") from None


def ort_encoder(path: str | Path, kind: str, *, pooling: str = "mean", normalize: bool = True,
                threads: int = 2) -> Callable[[dict], np.ndarray]:
    """encode(batch) -> sentence embeddings (embedding kind, pooled like the teacher) or logits."""
    from edgekd.hf.evaluate import reduce_output

    sess = ort_session(path, threads)
    names = [i.name for i in sess.get_inputs()]

    def enc(b: dict) -> np.ndarray:
        feed = {n: b[n].astype(np.int64) if n in b else np.zeros_like(b["input_ids"], np.int64) for n in names}
        raw = sess.run(None, feed)[0]
        return reduce_output(raw, b, kind, pooling=pooling, normalize=normalize)

    return enc


def tflite_interpreter(path: str | Path, threads: int = 2):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # older installs
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    try:
        it = Interpreter(model_path=str(path), num_threads=threads)
    except (ValueError, RuntimeError) as exc:
        raise EdgeKDError(f"LiteRT cannot load {Path(path).name}: {str(exc).strip().splitlines()[0][:300]}") from None
    it.allocate_tensors()
    return it


def tflite_encoder(path: str | Path, threads: int = 2) -> Callable[[dict], np.ndarray]:
    """encode(batch) for the fixed-shape file from export_tflite: (input_ids, attention_mask), batch 1
    per invoke; the file already outputs the pooled embedding / logits."""
    it = tflite_interpreter(path, threads)
    runner = it.get_signature_runner()
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


def _stats(times_ms: list[float]) -> dict[str, float]:
    t = np.asarray(times_ms)
    return {"p50_ms": float(np.percentile(t, 50)), "p90_ms": float(np.percentile(t, 90)),
            "p99_ms": float(np.percentile(t, 99)), "mean_ms": float(t.mean()), "runs": int(t.size)}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def where_host(runtime: str, threads: int, seq_len: int) -> str:
    return (f"host {platform.machine()} ({_cpu()}, {os.cpu_count()} cores, shared), {runtime}, "
            f"{threads} thread{'s' if threads != 1 else ''}, batch 1, seq {seq_len}")


def interleaved(fns: dict[str, Callable[[], Any]], *, runs: int = 30, warmup: int = 3,
                max_seconds: float = 60.0) -> dict[str, dict[str, float]]:
    """Time several callables A B C A B C ... in one loop so machine-load drift hits them alike."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    for i in range(runs):
        for k, f in fns.items():
            t = time.perf_counter_ns()
            f()
            times[k].append((time.perf_counter_ns() - t) / 1e6)
        if time.perf_counter() - start > max_seconds and i >= 4:
            break
    return {k: _stats(v) for k, v in times.items()}


def latency_inputs(tokenizer, text: str, seq_len: int) -> dict[str, np.ndarray]:
    """One real sentence padded to exactly seq_len tokens (padding costs the same as text in BERT)."""
    b = tokenizer([text], padding="max_length", truncation=True, max_length=seq_len, return_tensors="np")
    return {k: v.astype(np.int64) for k, v in b.items()}


def ort_call(path: str | Path, inputs: dict[str, np.ndarray], threads: int) -> Callable[[], Any]:
    sess = ort_session(path, threads)
    names = [i.name for i in sess.get_inputs()]
    feed = {n: inputs.get(n, np.zeros_like(inputs["input_ids"])) for n in names}
    return lambda: sess.run(None, feed)


def tflite_call(path: str | Path, inputs: dict[str, np.ndarray], threads: int) -> Callable[[], Any]:
    it = tflite_interpreter(path, threads)
    details = sorted(it.get_input_details(), key=lambda d: d["name"])
    arrays = [inputs["input_ids"].astype(np.int32), inputs["attention_mask"].astype(np.int32)]

    def call():
        for d, a in zip(details, arrays):
            it.set_tensor(d["index"], a)
        it.invoke()

    return call


def measure_latency(kind: str, path: str | Path, inputs: dict[str, np.ndarray], *, threads: int, runs: int,
                    warmup: int, max_seconds: float) -> dict[str, Any]:
    """One artifact's latency in the edgekd latency-dict format (measured on this host)."""
    seq = int(inputs["input_ids"].shape[1])
    if kind == "tflite":
        import ai_edge_litert

        call, runtime = tflite_call(path, inputs, threads), f"litert {getattr(ai_edge_litert, '__version__', '')}".strip()
    else:
        import onnxruntime

        call, runtime = ort_call(path, inputs, threads), f"onnxruntime {onnxruntime.__version__} CPU EP"
    st = interleaved({"m": call}, runs=runs, warmup=warmup, max_seconds=max_seconds)["m"]
    return {**st, "warmup": warmup, "threads": threads, "runtime": runtime, "kind": "measured",
            "where": where_host(runtime, threads, seq), "batch": 1, "seq_len": seq}
