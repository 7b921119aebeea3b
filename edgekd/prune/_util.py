"""Small helpers shared by derive / prune / chain: example inputs, counting, output layers, timing."""

from __future__ import annotations

import statistics
import time
from typing import Any, Sequence

from edgekd.errors import EdgeKDError


def example_tensor(example_input: Any, model=None):
    """Accept a tensor, an array, or an input shape ((C,H,W) or (1,C,H,W)) and return a batch-1 tensor."""
    import numpy as np
    import torch

    if isinstance(example_input, torch.Tensor):
        x = example_input
    elif isinstance(example_input, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(example_input))
    elif isinstance(example_input, (tuple, list)) and all(isinstance(v, int) for v in example_input):
        shape = tuple(example_input)
        if len(shape) == 3:
            shape = (1, *shape)
        if len(shape) < 2 or any(v <= 0 for v in shape):
            raise EdgeKDError(f"example input shape {tuple(example_input)} is not a valid (C,H,W) / (N,C,H,W) shape")
        x = torch.randn(*shape)
    else:
        raise EdgeKDError("example_input must be a tensor, a numpy array or an input shape such as (1, 28, 28)")
    if x.dim() == 0:
        raise EdgeKDError("example_input must have a batch dimension")
    if x.is_floating_point():
        x = x.float()
    return x[:1].contiguous()


def check_runs(model, x) -> Any:
    """Run the model once so a wrong input shape fails here with one line, not deep inside Torch-Pruning."""
    import torch

    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    except Exception as exc:  # noqa: BLE001 - any model failure is a user input problem here
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgeKDError(f"model does not run on an input of shape {tuple(x.shape)}: {msg}") from None


def count(model, x) -> tuple[int, int]:
    """(MACs, parameters) for one example input, counted by Torch-Pruning's op counter."""
    import torch_pruning as tp

    macs, params = tp.utils.count_ops_and_params(model, x)
    return int(macs), int(params)


def output_layers(model, x) -> list:
    """The Conv/Linear layers whose output channels are the model's outputs (never prune those).

    Found by running the model once and taking the last parameterised Conv/Linear executed; a model
    returning several tensors would need more, and then the caller passes ignored layers explicitly.
    """
    import torch
    from torch import nn

    order: list = []
    hooks = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
        for m in model.modules()
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return [order[-1]] if order else []


def first_tensor(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for v in obj:
            t = first_tensor(v)
            if t is not None:
                return t
    if isinstance(obj, dict):
        for v in obj.values():
            t = first_tensor(v)
            if t is not None:
                return t
    if hasattr(obj, "to_tuple"):  # Hugging Face ModelOutput
        return first_tensor(obj.to_tuple())
    return None


def measure_latency(models: dict[str, Any], x, *, threads: int = 2, runs: int = 30, warmup: int = 5) -> dict[str, dict]:
    """Host latency of PyTorch modules, measured interleaved (A B A B ...) so drift hits all alike."""
    import platform

    import torch

    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    times: dict[str, list[float]] = {k: [] for k in models}
    try:
        with torch.inference_mode():
            for m in models.values():
                m.eval()
                for _ in range(warmup):
                    m(x)
            for _ in range(runs):
                for k, m in models.items():
                    t0 = time.perf_counter()
                    m(x)
                    times[k].append((time.perf_counter() - t0) * 1000.0)
    finally:
        torch.set_num_threads(old_threads)
    where = f"host {platform.machine()} ({platform.processor() or 'cpu'})"
    return {k: latency_dict(v, threads=threads, warmup=warmup, where=where) for k, v in times.items()}


def latency_dict(samples_ms: Sequence[float], *, threads: int, warmup: int, where: str) -> dict:
    s = sorted(samples_ms)

    def pct(q: float) -> float:
        return round(s[min(len(s) - 1, int(round(q * (len(s) - 1))))], 4)

    return {
        "p50_ms": round(statistics.median(s), 4),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(s), 4),
        "runs": len(s),
        "warmup": warmup,
        "threads": threads,
        "runtime": "pytorch-eager",
        "kind": "measured",
        "where": where,
        "batch": 1,
    }
