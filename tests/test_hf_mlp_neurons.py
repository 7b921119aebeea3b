"""edgekd.hf.mlp_neurons: which neurons a narrower MLP keeps, checked by hand on 4-neuron layers."""

import torch

from edgekd.hf.mlp_neurons import cut, important_neurons, mlp_axes


def _layer():
    # 4 neurons, hidden 3. up rows' norms: 1, 2, 3, 4; down columns' norms: 4, 1, 2, 1 -> products 4, 2, 6, 4
    up = torch.diag(torch.tensor([1.0, 2.0, 3.0])).repeat(2, 1)[:4].clone()
    up[3] = torch.tensor([4.0, 0.0, 0.0])
    down = torch.zeros(3, 4)
    down[0] = torch.tensor([4.0, 1.0, 2.0, 1.0])
    return {"mlp.up.weight": up, "mlp.up.bias": torch.zeros(4), "mlp.down.weight": down,
            "attn.q.weight": torch.ones(3, 3)}


def test_axes_are_the_ones_that_shrink():
    t = _layer()
    s = {"mlp.up.weight": torch.zeros(2, 3), "mlp.up.bias": torch.zeros(2), "mlp.down.weight": torch.zeros(3, 2),
         "attn.q.weight": torch.zeros(3, 3)}
    assert mlp_axes(t, s, full=4, keep=2) == {"mlp.up.weight": 0, "mlp.up.bias": 0, "mlp.down.weight": 1}


def test_activation_times_output_norm_kept_in_order():
    t = _layer()
    axes = {"mlp.up.weight": 0, "mlp.up.bias": 0, "mlp.down.weight": 1}
    act = torch.tensor([1.0, 8.0, 1.0, 3.0])  # x down column norms 4, 1, 2, 1 -> 4, 8, 2, 3
    assert important_neurons(t, axes, 2, act, ("mlp.down.weight",)).tolist() == [0, 1]
    assert important_neurons(t, axes, 3, act, ("mlp.down.weight",)).tolist() == [0, 1, 3]
    assert important_neurons(t, axes, 2, act).tolist() == [1, 3]  # no consumer weight: the activation alone


def test_without_activations_the_leading_neurons_stay():
    assert important_neurons(_layer(), {"mlp.up.weight": 0}, 2).tolist() == [0, 1]


def test_cut_indexes_the_mlp_axis_and_slices_the_rest():
    w = torch.arange(12.0).reshape(4, 3)
    out = cut(w, (2, 2), 0, torch.tensor([1, 3]))
    assert out.tolist() == [[3.0, 4.0], [9.0, 10.0]]  # rows 1 and 3, leading 2 columns
    assert cut(w, (2, 3), None, None).tolist() == w[:2].tolist()
