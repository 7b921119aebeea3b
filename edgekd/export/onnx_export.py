"""PyTorch -> ONNX: torch.onnx dynamo, then TorchScript (edgekd/export/converters/), onnxslim, parity on real data."""

from __future__ import annotations

from typing import Any

from edgekd.errors import EdgeKDError
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
    if opset is not None:
        _check_opset(opset)
    return export_format("onnx", model, sample, out_path, converters, strict=strict, parity_samples=parity_samples,
                         opset=opset, dynamic_batch=dynamic_batch)


MIN_OPSET = 7  # the oldest opset torch.onnx's TorchScript exporter writes


def _check_opset(opset: int) -> None:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise EdgeKDError(f"--opset {opset} is outside what can be written: {MIN_OPSET}..{newest} "
                          f"(the installed onnx {onnx.__version__} knows up to {newest})")
