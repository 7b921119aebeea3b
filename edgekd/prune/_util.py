"""Small helpers shared by derive / prune / chain: example inputs, counting, output layers, timing."""

from __future__ import annotations

from typing import Any

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


DEFAULT_CHANNEL_MULTIPLE = 8  # fp32/int8 SIMD kernels (XNNPACK, ORT MLAS) pack channels in groups of 4-16


def channel_multiple(target=None) -> int:
    """The channel multiple a target prefers (its TOML's `channel_multiple` when it has one), else 8."""
    value = getattr(target, "channel_multiple", None) if target is not None else None
    return int(value) if isinstance(value, int) and value >= 1 else DEFAULT_CHANNEL_MULTIPLE


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
    """(MACs, parameters) for one example input, counted by Torch-Pruning's op counter (RNNs by ours)."""
    from edgekd.models.measure import count_ops

    macs, params = count_ops(model, x)
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


def measure_latency(before, after, x, *, threads: int = 2, budget_s: float = 2.0) -> tuple[dict, dict, dict]:
    """Host latency of two models (modules, or .onnx/.tflite paths), measured side by side.

    edgekd.runtime runs each model and times them in ABBA-ordered pairs (short blocks, GC off, pinned
    CPUs); the paired after/before ratio with its CI is the figure to trust on a noisy machine.
    Returns (lat_before, lat_after, speed): latency dicts as ARCHITECTURE.md documents them and
    speed = {"ratio", "ci_low", "ci_high", "confidence", "speedup", "pairs"}.
    """
    import numpy as np
    import torch

    from edgekd.runtime import Latency, TimingSettings, load_runner, measure_ab
    from edgekd.runtime.machine import machine_where, pick_cpus, pinned

    old_threads = torch.get_num_threads()
    sample = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
    sample = sample[:1]
    settings = TimingSettings(warmup=10, min_pairs=30, budget_s=float(budget_s))
    try:
        ra, rb = load_runner(before, threads=threads), load_runner(after, threads=threads)
        pa, pb = ra.prepare(sample), rb.prepare(sample)
        with pinned(pick_cpus(threads)):
            res = measure_ab(lambda: ra.run_once(pa), lambda: rb.run_once(pb), settings)
    finally:
        torch.set_num_threads(old_threads)
    where = f"host: {machine_where()}, interleaved ABBA pairs"

    def lat(summary: dict, runner) -> dict:
        return Latency(**{k: round(v, 4) for k, v in summary.items()}, runs=res["pairs"] * res["inner"],
                       warmup=settings.warmup, threads=threads,
                       runtime="pytorch-eager" if runner.format == "pytorch" else runner.format,
                       kind="measured", where=where, extra={"batch": 1}).to_dict()

    speed = {"ratio": round(res["ratio"], 4), "ci_low": round(res["ci_low"], 4), "ci_high": round(res["ci_high"], 4),
             "confidence": res["confidence"], "speedup": round(1.0 / max(res["ratio"], 1e-9), 3),
             "pairs": res["pairs"]}
    return lat(res["baseline"], ra), lat(res["candidate"], rb), speed
