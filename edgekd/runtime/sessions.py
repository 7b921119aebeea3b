"""Open a model file in its runtime (ONNX Runtime, LiteRT) with edgekd's thread rules and one-line errors.

The LiteRT import fallback (ai-edge-litert, then tflite-runtime, then TensorFlow) lives in
edgekd.core.inputs, which checks files with it below this layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.core.inputs import tflite_interpreter_class
from edgekd.errors import EdgeKDError


def _first_line(exc: BaseException, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__


def ort_session(source: str | Path | bytes, *, threads: int | None = None, providers: list | None = None,
                optimize: bool = True, log_severity: int | None = None, name: str | None = None):
    """An onnxruntime.InferenceSession on a file or serialized model bytes.

    threads: intra-op threads, one inter-op thread (None leaves ONNX Runtime's default). optimize=False
    keeps every node as written, so intermediate outputs still exist. name labels bytes in errors.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if log_severity is not None:
        so.log_severity_level = log_severity
    src = source if isinstance(source, bytes) else str(source)
    label = name or (Path(source).name if not isinstance(source, bytes) else "the model")
    try:
        return ort.InferenceSession(src, so, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for every kind of bad file
        raise EdgeKDError(f"ONNX Runtime cannot load {label}: {_first_line(exc)}") from None


def litert_interpreter(path: str | Path, *, threads: int | None = None, delegates: list | None = None,
                       **options: Any):
    """A LiteRT Interpreter with tensors allocated; options go to the constructor (experimental_*)."""
    Interpreter = tflite_interpreter_class()
    try:
        it = Interpreter(model_path=str(path), num_threads=threads or 1, experimental_delegates=delegates, **options)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise EdgeKDError(f"LiteRT cannot load {Path(path).name}: {_first_line(exc)}") from None
    return it
