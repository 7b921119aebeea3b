"""The distillation engine for image classifiers and feature-vector models: one recipe's training run
(the public edgekd.distill.distill, in api.py, also offers recipe "auto" through auto.py).

Data order is a pure function of (seed, epoch): a checkpoint stores (epoch, step in epoch) and a
resumed run replays the same permutation from that position. Under torchrun every global batch of
`batch_size` indices is split evenly across ranks (rank r takes rows r, r+W, ...), DDP averages the
gradients, so one step equals the one-process step on the same global batch (models without
BatchNorm match to float tolerance; BatchNorm statistics are per rank). Only rank 0 writes.

The parts (epoch loop, schedule, checkpointer, evaluation, DDP) live in edgekd/distill/trainer/, shared with
the text path (edgekd.hf.train); the training step (student + loss terms, teacher outputs) in step.py.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.data.bundle import ArrayDataset, DataBundle
from edgekd.distill import checkpoint as ckpt
from edgekd.distill.cache import Augmenter, TeacherCache
from edgekd.distill.pseudo import training_set
from edgekd.distill.recipe import Recipe, load_recipe
from edgekd.distill.step import BatchStep, TeacherOutputs, Trainable, epoch_batches
from edgekd.distill.terms import Term, build_terms
from edgekd.distill.trainer.checkpointer import Checkpointer
from edgekd.distill.trainer.ddp import Dist, place_models
from edgekd.distill.trainer.evaluation import BestModel, eval_mode, evaluate, teacher_val_acc, validation_set
from edgekd.distill.trainer.fingerprints import data_fingerprint, param_fingerprint
from edgekd.distill.trainer.loop import EpochStats, StepPlan, Stepper, WallBudget, progress_bar, run_epoch
from edgekd.distill.trainer.schedule import build_optimizer
from edgekd.errors import EdgeKDError
from edgekd.core.outputs import logits_of


@dataclass
class DistillResult:
    student: nn.Module  # best weights (by held-out accuracy), eval mode
    metrics: dict[str, Any]
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    recipe: dict[str, Any] = field(default_factory=dict)


def check_inputs(teacher, student, data, epochs, max_steps, batch_size, output_dir, resume):
    if not isinstance(teacher, nn.Module) or not isinstance(student, nn.Module):
        raise EdgeKDError("distill needs the teacher and student as torch.nn.Module objects")
    if not isinstance(data, DataBundle):
        raise EdgeKDError("distill needs a DataBundle (edgekd.data.load_data)")
    if len(data.train) < 2:  # batch norm cannot train on one sample, and one sample teaches nothing
        raise EdgeKDError(f"data {data.where} has {len(data.train)} training sample(s); distillation needs at least 2 "
                          "(give more data)")
    if not isinstance(epochs, int) or epochs < 1:
        raise EdgeKDError(f"epochs must be a positive integer, got {epochs!r}")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise EdgeKDError(f"max_steps must be a positive integer, got {max_steps!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise EdgeKDError(f"batch_size must be a positive integer, got {batch_size!r}")
    if resume not in (True, False, "auto"):
        raise EdgeKDError(f"resume must be True, False or 'auto', got {resume!r}")
    if resume is True and output_dir is None:
        raise EdgeKDError("resume needs an output directory holding last.pt")


def distill(
    teacher: nn.Module,
    student: nn.Module,
    data: DataBundle,
    *,
    recipe: "str | dict | Recipe" = "default",
    epochs: int = 3,
    max_steps: int | None = None,
    batch_size: int = 128,
    lr: float | None = None,
    seed: int = 0,
    output_dir: str | os.PathLike | None = None,
    resume: "bool | str" = False,
    progress: bool = True,
    unlabeled: "ArrayDataset | np.ndarray | None" = None,
    overrides: dict[str, Any] | None = None,
    cache: "TeacherCache | bool | None" = None,
    checkpoint_every: int | None = None,
    cache_max_bytes: int = 2 << 30,
    device: "str | torch.device | None" = None,
    time_budget_s: float | None = None,
) -> DistillResult:
    """Train with one recipe (what edgekd.distill.distill does for any recipe but "auto", and what the auto
    probe calls per candidate); the parameters are edgekd.distill.api.distill's."""
    check_inputs(teacher, student, data, epochs, max_steps, batch_size, output_dir, resume)
    rec = load_recipe(recipe, recipe_overrides(overrides, lr, checkpoint_every))
    dist = Dist()
    try:
        return _run(teacher, student, data, rec, dist, epochs=epochs, max_steps=max_steps,
                    batch_size=batch_size, seed=seed, output_dir=output_dir, resume=resume, progress=progress,
                    unlabeled=unlabeled, cache=cache, cache_max_bytes=cache_max_bytes, device=device,
                    time_budget_s=time_budget_s)
    finally:
        dist.close()


