"""PyTorch -> ONNX with torch.onnx: the dynamo exporter (dynamic batch, then batch 1), then TorchScript's."""

from __future__ import annotations

from pathlib import Path

from edgekd.export.converters import Job, quiet, register_converter
from edgekd.export.sample import batch_size, take


def _io_names(job: Job) -> tuple[list[str], list[str]]:
    n_in, n_out = len(job.inputs), job.n_outputs
    ins = ["input"] if n_in == 1 else [f"input_{i}" for i in range(n_in)]
    outs = ["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]
    return ins, outs


def _trace_batch(inputs: tuple) -> tuple:
    """Two samples: torch.export specialises a size-1 dim, which would pin the batch to 1."""
    import torch

    if batch_size(inputs) >= 2:
        return take(inputs, 0, 2)
    return tuple(torch.cat([a, a]) for a in inputs)


def _dynamo_tries(job: Job) -> list[dict]:
    return [{"dynamic_batch": True}, {"dynamic_batch": False}] if job.dynamic_batch else [{"dynamic_batch": False}]


@register_converter("torch.onnx-dynamo", produces="onnx", order=10, tries=_dynamo_tries)
def convert_dynamo(job: Job, dest: Path, dynamic_batch: bool) -> None:
    import torch

    ins, outs = _io_names(job)
    args = _trace_batch(job.inputs) if dynamic_batch else take(job.inputs, 0, 1)
    shapes = tuple({0: torch.export.Dim("batch", min=1, max=4096)} for _ in args) if dynamic_batch else None
    with quiet():
        prog = torch.onnx.export(job.model, args, dynamo=True, input_names=ins, output_names=outs,
                                 opset_version=job.opset, dynamic_shapes=shapes, external_data=False, verify=False)
    if prog is None:
        raise RuntimeError("torch.onnx returned no program")
    got = next((o.version for o in prog.model_proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if job.opset is not None and got != job.opset:  # the dynamo exporter keeps its own opset when it cannot convert
        raise RuntimeError(f"exported opset {got}: converting to the asked opset {job.opset} failed")
    prog.save(str(dest), external_data=False)


@register_converter("torch.onnx-torchscript", produces="onnx", order=20,
                    tries=lambda job: [{"dynamic_batch": job.dynamic_batch}])
def convert_torchscript(job: Job, dest: Path, dynamic_batch: bool) -> None:
    import torch

    ins, outs = _io_names(job)
    axes = {n: {0: "batch"} for n in ins + outs} if dynamic_batch else None
    with quiet():
        torch.onnx.export(job.model, take(job.inputs, 0, 1), str(dest), dynamo=False, input_names=ins,
                          output_names=outs, opset_version=job.opset or 17, dynamic_axes=axes, do_constant_folding=True)
