"""A tiny feature-vector classification task and MLPs for distillation tests (seconds, one thread)."""

import numpy as np
import torch
from torch import nn

from edgekd.data.bundle import ArrayDataset, DataBundle


def tiny_bundle(n=96, f=8, k=4, seed=0) -> DataBundle:
    """n samples of f features, k classes shifted apart; the same set serves as train, val and test."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = (rng.normal(size=(n, f)) + y[:, None]).astype(np.float32)
    ds = ArrayDataset(x, y.astype(np.int64))
    return DataBundle("tiny", ds, ds, ds, k, (f,), [0.0] * f, [1.0] * f, layout="NF")


def mlp(hidden, seed, f=8, k=4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(f, hidden), nn.ReLU(), nn.Linear(hidden, k))
