"""What a model file given to quantize must be: still float, and taking the data it is calibrated on.

Both fail late otherwise, in the quantizer's words: a quantized ONNX file as "two nodes with same node name",
an int8 TFLite file silently re-written, data of another shape as ONNX Runtime's "invalid dimensions".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.errors import EdgeKDError

# ONNX ops only a quantized graph holds
_ONNX_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
                   "ConvInteger", "MatMulInteger", "QGemm", "QLinearAdd", "QLinearMul", "MatMulIntegerToFloat"}
_TFLITE_QUANT_DTYPES = {"int8", "uint8", "int16", "int4", "float16"}  # weight types of an already quantized file


def check_float_source(path: Path, sample: np.ndarray | None) -> None:
    from edgekd.inspect import model_info

    info = model_info(path)
    quant_ops = sorted(op for op in info["ops"] if op.split(":")[-1] in _ONNX_QUANT_OPS)
    quant_dtypes = sorted(d for d, n in (info.get("weight_dtypes") or {}).items() if d in _TFLITE_QUANT_DTYPES and n)
    if info["format"] == "onnx" and quant_ops:
        raise EdgeKDError(f"{path.name} is already quantized (it holds {', '.join(quant_ops[:3])} ops): "
                          "give the float model")
    if info["format"] == "tflite" and quant_dtypes:
        raise EdgeKDError(f"{path.name} is already quantized ({'/'.join(quant_dtypes)} weights): give the float model")
    if sample is not None and info["inputs"]:
        _check_fits(path, info["inputs"][0], sample)


def _check_fits(path: Path, spec: dict, sample: np.ndarray) -> None:
    """The data's per-sample shape against the file's first input (NCHW, or NHWC which the runner transposes to)."""
    shape = [d if isinstance(d, int) and d > 0 else None for d in (spec.get("shape") or [])][1:]
    got = tuple(sample.shape[1:])
    if not shape:
        return
    fits = len(shape) == len(got) and all(a is None or a == b for a, b in zip(shape, got))
    if not fits and len(shape) == 3 == len(got):  # channels-last file: (H, W, C) for our (C, H, W)
        fits = all(a is None or a == b for a, b in zip(shape, (got[1], got[2], got[0])))
    if not fits:
        want = ",".join("?" if d is None else str(d) for d in shape)
        raise EdgeKDError(f"the data's samples have shape {got} but {path.name} takes {spec.get('name', 'input')} "
                          f"of shape (N,{want}): give data of that shape (--image-size, channels) or the matching model")