def recipe_overrides(overrides: dict[str, Any] | None, lr: float | None, checkpoint_every: int | None) -> dict:
    """The caller's dotted recipe overrides plus the two that distill() takes as arguments."""
    ov = dict(overrides or {})
    if lr is not None:
        ov["train.lr"] = lr
    if checkpoint_every is not None:
        ov["train.checkpoint_every"] = checkpoint_every
    return ov


@dataclass
class _Run:
    """One distill() run's wiring: built by _setup, driven epoch by epoch by _train."""

    rec: Recipe
    dist: Dist
    student: nn.Module
    model: Trainable
    step: BatchStep
    stepper: Stepper
    plan: StepPlan
    checkpointer: Checkpointer
    vx: np.ndarray
    vy: np.ndarray
    seed: int
    epochs: int
    batch_size: int
    steps_per_epoch: int
    best: BestModel = field(default_factory=BestModel)
    history: list[dict[str, Any]] = field(default_factory=list)
    budget: "WallBudget | None" = None  # time_budget_s: the plan is refitted after every step
    val_kind: str = "labels"  # or "teacher-agreement" (held-out data without labels)
    epoch0: int = 0  # where a resumed run picks up
    step0: int = 0
    resumed_from: int | None = None

    def save_last(self, epoch: int, step_in_epoch: int) -> None:
        """last.pt positioned at (epoch, step_in_epoch): where a resume continues."""
        self.checkpointer.save_last(self.student, self.model, self.stepper.opt, self.stepper.sched, {
            "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": self.plan.step,
            "best_val_acc": self.best.acc, "best_epoch": self.best.epoch, "history": self.history})

    def resume_from(self, state: dict[str, Any]) -> None:
        p = Checkpointer.restore(state, self.model, self.stepper.opt, self.stepper.sched, set_rng=self.dist.main)
        self.epoch0, self.step0, self.plan.step = p["epoch"], p["step_in_epoch"], p["global_step"]
        best_loss = next((h.get("val_loss") for h in p["history"] if h.get("epoch") == p["best_epoch"]), None)
        self.best = BestModel(p["best_val_acc"], p["best_epoch"], float("inf") if best_loss is None else best_loss)
        self.history = list(p["history"])
        self.resumed_from = self.plan.step


def _run(teacher, student, data, rec, dist, *, epochs, max_steps, batch_size, seed, output_dir,
         resume, progress, unlabeled, cache, cache_max_bytes, device, time_budget_s=None) -> DistillResult:
    t_start = time.perf_counter()
    dist.check_batch(batch_size)
    dev = place_models(teacher, student, device, dist)
    x, y, pseudo_info = training_set(teacher, data, unlabeled, rec.pseudo_labels["threshold"])
    vx, vy, val_kind = validation_set(teacher, data)
    example = _check_models(teacher, student, x, y, dev)
    skipped: list[str] = []
    terms = build_terms(rec, student, teacher, example, skipped)
    if skipped and progress and dist.main:
        for note in skipped:
            print(f"distill: optional loss left out ({note})", file=sys.stderr, flush=True)
    aug = _augmenter(rec.train, x)
    tcache = _teacher_cache(cache, TeacherOutputs.keys_of(terms), x, teacher, rec.train, aug, cache_max_bytes)
    teacher_out = TeacherOutputs(teacher, terms, tcache, dev)
    run = _setup(teacher, student, rec, dist, dev, terms, teacher_out, aug, x, y, vx, vy, epochs=epochs,
                 max_steps=max_steps, batch_size=batch_size, seed=seed, output_dir=output_dir,
                 time_budget_s=time_budget_s)
    run.val_kind = val_kind
    state = run.checkpointer.resumable(resume)
    if state is not None:
        run.resume_from(state)
    teacher_acc = teacher_val_acc(teacher, vx, vy, dist, cache)
    train_seconds = _train(run, teacher_acc, progress and dist.main)
    teacher_out.close()
    if run.model.taps:
        run.model.taps.remove()
    run.best.restore(student, run.checkpointer.best_student)
    cache_stats = tcache.stats() if tcache is not None else {"enabled": False, "reason": _no_cache_reason(cache, rec)}
    metrics = {
        "recipe": rec.name, "epochs": run.history, "best_val_acc": run.best.acc, "best_epoch": run.best.epoch,
        "teacher_val_acc": teacher_acc, "val_metric": val_kind, "steps": run.plan.step,
        "total_steps": run.plan.total, "seconds": round(time.perf_counter() - t_start, 3),
        "train_seconds": round(train_seconds, 3), "cache": cache_stats, "world_size": dist.world,
        "device": str(dev), "train_samples": len(x), "resumed_from_step": run.resumed_from,
        "views": aug.views, "augment": rec.train["augment"],
        **({"time_budget_s": time_budget_s, "planned_steps": run.plan.planned,
            "budget_used_s": round(time.perf_counter() - t_start, 3),
            "stopped": run.plan.stop_reason} if time_budget_s else {}),
        **({"skipped_losses": skipped} if skipped else {}),
        **({"pseudo_labels": pseudo_info} if pseudo_info else {}),
    }
    return DistillResult(student=student, metrics=metrics, best_checkpoint=run.checkpointer.path(ckpt.BEST),
                         last_checkpoint=run.checkpointer.path(ckpt.LAST), recipe=rec.to_dict())


