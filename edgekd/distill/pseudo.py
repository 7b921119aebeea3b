"""Pseudo-labels: the teacher labels unlabeled images; keep those it is confident about."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgekd.models.outputs import logits_of as _logits


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
