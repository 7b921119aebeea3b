"""Optimizers and learning-rate schedules.

Both trainers warm up linearly over a fraction of the steps; the engine then follows the recipe's
[train] scheduler (cosine, one-cycle or constant), the text path decays linearly to 0 (DistilBERT's).
"""

from __future__ import annotations

import math
from typing import Callable


def warmup_decay(step: int, total: int, warmup: float, decay: str = "linear") -> float:
    """LR factor: linear warmup over `warmup` of the `total` steps, then `decay` ("linear" or "cosine") to 0."""
    warm = max(1, int(total * warmup))
    if step < warm:
        return (step + 1) / warm
    if decay == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))
    return max(0.0, (total - step) / max(1, total - warm))


def planned_schedule(opt, total: Callable[[], int], warmup: float):
    """Linear warmup/decay over `total()` steps, read at every step: a time budget may shorten the plan
    mid-run, and the schedule then anneals to the new end instead of being cut off mid-way."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_decay(s, total(), warmup))


def build_optimizer(params, train: dict, total_steps: "int | Callable[[], int]"):
    """Optimizer and per-step scheduler from a recipe's [train] table. total_steps may be a callable read at
    every step (a time budget shortens the plan mid-run): one-cycle and cosine then both warm up and anneal
    to the plan's current end (a cosine schedule; OneCycleLR cannot change its length)."""
    import torch

    if train["optimizer"] == "sgd":
        opt = torch.optim.SGD(params, lr=train["lr"], momentum=train["momentum"], weight_decay=train["weight_decay"],
                              nesterov=True)
    else:
        opt = torch.optim.AdamW(params, lr=train["lr"], weight_decay=train["weight_decay"])
    if callable(total_steps):
        return opt, _planned(opt, train, total_steps)
    if train["scheduler"] == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=train["lr"], total_steps=max(total_steps, 2),
                                                    pct_start=min(max(train["warmup"], 0.01), 0.99))
    elif train["scheduler"] == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: warmup_decay(step, total_steps, train["warmup"], "cosine"))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    return opt, sched


def _planned(opt, train: dict, total: Callable[[], int]):
    import torch

    opt_sched = train["scheduler"]
    if opt_sched == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_decay(step, total(), train["warmup"], "cosine"))
