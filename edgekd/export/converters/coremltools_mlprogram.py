"""PyTorch -> Core ML .mlpackage with coremltools: ct.convert from the torch.export program to an ML Program
(iOS 17+). fp16 (coremltools' default compute precision), fp32, or int8 weights (per-channel linear
quantization of the fp16 program's weights; activations stay fp16). Inputs are TensorTypes in the model's
own NCHW layout and normalisation, as the other formats take them, or (job.image_input) one ct.ImageType of
raw 0..255 pixels with the training normalisation folded into Core ML's preprocessing (coreml_image.py)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
from pathlib import Path

from edgekd.export.converters import Job, check_export_is_safe, quiet, register_converter
from edgekd.export.sample import take


def _available() -> bool:
    return importlib.util.find_spec("coremltools") is not None


def _int8_weights(ct, mlmodel):
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

    cfg = OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=0)
    return linear_quantize_weights(mlmodel, config=OptimizationConfig(global_config=cfg))


def _with_channel_scale(model, factors):
    """The per-channel part of the normalisation Core ML's one preprocessing scale cannot hold: one mul first."""
    import torch

    class ChannelScale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("k", torch.tensor(factors, dtype=torch.float32).view(1, -1, 1, 1))

        def forward(self, x):
            return self.model(x * self.k)

    return ChannelScale().eval()


def _image_type(ct, job: Job, name: str):
    ii = job.image_input
    layout = getattr(ct.colorlayout, ii.color_layout)
    bias = ii.bias[0] if ii.channels == 1 else list(ii.bias)
    return ct.ImageType(name=name, shape=(1, ii.channels, ii.height, ii.width), scale=ii.scale, bias=bias,
                        color_layout=layout, channel_first=True)


@register_converter("coremltools", produces="coreml", order=10, available=_available,
                    missing="coremltools is not installed (pip install 'edgekd[coreml]')")
def convert(job: Job, dest: Path) -> None:
    check_export_is_safe()
    import torch

    from edgekd.runtime.coreml_tools import import_coremltools

    if job.precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"the Core ML converter writes fp32, fp16 or int8 weights, not {job.precision}")
    one = take(job.inputs, 0, 1)
    ii = job.image_input
    model = _with_channel_scale(job.model, ii.channel_scale) if ii is not None and ii.channel_scale else job.model
    logging.getLogger("coremltools").setLevel(logging.ERROR)  # "libcoremlpython not found": it is macOS-only
    with quiet(), contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        # export before importing coremltools: see edgekd/runtime/coreml_tools.py
        program = torch.export.export(model, one).run_decompositions({})
        ct = import_coremltools()
        precision = ct.precision.FLOAT32 if job.precision == "fp32" else ct.precision.FLOAT16
        inputs = [_image_type(ct, job, program.graph_signature.user_inputs[0])] if ii is not None else None
        mlmodel = ct.convert(program, convert_to="mlprogram", compute_precision=precision, inputs=inputs,
                             minimum_deployment_target=ct.target.iOS17)
        if job.precision == "int8":
            mlmodel = _int8_weights(ct, mlmodel)
        mlmodel.user_defined_metadata["edgekd.compute_precision"] = "fp32" if job.precision == "fp32" else "fp16"
        mlmodel.user_defined_metadata["edgekd.weights"] = job.precision
        mlmodel.user_defined_metadata["edgekd.input"] = ii.describe() if ii is not None else "tensor (normalised, NCHW)"
        dest.unlink(missing_ok=True)
        mlmodel.save(str(dest))
