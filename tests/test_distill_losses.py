"""Each distillation loss against a value worked out by hand on a tiny input."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill import (
    AttentionTransferLoss,
    CosineAlignmentLoss,
    HintLoss,
    KDLoss,
    RKDLoss,
    TokenKDLoss,
    pseudo_label,
)

LN3 = math.log(3.0)


def _kl_binary(pt0: float, ps0: float) -> float:
    return pt0 * math.log(pt0 / ps0) + (1 - pt0) * math.log((1 - pt0) / (1 - ps0))


def test_kd_temperature_one():
    # teacher logits (ln 3, 0) -> p = (3/4, 1/4); student (0, 0) -> (1/2, 1/2)
    s, t = torch.zeros(1, 2), torch.tensor([[LN3, 0.0]])
    want = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)  # 0.130812
    assert KDLoss(temperature=1.0, alpha=1.0)(s, t).item() == pytest.approx(want, abs=1e-6)
    assert want == pytest.approx(0.130812, abs=1e-6)


def test_kd_temperature_scaling_and_alpha_mix():
    s, t, y = torch.zeros(1, 2), torch.tensor([[LN3, 0.0]]), torch.tensor([0])
    # at T=2 the teacher's logits halve: p0 = sqrt(3) / (sqrt(3) + 1) = 0.633975
    p0 = math.sqrt(3) / (math.sqrt(3) + 1)
    soft = _kl_binary(p0, 0.5) * 4.0  # T^2 = 4 -> 0.145363
    hard = math.log(2.0)  # CE of (0, 0) against class 0
    got = KDLoss(temperature=2.0, alpha=0.5)(s, t, y).item()
    assert soft == pytest.approx(0.145363, abs=1e-5)
    assert got == pytest.approx(0.5 * soft + 0.5 * hard, abs=1e-6)  # 0.419255
    # alpha = 0: pure hard cross-entropy, whatever the teacher says
    assert KDLoss(temperature=2.0, alpha=0.0)(s, t, y).item() == pytest.approx(hard, abs=1e-6)


def test_kd_gradient_does_not_reach_teacher():
    s = torch.zeros(1, 2, requires_grad=True)
    t = torch.tensor([[LN3, 0.0]], requires_grad=True)
    KDLoss(2.0, 1.0)(s, t).backward()
    assert t.grad is None and s.grad is not None


def test_token_kd_masks_padding():
    # token 0 as above, token 1 is padding holding wild logits that must not count
    s = torch.tensor([[[0.0, 0.0], [50.0, -50.0]]])
    t = torch.tensor([[[LN3, 0.0], [-50.0, 50.0]]])
    mask = torch.tensor([[1, 0]])
    want = _kl_binary(math.sqrt(3) / (math.sqrt(3) + 1), 0.5) * 4.0
    assert TokenKDLoss(temperature=2.0)(s, t, mask).item() == pytest.approx(want, abs=1e-6)
    assert TokenKDLoss(temperature=2.0)(s, t).item() > 10  # unmasked, the padding dominates


def test_hint_identity_and_regressor():
    assert HintLoss()(torch.full((1, 1, 1, 1), 2.0), torch.full((1, 1, 1, 1), 5.0)).item() == pytest.approx(9.0)
    h = HintLoss((1, 1, 1), (2, 1, 1))
    assert isinstance(h.regressor, nn.Conv2d) and h.regressor.weight.shape == (2, 1, 1, 1)
    with torch.no_grad():
        h.regressor.weight[:] = torch.tensor([1.0, 2.0]).view(2, 1, 1, 1)
    # student 2 -> regressed (2, 4); teacher (3, 3): ((-1)^2 + 1^2) / 2 = 1
    assert h(torch.full((1, 1, 1, 1), 2.0), torch.full((1, 2, 1, 1), 3.0)).item() == pytest.approx(1.0)


def test_hint_spatial_mismatch_pools_student():
    h = HintLoss((1, 2, 2), (1, 1, 1))
    s = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]]])  # average 3
    assert h(s, torch.full((1, 1, 1, 1), 1.0)).item() == pytest.approx(4.0)  # (3 - 1)^2


def test_attention_transfer_value():
    # student: both channels (1, 0) -> mean of squares (1, 0) -> normalised (1, 0)
    s = torch.tensor([[[[1.0, 0.0]], [[1.0, 0.0]]]])
    # teacher: one channel (1, 1) -> (1/sqrt2, 1/sqrt2)
    t = torch.tensor([[[[1.0, 1.0]]]])
    r = 1 / math.sqrt(2)
    want = ((1 - r) ** 2 + r ** 2) / 2  # 0.292893
    at = AttentionTransferLoss(p=2)
    assert at(s, t).item() == pytest.approx(want, abs=1e-6)
    # the cached form (teacher attention map) gives the same value
    assert at(s, at.reduce_teacher(t)).item() == pytest.approx(want, abs=1e-6)


def test_rkd_distance_value():
    s = torch.tensor([[0.0], [1.0], [3.0]])  # distances 1, 3, 2 -> mean 2 -> 0.5, 1.5, 1
    t = torch.tensor([[0.0], [2.0], [4.0]])  # distances 2, 4, 2 -> mean 8/3 -> 0.75, 1.5, 0.75
    # differences 0.25 (x4 entries), smooth L1 = 0.5 * 0.0625 each, mean over 9 entries
    want = 4 * 0.5 * 0.25 ** 2 / 9
    assert RKDLoss(distance_weight=1.0, angle_weight=0.0)(s, t).item() == pytest.approx(want, abs=1e-6)


def test_rkd_angle_value():
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # right angle at vertex 0
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])  # right angle at vertex 1
    # cosines differ by 1/sqrt2 in 4 of the 27 (i, j, k) entries: smooth L1 0.5 * 0.5 each
    want = 4 * 0.25 / 27
    assert RKDLoss(distance_weight=0.0, angle_weight=1.0)(s, t).item() == pytest.approx(want, abs=1e-6)
    # scale invariance: the same shapes at another scale cost nothing
    assert RKDLoss()(s, 10 * s).item() == pytest.approx(0.0, abs=1e-6)


def test_cosine_alignment_value_and_mask():
    s = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    t = torch.tensor([[[1.0, 1.0], [0.0, -1.0]]])
    want = 1 - 1 / math.sqrt(2)
    assert CosineAlignmentLoss()(s, t, torch.tensor([[1, 0]])).item() == pytest.approx(want, abs=1e-6)
    assert CosineAlignmentLoss()(s, t).item() == pytest.approx((want + 2.0) / 2, abs=1e-6)
    assert isinstance(CosineAlignmentLoss(3, 2).proj, nn.Linear)


def test_pseudo_label_threshold():
    class Fixed(nn.Module):
        def forward(self, x):  # logits straight from the first two pixels
            return x.flatten(1)[:, :2]

    x = np.array([[[[5.0, 0.0]]], [[[0.0, 0.1]]], [[[0.0, 4.0]]]], dtype=np.float32)
    labels, kept, info = pseudo_label(Fixed(), x, threshold=0.9)
    assert kept.tolist() == [0, 2] and labels.tolist() == [0, 1]
    assert info["offered"] == 3 and info["kept"] == 2
    labels, kept, _ = pseudo_label(Fixed(), x, threshold=0.0)
    assert labels.tolist() == [0, 1, 1]