def _no_cache_reason(cache, rec: Recipe) -> str:
    if cache is False:
        return "disabled by caller"
    if rec.train["mixup"] > 0:
        return "mixup: the teacher runs live on each mixed batch"
    return "no teacher outputs needed"


def _check_models(teacher: nn.Module, student: nn.Module, x: np.ndarray, y: np.ndarray, dev) -> torch.Tensor:
    """Both models run on the data and agree on the classes; returns the example batch the terms are built on."""
    example = torch.from_numpy(x[: min(2, len(x))]).to(dev)
    try:  # in eval mode: a train-mode forward would move BatchNorm statistics on these two samples
        with eval_mode(student), eval_mode(teacher):
            out = logits_of(student(example))
            tout = logits_of(teacher(example))
    except EdgeKDError:
        raise
    except Exception as exc:
        raise EdgeKDError(f"student or teacher cannot run on inputs of shape {tuple(example.shape[1:])}: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}") from None
    if out.shape[-1] != tout.shape[-1]:
        raise EdgeKDError(f"student predicts {out.shape[-1]} classes but the teacher {tout.shape[-1]}")
    if int(y.max()) >= out.shape[-1]:
        raise EdgeKDError(f"labels go up to {int(y.max())} but the student predicts {out.shape[-1]} classes")
    return example


def _augmenter(train_cfg: dict, x: np.ndarray) -> Augmenter:
    if train_cfg["augment"] != "none" and x.ndim != 4:
        raise EdgeKDError(f"augment '{train_cfg['augment']}' crops (and flips) images, but the data is "
                          f"{tuple(x.shape[1:])} per sample: use augment none")
    return Augmenter(train_cfg["augment"], len(x), train_cfg["views"], tuple(x.shape[-2:]))


def _teacher_cache(cache, keys: list[str], x: np.ndarray, teacher: nn.Module, train_cfg: dict, aug: Augmenter,
                   max_bytes: int) -> TeacherCache | None:
    """The caller's shared TeacherCache (checked against this data and teacher), a fresh one, or None."""
    if cache is False or not keys or train_cfg["mixup"] > 0:  # mixed inputs are new every step: nothing to reuse
        return None
    if isinstance(cache, TeacherCache):
        fp = f"{data_fingerprint(x)}:{param_fingerprint(teacher)}:{train_cfg['augment']}:{aug.views}"
        cache.bind(fp, len(x), aug.views)
        return cache
    return TeacherCache(len(x), aug.views, max_bytes)


def _setup(teacher, student, rec, dist, dev, terms: list[Term], teacher_out: TeacherOutputs, aug: Augmenter,
           x, y, vx, vy, *, epochs, max_steps, batch_size, seed, output_dir, time_budget_s=None) -> _Run:
    """Trainable (DDP-wrapped under torchrun), step plan, optimizer and checkpointer for one run."""
    model = Trainable(student, terms).to(dev)
    windowed = any(t.spec.start > 0 or t.spec.end < 1 or t.spec.warmup > 0 for t in terms)
    ddp_model = dist.wrap(model, dev, find_unused=windowed)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    plan = StepPlan(epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch))
    params = [p for p in model.parameters() if p.requires_grad]
    # under a time budget the plan shrinks mid-run: the schedule reads it every step and anneals to the new end
    opt, sched = build_optimizer(params, rec.train, (lambda: plan.total) if time_budget_s else plan.total)
    settings = {"recipe": rec.to_dict(), "epochs": epochs, "max_steps": max_steps, "batch": batch_size, "seed": seed,
                "n": len(x), "data": data_fingerprint(x), "teacher": param_fingerprint(teacher), "world": dist.world}
    checkpointer = Checkpointer(output_dir, settings, rec.name, writer=dist.main)
    torch.manual_seed(seed * 1000 + dist.rank)
    step = BatchStep(ddp_model, terms, teacher_out, aug, x, y, dist, dev, plan, mixup=rec.train["mixup"], seed=seed)
    return _Run(rec, dist, student, model, step, Stepper(opt, sched, params, rec.train["grad_clip"]), plan,
                checkpointer, vx, vy, seed, epochs, batch_size, steps_per_epoch,
                budget=WallBudget(time_budget_s) if time_budget_s else None)


