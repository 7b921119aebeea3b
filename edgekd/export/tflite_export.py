"""PyTorch -> TFLite: litert-torch first (no TensorFlow, NHWC I/O wrapper), onnx2tf as the fallback
(edgekd/export/converters/). The first candidate file within fp32 parity on the real sample wins.
"""

from __future__ import annotations

from typing import Any

from edgekd.export.fallback import PARITY_SAMPLES, export_format
from edgekd.export.report import ExportReport


def export_tflite(model, sample: Any, out_path, *, nhwc: bool = True, converters: tuple[str, ...] | None = None,
                  strict: bool = True, parity_samples: int = PARITY_SAMPLES) -> ExportReport:
    """Export `model` to a float32 .tflite (batch 1) at `out_path`, checked against PyTorch on `sample`.

    nhwc: image models (one 4-D float input) take channels-last input, the layout TFLite kernels and
    mobile camera pipelines use, so the file needs no Transpose at its input.
    converters: names tried in order (default: every TFLite converter, litert-torch then onnx2tf); the
    first file within parity is kept (strict: none -> EdgeKDError).
    """
    return export_format("tflite", model, sample, out_path, converters, strict=strict, parity_samples=parity_samples,
                         nhwc=nhwc)
