"""ONNX -> TFLite with onnx2tf (needs the tf extra): the TFLite fallback. The loop makes the ONNX file."""

from __future__ import annotations

from pathlib import Path

from edgekd.export import onnx2tf_backend
from edgekd.export.converters import Job, register_converter
from edgekd.export.sample import is_image


@register_converter("onnx2tf", produces="tflite", order=20, via="onnx", available=onnx2tf_backend.available,
                    missing="not installed (pip install 'edgekd[tf]')")
def convert(job: Job, dest: Path, source: Path) -> None:
    """`source`: the model as a static batch-1 ONNX file -> onnx2tf's float32 file."""
    images = job.inputs[0][:20].permute(0, 2, 3, 1).numpy() if is_image(job.inputs) else None
    data, _ = onnx2tf_backend.convert(source, nhwc=job.nhwc, images_nhwc=images, want="float32")
    dest.write_bytes(data)
