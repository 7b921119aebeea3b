"""PyTorch -> ExecuTorch .pte (XNNPACK), fp32 or int8, parity checked in ExecuTorch's Python runtime."""

from __future__ import annotations

from typing import Any

from edgekd.export.fallback import PARITY_SAMPLES, export_format
from edgekd.export.report import ExportReport
from edgekd.export.sample import as_tensors


def export_pte(model, sample: Any, out_path, *, precision: str = "fp32", calib: Any = None,
               converters: tuple[str, ...] | None = None, strict: bool = True,
               parity_samples: int = PARITY_SAMPLES) -> ExportReport:
    """Export `model` to an ExecuTorch program (batch 1) at `out_path`, checked against PyTorch on `sample`.

    precision: fp32 | int8 (PT2E with ExecuTorch's XNNPACK quantizer, calibrated on `calib`, real samples;
    the sample itself when None). The report's `delegation` says which ops run in XNNPACK and which fall
    back to portable kernels.
    """
    return export_format("pte", model, sample, out_path, converters, strict=strict, parity_samples=parity_samples,
                         precision=precision, calib=as_tensors(calib) if calib is not None else None)
