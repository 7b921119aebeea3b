"""Bias correction (Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction", 2019;
the default of OpenVINO's and AIMET's post-training quantization): rounding a layer's weights to int8 shifts the
mean of its output by (W_q - W) E[x]; subtracting that shift from the layer's bias removes it.

The format-specific halves (onnx_quant.correct_biases, tflite_quant.correct_biases) measure E[x] of every layer's
input on calibration samples with the float file and write a float file whose weights already lie on the int8
grid the format's quantizer will use (symmetric, max |w| / qmax per output channel), so the quantizer maps them to
the same integers the correction was computed for. Depthwise layers gain most: few weights per channel, so one
rounding error each weighs a lot (EfficientNet-Lite0, benchmarks/results/real_weights.json).
"""

from __future__ import annotations

import numpy as np

SAMPLES = 32  # calibration samples whose mean activations the correction uses


def mean_inputs(float_path, calib: np.ndarray, names: list[str], *, channels_last: bool, means: dict | None = None,
                samples: int | None = None, graph_input: str | None = None) -> dict[str, np.ndarray]:
    """E[x] per channel of the tensors `names` of the float file over the first `samples` calibration samples
    (one run each, intermediates read back). `means`: a cache of earlier results, filled in and returned, so the
    float-fallback search, which writes a corrected file per candidate, runs the calibration passes once.
    graph_input: the name under which the model's own input is looked up (ONNX does not list it as an
    intermediate)."""
    from edgekd.export import execute

    means = {} if means is None else means
    todo = [n for n in dict.fromkeys(names) if n not in means]
    if not todo:
        return means
    x = calib[: samples or SAMPLES].astype(np.float32)
    sums: dict[str, np.ndarray] = {}
    for i in range(len(x)):
        _, inter = execute.run_file(float_path, [x[i : i + 1]], intermediates=True)
        if graph_input is not None:
            inter[graph_input] = x[i : i + 1]
        for name in todo:
            if (a := inter.get(name)) is None:
                continue
            if channels_last:  # NHWC / (..., features)
                mu = a.reshape(-1, a.shape[-1]).mean(axis=0)
            else:  # NCHW / (batch, features)
                mu = a.mean(axis=tuple(d for d in range(a.ndim) if d != 1)) if a.ndim > 2 else a.mean(axis=0)
            sums[name] = sums.get(name, 0.0) + mu.astype(np.float64)
    means.update({k: v / len(x) for k, v in sums.items()})
    return means


def round_to_grid(w: np.ndarray, channel_axis: int | None, qmax: float = 127.0) -> np.ndarray:
    """w on the symmetric int8 grid: scale max |w| / qmax per slice along channel_axis (None: the whole tensor)."""
    w = w.astype(np.float64)
    axes = tuple(d for d in range(w.ndim) if d != channel_axis) if channel_axis is not None else tuple(range(w.ndim))
    scale = np.abs(w).max(axis=axes, keepdims=True) / qmax
    scale = np.where(scale == 0, 1.0, scale)
    return np.clip(np.round(w / scale), -qmax, qmax) * scale


def output_shift(delta: np.ndarray, mean_in: np.ndarray, group: int = 1) -> np.ndarray | None:
    """Mean output shift per output channel: delta (out, in per group) = weight rounding error summed over the
    kernel, mean_in (in,) = E[x] per input channel, group: input channels split into `group` groups, output
    channels likewise (group == out == in: depthwise). None when the shapes do not fit."""
    out, in_pg = delta.shape
    if in_pg * group != mean_in.shape[0] or out % group:
        return None
    return np.einsum("goi,gi->go", delta.reshape(group, out // group, in_pg), mean_in.reshape(group, in_pg)).reshape(-1)
