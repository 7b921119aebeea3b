"""Input mixup with a live teacher (function matching, Beyer et al. 2022): the loss, the step, the engine."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgekd.distill import distill, load_recipe
from edgekd.distill.step import Trainable
from edgekd.distill.terms import build_terms
from edgekd.errors import EdgeKDError

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_vectors import mlp, tiny_bundle  # noqa: E402


def test_mixup_mixes_the_label_terms_loss_not_the_teacher_terms():
    # hand-computed: KD (alpha 0.5, T 1) on a mixed batch = 0.5 * KL(t || s) + 0.5 * (lam CE(y) + (1 - lam) CE(y_b))
    student, teacher = mlp(6, 0), mlp(6, 1)
    rec = load_recipe({"loss": [{"type": "kd", "temperature": 1.0, "alpha": 0.5}]})
    x = torch.randn(5, 8)
    terms = build_terms(rec, student, teacher, x)
    model = Trainable(student, terms)
    y, y_b, lam = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([3, 2, 1, 0, 1]), 0.3
    t_logits = torch.randn(5, 4)
    total, _, s = model(x, {"logits": t_logits}, y, [1.0], (y_b, lam))
    kl = (F.softmax(t_logits, -1) * (F.log_softmax(t_logits, -1) - F.log_softmax(s, -1))).sum(-1).mean()
    hard = lam * F.cross_entropy(s, y) + (1 - lam) * F.cross_entropy(s, y_b)
    assert torch.allclose(total, 0.5 * kl + 0.5 * hard, atol=1e-6)
    plain, _, _ = model(x, {"logits": t_logits}, y, [1.0])
    assert torch.allclose(plain, 0.5 * kl + 0.5 * F.cross_entropy(s, y), atol=1e-6)


class Recorder(torch.nn.Module):
    """A teacher that remembers the inputs it was shown."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.inner(x)


def test_the_teacher_sees_the_mixed_batch_and_the_cache_is_off():
    data = tiny_bundle()
    teacher = Recorder(mlp(8, 1))
    res = distill(teacher, mlp(6, 0), data, recipe="kd-balanced", epochs=2, batch_size=32, progress=False,
                  overrides={"train.mixup": 0.4})
    assert res.metrics["cache"] == {"enabled": False, "reason": "mixup: the teacher runs live on each mixed batch"}
    train_rows = {tuple(np.round(r, 5)) for r in data.train.x}
    batches = [b for b in teacher.seen if len(b) == 32]  # training batches (checks and validation differ in size)
    assert len(batches) == 2 * 3
    # a mixed row is a convex mix of two training rows, so (almost) never a training row itself
    mixed = sum(tuple(np.round(r, 5)) not in train_rows for b in batches for r in b.numpy())
    assert mixed > 0.9 * 32 * len(batches)


def test_mixup_is_deterministic_per_seed_and_step():
    data = tiny_bundle()
    a = distill(mlp(8, 1), mlp(6, 0), data, recipe="ce", epochs=2, batch_size=32, progress=False, seed=3,
                overrides={"train.mixup": 1.0})
    b = distill(mlp(8, 1), mlp(6, 0), data, recipe="ce", epochs=2, batch_size=32, progress=False, seed=3,
                overrides={"train.mixup": 1.0})
    c = distill(mlp(8, 1), mlp(6, 0), data, recipe="ce", epochs=2, batch_size=32, progress=False, seed=3)
    x = torch.from_numpy(data.val.x)
    assert torch.allclose(a.student(x), b.student(x))
    assert not torch.allclose(a.student(x), c.student(x))  # mixup changed training


def test_negative_mixup_is_refused():
    with pytest.raises(EdgeKDError, match="mixup"):
        load_recipe("kd-balanced", {"train.mixup": -1})
