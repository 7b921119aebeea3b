"""Which MLP neurons a narrower student keeps: the teacher's most important ones, not the leading slice.

An MLP's hidden neurons have no order, so keeping the first k of them keeps an arbitrary subset. A neuron's
importance is what it adds to the residual stream: its mean |activation| over tokens of the training text times the
norm of its output weights (the column of the down projection it reads into; Minitron, Muralidharan et al. 2024,
ranks by the activation alone). The same indices then cut every tensor of the layer along the MLP axis, biases
included, so each kept neuron keeps all of its weights (GPT-2 c_fc / c_proj, Llama and Qwen2 gate_proj / up_proj /
down_proj, Phi fc1 / fc2, GPT-NeoX dense_h_to_4h / dense_4h_to_h).

SmolLM2-135M with all 30 layers and the MLP cut from 1536 to 1024, untrained (benchmarks/results/
decoder_mlp_neurons.json; teacher 128.6): held-out perplexity 346 by activation, 63,924 with the leading slice and
4,872,540 by weight norms alone (the product of each neuron's row / column norms), so without text to measure on
the leading slice stays.
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


def important_neurons(t_state: Mapping, axes: Mapping[str, int], keep: int, activation=None,
                      consumers: tuple[str, ...] = ()):
    """The `keep` most important neurons, in their original order (a LongTensor): by activation (their mean |input|
    to the `consumers`, the state keys of the weights that read the MLP width) times those weights' column norms;
    without activations, the first `keep` (weight norms alone chose worse than that)."""
    import torch

    if activation is None:
        return torch.arange(keep)
    score = torch.log(activation.double() + 1e-12)
    for key in consumers:
        if key in axes and t_state[key].dim() == 2:
            score = score + torch.log(t_state[key].detach().double().norm(dim=1 - axes[key]) + 1e-12)
    return torch.sort(torch.topk(score, keep).indices).values


def reads_width(module, full: int) -> bool:
    """Whether a module takes the MLP width as its input (a down projection: nn.Linear, or GPT-2's Conv1D whose
    weight is stored (in, out))."""
    from torch import nn

    w = getattr(module, "weight", None)
    if isinstance(module, nn.Linear):
        return module.in_features == full
    return type(module).__name__ == "Conv1D" and w is not None and w.dim() == 2 and w.shape[0] == full


def mean_abs_inputs(model, layers: Mapping[int, object], full: int, batches) -> dict[int, dict[str, object]]:
    """{layer: {relative module name: mean |input| per MLP neuron}} over the tokens of `batches` (attention-masked),
    for every module of the given layers that reads the MLP width; one teacher forward per batch."""
    import torch

    sums: dict[int, dict[str, torch.Tensor]] = {}
    count = [0.0]
    mask = [None]
    hooks = []

    def hook(i, name):
        def fn(_module, inputs):
            x = inputs[0].detach().double().abs()  # (batch, tokens, full)
            m = mask[0].to(x.dtype).unsqueeze(-1) if mask[0] is not None else torch.ones_like(x[..., :1])
            sums.setdefault(i, {}).setdefault(name, torch.zeros(full, dtype=torch.float64))
            sums[i][name] += (x * m).sum(dim=(0, 1))
        return fn

    for i, layer in layers.items():
        for name, mod in layer.named_modules():
            if name and reads_width(mod, full):
                hooks.append(mod.register_forward_pre_hook(hook(i, name)))
    try:
        with torch.no_grad():
            for b in batches:
                mask[0] = torch.as_tensor(b["attention_mask"])
                count[0] += float(mask[0].sum())
                model(input_ids=torch.as_tensor(b["input_ids"]), attention_mask=mask[0])
    finally:
        for h in hooks:
            h.remove()
    return {i: {n: v / max(count[0], 1.0) for n, v in d.items()} for i, d in sums.items()}


def cut(t_val, s_shape, axis: int | None, index):
    """The teacher tensor cut to the student's shape: `index` along the MLP axis, the leading slice elsewhere
    (a narrower residual width keeps its leading channels, as the rest of derive does)."""
    if axis is not None:
        t_val = t_val.index_select(axis, index)
    return t_val[tuple(slice(0, d) for d in s_shape)]
