"""Reading files the user gives: one place that turns every way a file can be unusable into one clear line.

Each check names the file and the problem (missing, a directory, unreadable, empty, truncated, another
format, unsafe pickle, NaN/inf), so no command passes a library's multi-line message or traceback through.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError

TFLITE_MAGIC = b"TFL3"  # flatbuffer file identifier at bytes 4..8 of every .tflite file
PTE_MAGIC = b"ET"  # ExecuTorch program identifier at bytes 4..8: "ET" + two digits of the schema version


def one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    text = text.split(". ", 1)[0][:limit]  # PyTorch and protobuf messages run on for paragraphs
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_fraction(value: Any, what: str, detail: str = "") -> float:
    """A number strictly between 0 and 1 (a ratio, a share), or one EdgeKDError naming `what` (and `detail`,
    what the fraction is of)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise EdgeKDError(f"{what} must be a number in (0, 1), got {value!r}") from None
    if not 0.0 < v < 1.0:
        raise EdgeKDError(f"{what} must lie in (0, 1){f' ({detail})' if detail else ''}, got {v}")
    return v


def require_file(path: str | Path, what: str = "file", *, allow_empty: bool = False) -> Path:
    """The path names a readable, non-empty regular file; otherwise one EdgeKDError saying which it is not."""
    p = Path(path).expanduser()
    if not p.exists():
        raise EdgeKDError(f"{what} {p} does not exist")
    if p.is_dir():
        raise EdgeKDError(f"{what} {p} is a directory, not a file")
    if not os.access(p, os.R_OK):
        raise EdgeKDError(f"{what} {p} cannot be read (permission denied)")
    if not allow_empty and p.stat().st_size == 0:
        raise EdgeKDError(f"{what} {p} is empty (0 bytes)")
    return p


def check_model_file(path: str | Path, what: str = "model file") -> Path:
    """An .onnx, .tflite or .pte file that parses as one, or a Core ML .mlpackage directory (cheap: no session)."""
    if Path(path).suffix.lower() == ".mlpackage":
        return _check_mlpackage(Path(path).expanduser(), what)
    p = require_file(path, what)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        _check_onnx(p, what)
    elif suffix == ".tflite":
        _check_tflite(p, what)
    elif suffix == ".pte":
        _check_pte(p, what)
    return p


def _check_pte(p: Path, what: str) -> None:
    with open(p, "rb") as fh:
        head = fh.read(8)
    if head[4:6] != PTE_MAGIC or not head[6:8].isdigit():
        raise EdgeKDError(f"{what} {p} is not an ExecuTorch program (no 'ETnn' identifier: another format)")


def _check_mlpackage(p: Path, what: str) -> Path:
    if not p.exists():
        raise EdgeKDError(f"{what} {p} does not exist")
    if not p.is_dir() or not (p / "Manifest.json").is_file():
        raise EdgeKDError(f"{what} {p} is not a Core ML package (a .mlpackage is a directory holding Manifest.json)")
    return p


def _check_onnx(p: Path, what: str) -> None:
    import onnx

    try:
        model = onnx.load_model(str(p), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError for truncated or foreign bytes
        raise EdgeKDError(f"{what} {p} is not a readable ONNX model (truncated, or another format: "
                          f"{one_line(exc, 80)})") from None
    if not model.graph.node or not model.graph.input:
        raise EdgeKDError(f"{what} {p} is not a usable ONNX model: its graph has no nodes or no inputs "
                          "(truncated, or another format)")


def _check_tflite(p: Path, what: str) -> None:
    with open(p, "rb") as fh:
        head = fh.read(8)
    if head[4:8] != TFLITE_MAGIC:
        raise EdgeKDError(f"{what} {p} is not a TFLite flatbuffer (no 'TFL3' identifier: another format)")
    try:
        tflite_interpreter_class()(model_path=str(p))
    except Exception as exc:  # a cut flatbuffer fails its verifier here
        raise EdgeKDError(f"{what} {p} is not a readable TFLite model (truncated or corrupt: "
                          f"{one_line(exc, 80)})") from None


def tflite_interpreter_class():
    """LiteRT's interpreter, falling back to the older packages that ship the same class."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
    return Interpreter


def load_torch_file(path: str | Path, what: str = "checkpoint") -> Any:
    """torch.load(weights_only=True) with each failure said in one line."""
    import torch

    p = require_file(path, what)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = str(exc)
        # refused pickled objects/code name a GLOBAL; a cut or foreign file fails on an opcode or the zip
        if "Unsupported global" in msg or "This file can still be loaded" in msg:
            raise EdgeKDError(f"{what} {p} is not a plain state_dict checkpoint: it holds pickled objects or code, "
                              "which edgekd does not run (torch.load weights_only=True); save "
                              "model.state_dict() instead") from None
        raise EdgeKDError(f"{what} {p} is not a readable PyTorch checkpoint (truncated, or another format: "
                          f"{one_line(exc, 80)})") from None


def check_finite_tensors(state: dict, path: str | Path, what: str = "checkpoint") -> None:
    """A state_dict whose floating tensors hold NaN/inf would train or export garbage: refuse it."""
    import torch

    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            raise EdgeKDError(f"{what} {Path(path).expanduser()} holds NaN or infinite values in '{key}'")
