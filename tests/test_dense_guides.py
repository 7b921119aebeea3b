"""DenseGuides: KD against it has DGKD's gradient (the sum of KLs to every guide), hand-checked."""

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.distill.guides import DenseGuides
from edgekd.distill.losses.logit import soft_kl


class Fixed(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits


def test_softmax_of_the_guides_output_is_their_mean_distribution():
    torch.manual_seed(0)
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    out = DenseGuides([Fixed(a), Fixed(b)], temperature=3.0)(None)
    mean = (F.softmax(a / 3, -1) + F.softmax(b / 3, -1)) / 2
    assert torch.allclose(F.softmax(out / 3, -1), mean, atol=1e-6)


def test_kd_on_the_guides_has_the_gradient_of_the_sum_of_kls():
    torch.manual_seed(1)
    guides = [torch.randn(4, 6) for _ in range(3)]
    s = torch.randn(4, 6, requires_grad=True)
    T = 4.0
    dense = DenseGuides([Fixed(g) for g in guides], temperature=T)(None)
    (g_dense,) = torch.autograd.grad(3 * soft_kl(s, dense, T).sum(), s)
    (g_sum,) = torch.autograd.grad(sum(soft_kl(s, g, T).sum() for g in guides), s)
    assert torch.allclose(g_dense, g_sum, atol=1e-5)


def test_one_guide_is_that_guide():
    z = torch.randn(3, 5)
    assert torch.allclose(F.softmax(DenseGuides([Fixed(z)], 2.0)(None) / 2, -1), F.softmax(z / 2, -1), atol=1e-6)
