"""Normalise the user's sample batch and the model's outputs into flat lists of arrays.

Export accepts a tensor / array (one input) or a tuple/list of them (several inputs, e.g. token ids
and attention mask); models may return a tensor, a tuple, a dict or a HF ModelOutput.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekd.errors import EdgeKDError


def as_tensors(sample: Any) -> tuple:
    """The sample as a tuple of torch tensors (float arrays become float32)."""
    import torch

    items = sample if isinstance(sample, (tuple, list)) else (sample,)
    if not items:
        raise EdgeKDError("export needs a sample batch: got an empty sequence")
    out = []
    for i, a in enumerate(items):
        if isinstance(a, np.ndarray):
            a = torch.from_numpy(np.ascontiguousarray(a))
        if not isinstance(a, torch.Tensor):
            raise EdgeKDError(f"sample input {i} is a {type(a).__name__}, expected an array or tensor")
        if a.ndim == 0 or a.shape[0] == 0:
            raise EdgeKDError(f"sample input {i} has no batch dimension or is empty: shape {tuple(a.shape)}")
        if a.is_floating_point():
            a = a.float()
            if not torch.isfinite(a).all():
                raise EdgeKDError(f"sample input {i} contains NaN or Inf values")
        out.append(a.contiguous())
    n = {int(a.shape[0]) for a in out}
    if len(n) != 1:
        raise EdgeKDError(f"sample inputs disagree on the batch size: {sorted(n)}")
    return tuple(out)


def take(inputs: tuple, start: int, stop: int) -> tuple:
    return tuple(a[start:stop] for a in inputs)


def batch_size(inputs: tuple) -> int:
    return int(inputs[0].shape[0])


def flatten_outputs(out: Any) -> list[np.ndarray]:
    """Every tensor the model returned, in a stable order, as float32 numpy arrays."""
    import torch
    from torch.utils._pytree import tree_leaves

    if hasattr(out, "to_tuple"):  # HF ModelOutput: a dict whose None fields are dropped
        out = out.to_tuple()
    leaves = [x for x in tree_leaves(out) if isinstance(x, torch.Tensor)]
    if not leaves:
        raise EdgeKDError("the model returned no tensors")
    return [x.detach().float().cpu().numpy() for x in leaves]


def torch_outputs(model, inputs: tuple) -> list[np.ndarray]:
    import torch

    with torch.inference_mode():
        try:
            return flatten_outputs(model(*inputs))
        except EdgeKDError:
            raise
        except Exception as exc:
            shapes = [tuple(a.shape) for a in inputs]
            raise EdgeKDError(f"the model fails on the sample {shapes}: {type(exc).__name__}: {_first_line(exc)}") from None


def is_image(inputs: tuple) -> bool:
    """One 4-D float input: the NCHW image case where NHWC files make sense."""
    return len(inputs) == 1 and inputs[0].ndim == 4 and inputs[0].is_floating_point()


def _first_line(exc: BaseException, limit: int = 240) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "").strip()[:limit]


first_line = _first_line
