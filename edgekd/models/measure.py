"""MACs and parameter counts (Torch-Pruning's counter, which follows the real graph)."""

from __future__ import annotations


def count_macs_params(model, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """MACs for one sample of `input_shape` (C, H, W) and the parameter count."""
    import torch
    import torch_pruning as tp

    was_training = model.training
    model.eval()
    with torch.no_grad():
        macs, params = tp.utils.count_ops_and_params(model, torch.zeros(1, *input_shape))
    model.train(was_training)
    return int(macs), int(params)
