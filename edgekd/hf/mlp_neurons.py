"""Which MLP neurons a narrower student keeps: the teacher's most important ones, not the leading slice.

An MLP's hidden neurons have no order, so keeping the first k of them keeps an arbitrary subset. Here each
neuron of a layer is scored by its weights alone (no data needed): the product of the L2 norms of its row or
column in every 2-D weight of the layer that has the MLP width on one axis (GPT-2 c_fc / c_proj, Llama and Qwen2
gate_proj / up_proj / down_proj, Phi fc1 / fc2, GPT-NeoX dense_h_to_4h / dense_4h_to_h). A neuron whose input or
output weights are small contributes little to the residual stream whatever its activation; Minitron (Muralidharan
et al. 2024) scores by activations instead, which needs calibration text. The same indices then cut every tensor of
the layer along that axis, biases included, so each kept neuron keeps all of its weights.
"""

from __future__ import annotations

from typing import Mapping


def mlp_axes(t_state: Mapping, s_state: Mapping, full: int, keep: int) -> dict[str, int]:
    """{key: axis} for the tensors of one layer whose axis of size `full` (the teacher's MLP width) becomes `keep`
    in the student; keys are the layer-relative names both state dicts share."""
    axes = {}
    for key, t in t_state.items():
        s = s_state.get(key)
        if s is None or s.dim() != t.dim() or tuple(s.shape) == tuple(t.shape):
            continue
        hits = [d for d in range(t.dim()) if t.shape[d] == full and s.shape[d] == keep]
        if len(hits) == 1:
            axes[key] = hits[0]
    return axes


def important_neurons(t_state: Mapping, axes: Mapping[str, int], keep: int):
    """The `keep` neurons with the largest weight-norm product, in their original order (a LongTensor)."""
    import torch

    score = None
    for key, axis in axes.items():
        w = t_state[key].detach().float()
        if w.dim() != 2:  # biases: cut with the same indices, but a zero bias says nothing about the neuron
            continue
        norms = w.norm(dim=1 - axis)
        part = torch.log(norms + 1e-12)
        score = part if score is None else score + part
    if score is None:
        return torch.arange(keep)
    return torch.sort(torch.topk(score, keep).indices).values


def cut(t_val, s_shape, axis: int | None, index):
    """The teacher tensor cut to the student's shape: `index` along the MLP axis, the leading slice elsewhere
    (a narrower residual width keeps its leading channels, as the rest of derive does)."""
    if axis is not None:
        t_val = t_val.index_select(axis, index)
    return t_val[tuple(slice(0, d) for d in s_shape)]