def _train(run: _Run, teacher_acc: float, show_progress: bool) -> float:
    """The epochs from where the run stands to the end of the plan; returns the seconds they took."""
    bar = progress_bar(show_progress, run.plan.total, run.plan.step, f"distill[{run.rec.name}]")
    seconds, epoch = 0.0, run.epoch0
    while not run.plan.done and epoch < run.epochs:
        t_epoch = time.perf_counter()
        start = run.step0 if epoch == run.epoch0 else 0
        stats = _epoch(run, epoch, start, bar)
        step = start + stats.batches
        finished = step >= run.steps_per_epoch
        seconds += _end_epoch(run, epoch, stats, (epoch + 1, 0) if finished else (epoch, step), t_epoch)
        if bar is not None and (run.budget is None or run.budget.due(run.plan.done or not finished)):
            e = run.history[-1]
            budget = f"  {run.budget.line(run.plan)}" if run.budget else ""
            what = "val acc" if run.val_kind == "labels" else "val agreement"
            bar.write(f"epoch {epoch}: train loss {e['train_loss']:.4f}  {what} {e['val_acc']:.4f}  "
                      f"(teacher {teacher_acc:.4f}){budget}", file=sys.stderr)
        if not finished:
            break
        epoch += 1
    if bar is not None:
        bar.close()
    return seconds


def _epoch(run: _Run, epoch: int, start: int, bar) -> EpochStats:
    """Steps `start`.. of `epoch` (a permutation fixed by seed and epoch), with last.pt every checkpoint_every."""
    order = np.random.default_rng([run.seed, epoch]).permutation(len(run.step.x))
    run.step.start_epoch(run.seed, epoch)
    run.model.train()
    if run.rec.train.get("freeze_bn"):  # running statistics stay the pretrained ones; scale and shift still learn
        for m in run.student.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    every = int(run.rec.train["checkpoint_every"])

    def on_step(loss: float, stats: EpochStats) -> None:
        if bar is not None:
            bar.total = run.plan.total  # a time budget refits the plan
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", epoch=epoch, refresh=False)
        step = start + stats.batches
        if run.plan.done or not every or run.plan.step % every or step >= run.steps_per_epoch:
            return
        if run.checkpointer.enabled:
            run.save_last(epoch, step)
            run.dist.barrier()

    batches = epoch_batches(order, run.batch_size, start, run.steps_per_epoch)
    return run_epoch(batches, run.step, run.stepper, run.plan, budget=run.budget, on_step=on_step)


def _end_epoch(run: _Run, epoch: int, stats: EpochStats, resume_at: tuple[int, int], t_epoch: float) -> float:
    """Reduce the train loss over ranks, score held-out data, write best.pt (if better) and last.pt."""
    keys = sorted(stats.parts)
    sums = run.dist.sum(stats.loss_sum, stats.weight, *[stats.parts[k] for k in keys])
    run.dist.sync_buffers(run.student)
    val_acc, val_loss = evaluate(run.student, run.vx, run.vy, run.dist)
    seconds = time.perf_counter() - t_epoch
    run.history.append({"epoch": epoch, "steps": run.plan.step, "train_loss": sums[0] / max(1.0, sums[1]),
                        "parts": {k: s / max(1.0, sums[1]) for k, s in zip(keys, sums[2:])},
                        "val_acc": val_acc, "val_loss": val_loss, "seconds": round(time.perf_counter() - t_epoch, 3)})
    if run.best.offer(run.student, val_acc, epoch, val_loss):
        run.checkpointer.save_best(run.student, val_acc, epoch, run.plan.step)
    run.save_last(*resume_at)
    run.dist.barrier()
    return seconds
