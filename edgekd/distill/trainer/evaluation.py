"""Held-out scoring and model selection: accuracy against labels (or agreement with the teacher where the
held-out set has none), the teacher's own figure, and the best epoch's student weights."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.data.bundle import DataBundle
from edgekd.distill.cache import TeacherCache
from edgekd.distill.trainer.ddp import Dist, device_of
from edgekd.distill.trainer.fingerprints import param_fingerprint
from edgekd.core.outputs import logits_of


@contextmanager
def eval_mode(model: nn.Module):
    """Eval mode without gradients for a held-out pass; the model's train/eval mode is restored after."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was)


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, dist: Dist, batch: int = 512) -> tuple[float, float]:
    """(accuracy, mean CE) over x, sharded across ranks and summed, so every rank gets the full figure."""
    dev = device_of(model)
    correct = loss = 0.0
    shard = np.arange(dist.rank, len(x), dist.world)
    with eval_mode(model):
        for i in range(0, len(shard), batch):
            rows = shard[i: i + batch]
            logits = logits_of(model(torch.from_numpy(x[rows]).to(dev))).float().cpu()
            target = torch.from_numpy(y[rows])
            correct += float((logits.argmax(-1) == target).sum())
            loss += float(F.cross_entropy(logits, target, reduction="sum"))
    correct, loss = dist.sum(correct, loss)
    return correct / len(x), loss / len(x)


def teacher_labels(teacher: nn.Module, x: np.ndarray, batch: int = 512) -> np.ndarray:
    with torch.no_grad():
        dev = device_of(teacher)
        return np.concatenate([logits_of(teacher(torch.from_numpy(x[i:i + batch]).to(dev))).argmax(-1).cpu().numpy()
                               for i in range(0, len(x), batch)]).astype(np.int64)


def validation_set(teacher: nn.Module, data: DataBundle) -> tuple[np.ndarray, np.ndarray, str]:
    """(x, y, metric name): val (else test) with its labels, or the teacher's labels when it has none."""
    vx = data.val.x if len(data.val) else data.test.x
    vy = data.val.y if len(data.val) else data.test.y
    if vy is None:
        return vx, teacher_labels(teacher, vx), "teacher-agreement"
    return vx, vy, "labels"


def teacher_val_acc(teacher: nn.Module, vx: np.ndarray, vy: np.ndarray, dist: Dist, cache) -> float:
    """The teacher's val accuracy, remembered on a shared TeacherCache: runs that share one (the auto probe's
    trials, a benchmark's methods) have the same teacher and data, and a large teacher's pass is not free."""
    memo = getattr(cache, "teacher_val", None) if isinstance(cache, TeacherCache) else None
    key = (param_fingerprint(teacher), len(vx))
    if memo is not None and memo[0] == key:
        return memo[1]
    acc, _ = evaluate(teacher, vx, vy, dist)
    if isinstance(cache, TeacherCache):
        cache.teacher_val = (key, acc)
    return acc


class BestModel:
    """The best held-out accuracy so far, its epoch, and (in memory) the student's weights at that epoch.
    A tie in accuracy goes to the lower held-out loss: a small held-out set (a few photos' views scored by
    agreement with the teacher) saturates at 100 % after the first epoch, and without the tie-break the
    first epoch's weights would ship whatever training did after it."""

    def __init__(self, acc: float = -1.0, epoch: int = -1, loss: float = float("inf")):
        self.acc, self.epoch, self.loss = acc, epoch, loss
        self.state: dict[str, torch.Tensor] | None = None

    def offer(self, student: nn.Module, acc: float, epoch: int, loss: float | None = None) -> bool:
        """Keep the student if `acc` beats the best so far (or ties it with a lower `loss`); True when it did."""
        tie_won = acc == self.acc and loss is not None and loss < self.loss
        if acc < self.acc or (acc == self.acc and not tie_won):
            return False
        self.acc, self.epoch = acc, epoch
        self.loss = float("inf") if loss is None else loss
        self.state = {k: v.detach().clone() for k, v in student.state_dict().items()}
        return True

    def restore(self, student: nn.Module, saved: Callable[[], dict | None]) -> None:
        """Load the best weights into `student`: the ones kept here, else `saved()` (best.pt, for a resumed run
        that was already complete or whose best epoch came before the resume). Leaves it in eval mode."""
        state = self.state if self.state is not None else saved()
        if state is not None:
            student.load_state_dict(state)
        student.eval()
