"""PyTorch -> Core ML .mlpackage (ML Program): fp32, fp16 or int8 weights, validated structurally (coremltools
cannot run a model on Linux, so numerics and latency are not checked here, and the report says so)."""

from __future__ import annotations

from typing import Any

from edgekd.export.fallback import PARITY_SAMPLES, export_format
from edgekd.export.report import ExportReport


def export_coreml(model, sample: Any, out_path, *, precision: str = "fp16", converters: tuple[str, ...] | None = None,
                  strict: bool = True) -> ExportReport:
    """Export `model` to `out_path` (.mlpackage), precision fp16 (default) | fp32 | int8 (weights)."""
    return export_format("coreml", model, sample, out_path, converters, strict=strict, parity_samples=PARITY_SAMPLES,
                         precision=precision)
