"""The text modality's latency: ONNX files timed interleaved on this host (teacher vs students, so the ratio
means something), TFLite through the target's own profiler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.core import Artifact, StageResult
from edgekd.errors import EdgeKDError


def _tflite_latency(path: Path, tgt, runs: int, threads: int) -> dict[str, Any]:
    """The target's own profiler (adb/ssh device, or a host measurement labelled so); the fixed-shape
    file's inputs are all-ones token ids, valid for any vocabulary."""
    from edgekd.profile import profile

    try:
        rep = profile(path, tgt, runs=runs, threads=threads)
    except EdgeKDError as exc:
        return {"kind": "failed", "where": str(exc)}
    return rep.primary


def latency_stage(m, rows: list[Artifact]) -> list[Artifact]:
    from edgekd.hf.runtime import MIN_ROUNDS, latency_inputs, ort_call, where_host
    from edgekd.runtime import Latency
    from edgekd.runtime.timing import time_calls

    c, threads = m.cfg, m.threads
    files = [a for a in rows if a.format in ("onnx", "tflite")]
    teacher_onnx = next((a for a in files if a.name == "teacher-onnx"), None)
    settings = {"files": {a.name: a.sha256 for a in files if a is not teacher_onnx},
                "teacher": teacher_onnx.sha256 if teacher_onnx else None,
                "seq_len": c.seq_len, "threads": threads, "runs": c.runs}

    def run_latency() -> StageResult:
        import onnxruntime

        inputs = latency_inputs(m.teacher.tokenizer, m.test[0], c.seq_len)
        onnx_rows = [a for a in files if a.format == "onnx"]
        m.say(f"timing {len(onnx_rows)} ONNX files interleaved (batch 1, seq {c.seq_len}, {threads} threads)")
        rt = f"onnxruntime {onnxruntime.__version__} CPU EP"
        ms = time_calls({a.name: ort_call(m.run.path(a.path), inputs, threads) for a in onnx_rows}, rounds=c.runs,
                        warmup=3, min_rounds=MIN_ROUNDS, max_seconds=120)
        where = where_host(rt, threads, c.seq_len) + ", interleaved with the other ONNX files"
        lat = {k: Latency.from_ms(v, warmup=3, threads=threads, runtime=rt, kind="measured", where=where,
                                  extra={"batch": 1, "seq_len": c.seq_len}).to_dict() for k, v in ms.items()}
        for a in files:
            if a.format == "tflite":
                lat[a.name] = _tflite_latency(m.run.path(a.path), m.target, c.runs, threads)
        return StageResult([], {"latency": lat})

    res, _ = m.run.run_stage("hf-latency", settings, run_latency, force=c.force)
    lat = res.metrics["latency"]
    for a in rows:
        if a.name in lat:
            a.latency = lat[a.name]
    return rows
