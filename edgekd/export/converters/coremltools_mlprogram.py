"""PyTorch -> Core ML .mlpackage with coremltools: ct.convert from the torch.export program to an ML Program
(iOS 17+). fp16 (coremltools' default compute precision), fp32, or int8 weights (per-channel linear
quantization of the fp16 program's weights; activations stay fp16). Inputs are TensorTypes in the model's
own NCHW layout and normalisation, as the other formats take them."""

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


@register_converter("coremltools", produces="coreml", order=10, available=_available,
                    missing="coremltools is not installed (pip install 'edgekd[coreml]')")
def convert(job: Job, dest: Path) -> None:
    check_export_is_safe()
    import torch

    from edgekd.runtime.coreml_tools import import_coremltools

    if job.precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"the Core ML converter writes fp32, fp16 or int8 weights, not {job.precision}")
    one = take(job.inputs, 0, 1)
    logging.getLogger("coremltools").setLevel(logging.ERROR)  # "libcoremlpython not found": it is macOS-only
    with quiet(), contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        # export before importing coremltools: see edgekd/runtime/coreml_tools.py
        program = torch.export.export(job.model, one).run_decompositions({})
        ct = import_coremltools()
        precision = ct.precision.FLOAT32 if job.precision == "fp32" else ct.precision.FLOAT16
        mlmodel = ct.convert(program, convert_to="mlprogram", compute_precision=precision,
                             minimum_deployment_target=ct.target.iOS17)
        if job.precision == "int8":
            mlmodel = _int8_weights(ct, mlmodel)
        mlmodel.user_defined_metadata["edgekd.compute_precision"] = "fp32" if job.precision == "fp32" else "fp16"
        mlmodel.user_defined_metadata["edgekd.weights"] = job.precision
        dest.unlink(missing_ok=True)
        mlmodel.save(str(dest))
