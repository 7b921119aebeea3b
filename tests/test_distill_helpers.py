"""Shared fixtures for the distillation tests: a teacher trained here on digits (seconds), small bundles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgekd.data import load_data
from edgekd.data.bundle import ArrayDataset, DataBundle
from edgekd.models import create_model

TEACHER_ARCH = "cnn-s"


def digits() -> DataBundle:
    return load_data("digits", seed=0)


def small_bundle(d: DataBundle, n: int = 256, n_val: int = 96) -> DataBundle:
    return DataBundle(d.name, ArrayDataset(d.train.x[:n], d.train.y[:n]), ArrayDataset(d.val.x[:n_val], d.val.y[:n_val]),
                      d.test, d.num_classes, d.input_shape, d.mean, d.std)


def train_teacher(d: DataBundle, epochs: int = 8, seed: int = 0) -> torch.nn.Module:
    """A real teacher (cnn-s, ~97 % on digits) trained with plain cross-entropy in a couple of seconds."""
    torch.manual_seed(seed)
    t = create_model(TEACHER_ARCH, in_channels=1, num_classes=10)
    opt = torch.optim.AdamW(t.parameters(), lr=5e-3)
    x, y = torch.from_numpy(d.train.x), torch.from_numpy(d.train.y)
    rng = np.random.default_rng(seed)
    t.train()
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(x)), max(1, len(x) // 64)):
            opt.zero_grad()
            F.cross_entropy(t(x[idx]), y[idx]).backward()
            opt.step()
    return t.eval()


def teacher_file(d: DataBundle, path: Path) -> Path:
    if not path.exists():
        torch.save(train_teacher(d).state_dict(), path)
    return path


def load_teacher(path: Path) -> torch.nn.Module:
    t = create_model(TEACHER_ARCH, in_channels=1, num_classes=10)
    t.load_state_dict(torch.load(path, weights_only=True))
    return t.eval()
