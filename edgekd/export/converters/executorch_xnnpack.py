"""PyTorch -> ExecuTorch .pte: torch.export, then to_edge_transform_and_lower with the XNNPACK partitioner.
int8: ExecuTorch's XNNPACK quantizer through PT2E (per-channel symmetric weights, per-tensor activations),
calibrated on real samples, before lowering; what XNNPACK cannot take runs in portable kernels."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edgekd.export.converters import Job, check_export_is_safe, quiet, register_converter
from edgekd.export.sample import batch_size, take


def _available() -> bool:
    return importlib.util.find_spec("executorch") is not None


def pt2e_int8(model, one: tuple, calib: tuple):
    """The model with XNNPACK int8 quantize/dequantize pairs, observers fed every calibration sample."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model, one).module(), quantizer)
    with torch.no_grad():
        for i in range(batch_size(calib)):  # the program fixes batch 1, so calibrate sample by sample
            prepared(*take(calib, i, i + 1))
    return convert_pt2e(prepared)


def lower_xnnpack(model, one: tuple):
    """The ExecuTorch program (an ExecutorchProgramManager) with every XNNPACK-capable subgraph delegated."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(model, one)
    return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()


@register_converter("executorch-xnnpack", produces="pte", order=10, available=_available,
                    missing="executorch is not installed (pip install 'edgekd[executorch]')")
def convert(job: Job, dest: Path) -> None:
    check_export_is_safe()
    one = take(job.inputs, 0, 1)
    model = job.model
    with quiet():
        if job.precision == "int8":
            model = pt2e_int8(model, one, job.calib if job.calib is not None else job.inputs)
        elif job.precision != "fp32":
            raise ValueError(f"the XNNPACK .pte converter writes fp32 or int8, not {job.precision}")
        dest.write_bytes(lower_xnnpack(model, one).buffer)
