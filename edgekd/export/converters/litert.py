"""PyTorch -> TFLite with litert-torch (no TensorFlow): the first TFLite converter tried."""

from __future__ import annotations

from pathlib import Path

from edgekd.export.converters import Job, quiet, register_converter
from edgekd.export.sample import is_image, take


def litert_convert(model, inputs: tuple, dest: Path, *, nhwc: bool) -> None:
    """litert-torch at batch 1; image models get channels-last input via to_channel_last_io."""
    import litert_torch

    one = take(inputs, 0, 1)
    if nhwc and is_image(inputs):
        model = litert_torch.to_channel_last_io(model, args=[0]).eval()
        one = (one[0].permute(0, 2, 3, 1).contiguous(),)
    with quiet():
        litert_torch.convert(model, one).export(str(dest))


@register_converter("litert-torch", produces="tflite", order=10)
def convert(job: Job, dest: Path) -> None:
    litert_convert(job.model, job.inputs, dest, nhwc=job.nhwc)
