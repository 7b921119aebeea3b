"""PyTorch -> Core ML .mlpackage (ML Program): fp32, fp16 or int8 weights, validated structurally (coremltools
cannot run a model on Linux, so numerics and latency are not checked here, and the report says so).
input="image": one ct.ImageType of raw 0..255 pixels with the training normalisation folded in (coreml_image.py);
a model that takes no image keeps its TensorType and the report says why."""

from __future__ import annotations

from typing import Any

from edgekd.export.coreml_image import plan_input
from edgekd.export.fallback import PARITY_SAMPLES, export_format
from edgekd.export.report import ExportReport
from edgekd.export.sample import as_tensors


def export_coreml(model, sample: Any, out_path, *, precision: str = "fp16", converters: tuple[str, ...] | None = None,
                  strict: bool = True, input: str = "tensor", normalisation=None,
                  color_layout: str = "RGB") -> ExportReport:
    """Export `model` to `out_path` (.mlpackage), precision fp16 (default) | fp32 | int8 (weights).
    input: tensor (default; the model's normalised NCHW input) | image (raw pixels; needs `normalisation`,
    the (mean, std) per channel the model was trained with on pixels / 255). color_layout: RGB | BGR, the
    order of a 3-channel model's channels."""
    image, why = plan_input(as_tensors(sample), input, normalisation, color_layout)
    rep = export_format("coreml", model, sample, out_path, converters, strict=strict, parity_samples=PARITY_SAMPLES,
                        precision=precision, image_input=image)
    rep.input_layout = f"image {image.color_layout}" if image is not None else rep.input_layout
    rep.notes.append(f"Core ML {image.describe()}" if image is not None else why or
                     "Core ML input: TensorType (the model's normalised NCHW tensor; the app normalises the pixels)")
    return rep
