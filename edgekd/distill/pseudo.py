"""Pseudo-labels: the teacher labels unlabeled images; keep those it is confident about.
And the training set they join (labeled train + teacher-labeled extras)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgekd.core.outputs import logits_of as _logits
from edgekd.data.bundle import ArrayDataset, DataBundle
from edgekd.errors import EdgeKDError


@torch.no_grad()
def pseudo_label(teacher: nn.Module, x: np.ndarray, threshold: float = 0.0, batch_size: int = 512):
    """Return (labels of kept rows, indices of kept rows, info) for rows whose top softmax
    probability is >= threshold (0 keeps all)."""
    was = teacher.training
    teacher.eval()
    p0 = next(iter(teacher.parameters()), None)
    dev = p0.device if p0 is not None else torch.device("cpu")
    probs = []
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(dev)
        probs.append(torch.softmax(_logits(teacher(xb)).float(), -1).cpu())
    teacher.train(was)
    p = torch.cat(probs) if probs else torch.zeros(0, 1)
    conf, label = p.max(-1)
    kept = (conf >= threshold).nonzero().flatten().numpy()
    info = {"offered": int(len(x)), "kept": int(len(kept)), "threshold": float(threshold),
            "mean_confidence": float(conf.mean()) if len(conf) else 0.0}
    return label.numpy()[kept].astype(np.int64), kept, info


def training_set(teacher: nn.Module, data: DataBundle, unlabeled,
                 threshold: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """(x, y, pseudo-label info): labeled train, plus teacher-labeled extra images (`unlabeled`: an
    ArrayDataset or array); missing train labels come from the teacher too."""
    x, y = data.train.x, data.train.y
    info: dict = {}
    if y is None:
        y, kept, info["train"] = pseudo_label(teacher, x, threshold)
        x = x[kept]
    if unlabeled is not None:
        ux = unlabeled.x if isinstance(unlabeled, ArrayDataset) else np.asarray(unlabeled, dtype=np.float32)
        if ux.ndim != 4 or tuple(ux.shape[1:]) != tuple(x.shape[1:]):
            raise EdgeKDError(f"unlabeled images have shape {tuple(ux.shape[1:])}; expected {tuple(x.shape[1:])}")
        uy, kept, info["unlabeled"] = pseudo_label(teacher, ux, threshold)
        x, y = np.concatenate([x, ux[kept]]), np.concatenate([y, uy])
    if len(x) == 0:
        raise EdgeKDError("no training samples left after pseudo-label filtering; lower pseudo_labels.threshold")
    return x, np.asarray(y, dtype=np.int64), info
