"""PyTorch -> ONNX: torch.onnx dynamo, then TorchScript (edgekd/export/converters/), onnxslim, parity on real data."""

from __future__ import annotations

from typing import Any

from edgekd.export.fallback import PARITY_SAMPLES, export_format
from edgekd.export.report import ExportReport


def export_onnx(model, sample: Any, out_path, *, opset: int | None = None, dynamic_batch: bool = True,
                strict: bool = True, parity_samples: int = PARITY_SAMPLES,
                converters: tuple[str, ...] | None = None) -> ExportReport:
    """Export `model` to ONNX at `out_path`, checked against PyTorch on the real `sample` batch.

    Tries torch.onnx dynamo (dynamic batch, then batch 1), then the TorchScript exporter (or the named
    `converters`, in that order); the first file within fp32 parity is kept. strict=True raises EdgeKDError
    (naming the first diverging layer) when no converter reaches parity, and then writes nothing;
    strict=False keeps the best file anyway.
    """
    return export_format("onnx", model, sample, out_path, converters, strict=strict, parity_samples=parity_samples,
                         opset=opset, dynamic_batch=dynamic_batch)
