"""MACs and parameter counts (Torch-Pruning's counter, which follows the real graph).

Recurrent layers are counted by our own hook: Torch-Pruning 1.6.1's takes the batch and step counts
from the wrong axes of a batch-first input (batch = steps, steps = features: 8x too many MACs for a
GRU over 8 steps of 8 inputs) and adds element-wise gate ops no other layer's count includes.
"""

from __future__ import annotations


def count_ops(model, example_inputs, *, layer_wise: bool = False):
    """Torch-Pruning's count_ops_and_params with recurrent layers counted as their matrix multiplies."""
    import torch_pruning as tp
    from torch import nn
    from torch_pruning.utils import op_counter

    hooks = {t: _rnn_hook for t in (nn.RNN, nn.GRU, nn.LSTM)}
    hooks |= {t: _cell_hook for t in (nn.RNNCell, nn.GRUCell, nn.LSTMCell)}
    op_counter.CUSTOM_MODULES_MAPPING.update(hooks)  # read while hooks attach; reset by the call itself
    try:
        return tp.utils.count_ops_and_params(model, example_inputs, layer_wise=layer_wise)
    finally:
        op_counter.CUSTOM_MODULES_MAPPING = {}


def rnn_macs(module, steps: int, batch: int = 1) -> int:
    """Multiply-accumulates of an nn.RNN/GRU/LSTM run over `steps` steps.

    Per step, layer and direction: gates x (input + hidden) x hidden (the two weight matrices), plus
    the LSTM projection (proj_size x hidden) when it has one; gate arithmetic is not counted.
    """
    per_step = 0
    for name, p in module.named_parameters():
        if name.startswith("weight_"):  # weight_ih_l{k}, weight_hh_l{k}, weight_hr_l{k} (+ _reverse)
            per_step += p.numel()
    return int(per_step) * int(steps) * int(batch)


def _rnn_hook(module, inputs, _output):
    from torch.nn.utils.rnn import PackedSequence

    x = inputs[0]
    if isinstance(x, PackedSequence):
        steps, batch = int(x.data.shape[0]), 1  # data holds every (sequence, step) row once
    elif x.dim() == 2:  # unbatched (steps, features)
        steps, batch = x.shape[0], 1
    else:
        batch, steps = (x.shape[0], x.shape[1]) if module.batch_first else (x.shape[1], x.shape[0])
    module.__flops__ += rnn_macs(module, steps, batch)


def _cell_hook(module, inputs, _output):
    x = inputs[0]
    module.__flops__ += rnn_macs(module, 1, x.shape[0] if x.dim() == 2 else 1)


def count_macs_params(model, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """MACs for one sample of `input_shape` (C, H, W) and the parameter count."""
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        macs, params = count_ops(model, torch.zeros(1, *input_shape))
    model.train(was_training)
    return int(macs), int(params)
