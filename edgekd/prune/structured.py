"""Iterative pruning of a trained student, each step followed by distillation recovery from the teacher.

Structured (default): Torch-Pruning removes whole channels, so the model really gets smaller and
faster on every runtime. `ratio` is the fraction of channels removed (Torch-Pruning's pruning_ratio):
uniform = every layer loses that fraction, global = one ranking across layers (layers differ).
Unstructured: global magnitude pruning zeros `ratio` of the weights; see unstructured.DENSE_NOTE.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.core.inputs import open_fraction
from edgekd.errors import EdgeKDError
from edgekd.prune import _train, _util, unstructured as U
from edgekd.prune.width import make_pruner, step_pruner

SCOPES = ("global", "uniform")
IMPORTANCES = ("magnitude", "taylor", "lamp", "random")


@dataclass
class PruneResult:
    model: Any  # the pruned nn.Module (eval mode)
    ratio: float
    importance: str
    scope: str
    steps: int
    unstructured: bool
    recovery: str  # "kd" | "ce" | "none"
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    accuracy_before: float | None = None  # held-out (val) top-1, 0..1
    accuracy_after: float | None = None
    test_accuracy_after: float | None = None
    sparsity: dict | None = None
    latency_before: dict | None = None  # measured, PyTorch eager on this host
    latency_after: dict | None = None
    speed: dict | None = None  # paired after/before latency ratio with its CI (interleaved)
    history: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "model"}
        d["macs_ratio"] = self.macs_after / max(1, self.macs_before)
        d["params_ratio"] = self.params_after / max(1, self.params_before)
        return d


def _schedule(ratio: float, steps: int) -> list[float]:
    """Cumulative pruned fraction after each step (linear, as Torch-Pruning's default scheduler)."""
    return [ratio * (k + 1) / steps for k in range(steps)]


def _validate(ratio, importance, scope, steps, recover_epochs, recovery, unstructured):
    ratio = open_fraction(ratio, "prune ratio", f"fraction of channels{' / weights' if unstructured else ''} removed")
    if importance not in IMPORTANCES:
        raise EdgeKDError(f"unknown importance {importance!r}: use {', '.join(IMPORTANCES)}")
    if scope not in SCOPES:
        raise EdgeKDError(f"unknown scope {scope!r}: use global or uniform")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise EdgeKDError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(recover_epochs, int) or recover_epochs < 0:
        raise EdgeKDError(f"recover_epochs must be a non-negative integer, got {recover_epochs!r}")
    if recovery not in ("kd", "ce", "none"):
        raise EdgeKDError(f"recovery must be kd, ce or none, got {recovery!r}")
    return ratio


def prune(
    model,
    teacher,
    data,
    *,
    ratio: float,
    importance: str = "magnitude",
    scope: str = "global",
    steps: int = 3,
    recover_epochs: int = 1,
    recover_steps: int | None = None,
    recovery: str = "kd",
    unstructured: bool = False,
    recipe: str | dict = "hinton",
    round_to: int | None = 8,
    batch_size: int = 128,
    lr: float | None = None,
    seed: int = 0,
    output_dir: str | Path | None = None,
    progress: bool = False,
    measure_latency: bool = True,
    threads: int = 2,
    taylor_batches: int = 4,
    teacher_cache: Any = None,
) -> PruneResult:
    """Prune `model` (a trained student, not modified) to `ratio` in `steps` steps with recovery after each.

    teacher: the KD teacher for recovery; None = the unpruned model itself (self-distillation).
    recovery: "kd" (distill from the teacher, recipe `recipe`), "ce" (label fine-tuning), "none".
    recover_epochs / recover_steps: training per step (recover_steps caps the steps of each recovery).
    """

    t0 = time.perf_counter()
    ratio = _validate(ratio, importance, scope, steps, recover_epochs, recovery, unstructured)
    _check_inputs(model, data, importance, recovery, recover_epochs, unstructured)

    work = copy.deepcopy(model).eval()
    work.requires_grad_(True)  # a model that served as a teacher before has frozen parameters
    if teacher is None:  # self-distillation: the unpruned model teaches its pruned copy
        teacher = copy.deepcopy(model).eval()
    x = _util.example_tensor(data.train.x[:1] if data is not None else None) if data is not None else None
    if x is None:
        raise EdgeKDError("prune needs data (for the example input, recovery and evaluation)")
    _util.check_runs(work, x)
    out_layers = _util.output_layers(work, x)
    macs0, params0 = _util.count(work, x)
    val = _train.held_out(data)
    acc0 = _train.accuracy(work, val)
    original = copy.deepcopy(work)

    if teacher_cache is None and recovery == "kd" and recover_epochs > 0 and data.train.y is not None:
        teacher_cache = _shared_cache(recipe, len(data.train))  # the teacher is fixed: compute its outputs once
    history: list[dict] = []
    notes: list[str] = []
    schedule = _schedule(ratio, steps)
    prev = 0.0
    for k, cum in enumerate(schedule):
        step_amount = 1.0 - (1.0 - cum) / (1.0 - prev)  # of what is left, so the cumulative ratio follows `schedule`
        if unstructured:
            U.apply_global_magnitude(work, step_amount, skip=out_layers)
        else:
            _structured_step(work, x, data, teacher, step_amount, cum, importance, scope, round_to,
                             taylor_batches, batch_size, seed + k)
            out_layers = _util.output_layers(work, x)
        prev = cum
        # Unstructured masks make `weight` a computed tensor (no deepcopy, so no op counter); MACs are unchanged.
        macs, params = (macs0, params0) if unstructured else _util.count(work, x)
        entry = {"step": k + 1, "cumulative_ratio": round(cum, 4), "macs": macs, "params": params,
                 "val_acc_pruned": _train.accuracy(work, val)}
        if recovery != "none" and recover_epochs > 0:
            sub = Path(output_dir) / f"step{k + 1}" if output_dir is not None else None
            m = _train.train_link(teacher, work, data, recipe=_train.CE_RECIPE if recovery == "ce" else recipe,
                                  epochs=recover_epochs, max_steps=recover_steps, batch_size=batch_size, lr=lr,
                                  seed=seed + k, output_dir=sub, progress=progress,
                                  cache=teacher_cache if recovery == "kd" else None)
            entry.update(recovery_steps=m.get("steps"), recovery_seconds=m.get("seconds"))
        entry["val_acc"] = _train.accuracy(work, val)
        history.append(entry)

    if unstructured:
        U.make_permanent(work)
        notes.append(U.DENSE_NOTE)
    work.eval()
    macs1, params1 = _util.count(work, x)
    lat0 = lat1 = speed = None
    if measure_latency:
        lat0, lat1, speed = _util.measure_latency(original, work, x, threads=threads)
    return PruneResult(
        model=work, ratio=ratio, importance=importance, scope=scope, steps=steps, unstructured=unstructured,
        recovery=recovery if recover_epochs > 0 else "none", macs_before=macs0, macs_after=macs1,
        params_before=params0, params_after=params1, accuracy_before=acc0,
        accuracy_after=_train.accuracy(work, val), test_accuracy_after=_train.accuracy(work, data.test),
        sparsity=U.sparsity(work, skip=_util.output_layers(work, x)) if unstructured else None,
        latency_before=lat0, latency_after=lat1, speed=speed, history=history, notes=notes,
        seconds=round(time.perf_counter() - t0, 3),
    )


def _check_inputs(model, data, importance: str, recovery: str, recover_epochs: int, unstructured: bool) -> None:
    """One-line errors for a model, data and options that cannot go together (before any work is done)."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise EdgeKDError("prune needs a PyTorch nn.Module")
    if unstructured and importance not in ("magnitude",):
        raise EdgeKDError("unstructured pruning ranks weights by magnitude only; drop --importance")
    if recovery == "ce" and (data is None or data.train.y is None):
        raise EdgeKDError("recovery 'ce' needs labeled training data; use recovery 'kd'")
    if recover_epochs > 0 and recovery != "none" and data is None:
        raise EdgeKDError("recovery training needs data (or set recover_epochs=0)")
    if importance == "taylor" and data is None:
        raise EdgeKDError("taylor importance needs data to compute gradients")


def _structured_step(work, x, data, teacher, step_amount, cum, importance, scope, round_to, taylor_batches,
                     batch_size, seed):
    """One Torch-Pruning step removing `step_amount` of the current channels (Taylor: after a few backward passes)."""
    pruner = make_pruner(work, x, pruning_ratio=step_amount, importance=importance,
                         global_pruning=(scope == "global"), round_to=round_to,
                         max_pruning_ratio=min(0.95, max(step_amount, 0.9)))
    if importance == "taylor":
        _taylor_grads(work, teacher, data, taylor_batches, batch_size, seed)
    step_pruner(pruner)
    work.zero_grad(set_to_none=True)


def _taylor_grads(model, teacher, data, n_batches, batch_size, seed):
    """Accumulate gradients of the KD loss (teacher soft targets; labels when present) for Taylor importance."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    model.eval()  # BatchNorm statistics must not move while we only probe gradients
    model.zero_grad(set_to_none=True)
    for _ in range(max(1, n_batches)):
        idx = rng.choice(len(data.train), size=min(batch_size, len(data.train)), replace=False)
        xb = torch.from_numpy(data.train.x[idx])
        out = _util.first_tensor(model(xb))
        with torch.no_grad():
            t = _util.first_tensor(teacher(xb))
        loss = F.kl_div(F.log_softmax(out, -1), F.softmax(t, -1), reduction="batchmean")
        if data.train.y is not None:
            loss = loss + F.cross_entropy(out, torch.from_numpy(data.train.y[idx]))
        loss.backward()


def _shared_cache(recipe, n: int):
    """One teacher-output cache for all recovery runs (the engine checks it matches data and teacher)."""
    from edgekd.distill import TeacherCache, load_recipe
    from edgekd.distill.auto import LR_RECIPE
    from edgekd.distill.cache import Augmenter

    # "auto" trains built-in recipes that share their training settings: the probe's first recipe stands for them
    train = load_recipe(LR_RECIPE if recipe == "auto" else recipe).train
    return TeacherCache(n, Augmenter.view_count(train["augment"], train["views"]))
