"""Unstructured magnitude pruning (torch.nn.utils.prune): zeros inside weight tensors.

Dense runtimes (ONNX Runtime CPU, LiteRT/XNNPACK by default, NPUs) still multiply the zeros, so the
model is NOT faster; it only compresses better (zip/gzip) and helps runtimes with sparse kernels.
"""

from __future__ import annotations

DENSE_NOTE = ("unstructured sparsity: weights are zeroed, not removed; dense runtimes (ONNX Runtime, "
              "LiteRT/XNNPACK, NPUs) do not get faster from it, only compressed size shrinks")


def prunable_weights(model, skip: list) -> list[tuple]:
    from torch import nn

    skip_ids = {id(m) for m in skip}
    return [(m, "weight") for m in model.modules()
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and id(m) not in skip_ids]


def apply_global_magnitude(model, amount: float, skip: list) -> None:
    """Zero `amount` of all prunable weights (global L1 ranking); masks stay attached so training keeps them zero."""
    import torch.nn.utils.prune as P

    params = prunable_weights(model, skip)
    if params:
        P.global_unstructured(params, pruning_method=P.L1Unstructured, amount=float(amount))


def make_permanent(model) -> None:
    import torch.nn.utils.prune as P

    for m in model.modules():
        if P.is_pruned(m) and hasattr(m, "weight_orig"):
            P.remove(m, "weight")


def sparsity(model, skip: list | None = None) -> dict:
    """Zero fraction over the prunable weights and over all parameters."""
    zeros = total = 0
    for m, name in prunable_weights(model, skip or []):
        w = getattr(m, name)
        zeros += int((w == 0).sum())
        total += w.numel()
    all_zero = sum(int((p == 0).sum()) for p in model.parameters())
    all_total = sum(p.numel() for p in model.parameters())
    return {"weight_sparsity": zeros / max(1, total), "param_sparsity": all_zero / max(1, all_total),
            "prunable_weights": total}
