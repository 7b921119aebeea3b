"""Fit an NCHW float batch to what a model file takes: channels-last layout, integer (quantized) I/O."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from edgekd.errors import EdgeKDError


def fit_layout(x: np.ndarray, shape: Sequence[int]) -> tuple[np.ndarray, str]:
    """(x as the model wants it, "NCHW" or "NHWC"): kept, or transposed when the file is channels last.

    Non-image inputs (token ids, vectors) and shapes with dynamic dims pass through unchanged.
    """
    shape = tuple(int(d) for d in shape)
    if x.ndim == 4 and len(shape) == 4:
        if shape[1:] == tuple(x.shape[1:]) or any(d <= 0 for d in shape[1:]):
            return x, "NCHW"
        if shape[1:] == (x.shape[2], x.shape[3], x.shape[1]):
            return np.ascontiguousarray(x.transpose(0, 2, 3, 1)), "NHWC"
        raise EdgeKDError(f"input of shape {tuple(x.shape[1:])} does not fit the model's input {shape[1:]}")
    return x, "NCHW"


def quantize_input(x: np.ndarray, dtype, quantization: tuple[float, int] | None, name: str = "input") -> np.ndarray:
    """Real values -> the file's integer input with its own (scale, zero point); other inputs are only cast."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer) and not np.issubdtype(x.dtype, np.integer):
        scale, zero = quantization or (0.0, 0)
        if not scale:
            raise EdgeKDError(f"{name} is integer without quantization parameters")
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def dequantize(y: np.ndarray, quantization: tuple[float, int] | None) -> np.ndarray:
    """An integer tensor with (scale, zero point) as float32 real values; any other tensor unchanged."""
    scale, zero = quantization or (0.0, 0)
    if scale and np.issubdtype(y.dtype, np.integer):
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
    return y
