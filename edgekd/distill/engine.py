"""The distillation training loop: cached teacher, checkpoints + resume, held-out eval, torchrun DDP.

Data order is a pure function of (seed, epoch): a checkpoint stores (epoch, step in epoch) and a
resumed run replays the same permutation from that position. Under torchrun every global batch of
`batch_size` indices is split evenly across ranks (rank r takes rows r, r+W, ...), DDP averages the
gradients, so one step equals the one-process step on the same global batch (models without
BatchNorm match to float tolerance; BatchNorm statistics are per rank). Only rank 0 writes.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.core.manifest import fingerprint
from edgekd.data.bundle import ArrayDataset, DataBundle
from edgekd.distill import checkpoint as ckpt
from edgekd.distill.cache import Augmenter, TeacherCache
from edgekd.distill.hooks import FeatureTaps
from edgekd.distill.pseudo import pseudo_label
from edgekd.distill.recipe import Recipe, load_recipe
from edgekd.distill.terms import Term, build_terms, teacher_reducers
from edgekd.errors import EdgeKDError
from edgekd.models.outputs import logits_of as _logits


@dataclass
class DistillResult:
    student: nn.Module  # best weights (by held-out accuracy), eval mode
    metrics: dict[str, Any]
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    recipe: dict[str, Any] = field(default_factory=dict)


class _Dist:
    """torchrun environment (WORLD_SIZE/RANK): gloo on CPU, nccl on GPU."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.owns_group = False
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
                self.owns_group = True
            self.world, self.rank = dist.get_world_size(), dist.get_rank()

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, *values: float) -> list[float]:
        if self.world == 1:
            return list(values)
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def sync_buffers(self, module: nn.Module):
        """BatchNorm running stats drift apart per rank; rank 0's are the ones saved and evaluated."""
        if self.world > 1:
            import torch.distributed as dist

            for b in module.buffers():
                dist.broadcast(b.data, src=0)

    def barrier(self):
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self):
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


class _Trainable(nn.Module):
    """Student + loss modules (regressors) in one module, so DDP syncs all trained parameters."""

    def __init__(self, student: nn.Module, terms: list[Term]):
        super().__init__()
        self.student = student
        self.terms = nn.ModuleList(terms)
        taps = [t for term in terms for t in term.s_taps]
        self.taps = FeatureTaps(student, taps, "student") if taps else None

    def forward(self, x, t_out, y, factors: list[float]):
        if self.taps:
            self.taps.clear()
        s = {"logits": _logits(self.student(x))}
        if self.taps:
            s.update(self.taps.out)
        parts = {}
        total = s["logits"].new_zeros(())
        for term, factor in zip(self.terms, factors):
            if factor == 0 or term.spec.weight == 0:
                continue
            v = term(s, t_out, y)
            parts[term.spec.name] = v.detach()
            total = total + term.spec.weight * factor * v
        return total, parts, s["logits"]


def _teacher_fn(teacher: nn.Module, keys: list[str], reducers):
    taps = sorted({k.split("|")[0] for k in keys if k != "logits"})
    hooks = FeatureTaps(teacher, taps, "teacher") if taps else None

    @torch.no_grad()
    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:
        if hooks:
            hooks.clear()
        out = {"logits": _logits(teacher(x)).float()}
        for k in keys:
            if k != "logits":
                out[k] = reducers[k](hooks.out[k.split("|")[0]]).float().contiguous()
        return out

    return run, hooks


def _check_inputs(teacher, student, data, epochs, max_steps, batch_size, output_dir, resume):
    if not isinstance(teacher, nn.Module) or not isinstance(student, nn.Module):
        raise EdgeKDError("distill needs the teacher and student as torch.nn.Module objects")
    if not isinstance(data, DataBundle):
        raise EdgeKDError("distill needs a DataBundle (edgekd.data.load_data)")
    if len(data.train) == 0:
        raise EdgeKDError(f"dataset {data.name} has no training samples")
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


def _data_fingerprint(x: np.ndarray) -> str:
    step = max(1, len(x) // 512)
    return hashlib.sha256(np.ascontiguousarray(x[::step]).tobytes() + str(x.shape).encode()).hexdigest()[:16]


def _param_fingerprint(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().flatten()[:64].numpy().tobytes())
        h.update(str(float(v.detach().float().sum())).encode())
    return h.hexdigest()[:16]


def _device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def _evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, dist: _Dist, batch: int = 512) -> tuple[float, float]:
    """(accuracy, mean CE) over x, sharded across ranks and summed, so every rank gets the full figure."""
    was = model.training
    model.eval()
    dev = _device_of(model)
    correct = loss = 0.0
    shard = np.arange(dist.rank, len(x), dist.world)
    for i in range(0, len(shard), batch):
        rows = shard[i: i + batch]
        logits = _logits(model(torch.from_numpy(x[rows]).to(dev))).float().cpu()
        target = torch.from_numpy(y[rows])
        correct += float((logits.argmax(-1) == target).sum())
        loss += float(F.cross_entropy(logits, target, reduction="sum"))
    model.train(was)
    correct, loss = dist.sum(correct, loss)
    return correct / len(x), loss / len(x)


def _teacher_val_acc(teacher, vx, vy, dist, cache) -> float:
    """The teacher's val accuracy, remembered on a shared TeacherCache: runs that share one (the auto probe's
    trials, a benchmark's methods) have the same teacher and data, and a large teacher's pass is not free."""
    memo = getattr(cache, "teacher_val", None) if isinstance(cache, TeacherCache) else None
    key = (_param_fingerprint(teacher), len(vx))
    if memo is not None and memo[0] == key:
        return memo[1]
    acc, _ = _evaluate(teacher, vx, vy, dist)
    if isinstance(cache, TeacherCache):
        cache.teacher_val = (key, acc)
    return acc


def _teacher_labels(teacher: nn.Module, x: np.ndarray, batch: int = 512) -> np.ndarray:
    with torch.no_grad():
        dev = _device_of(teacher)
        return np.concatenate([_logits(teacher(torch.from_numpy(x[i:i + batch]).to(dev))).argmax(-1).cpu().numpy()
                               for i in range(0, len(x), batch)]).astype(np.int64)


def _optimizer(params, train: dict, total_steps: int):
    if train["optimizer"] == "sgd":
        opt = torch.optim.SGD(params, lr=train["lr"], momentum=train["momentum"], weight_decay=train["weight_decay"],
                              nesterov=True)
    else:
        opt = torch.optim.AdamW(params, lr=train["lr"], weight_decay=train["weight_decay"])
    warm = max(1, int(train["warmup"] * total_steps))
    if train["scheduler"] == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=train["lr"], total_steps=max(total_steps, 2),
                                                    pct_start=min(max(train["warmup"], 0.01), 0.99))
    elif train["scheduler"] == "cosine":
        def f(step):
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    return opt, sched


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
) -> DistillResult:
    """Distill `teacher` into `student` (modified in place) on `data.train`; select by `data.val`.

    recipe: built-in name, .toml path, dict or Recipe, or "auto" (a short probe of built-in recipes picks one;
    edgekd.distill.auto); overrides: dotted recipe keys ("kd.temperature").
    resume: True = continue from output_dir/last.pt (refused if it came from other settings);
    "auto" = continue when last.pt matches these settings, else start over (what compress uses).
    unlabeled: extra images the teacher labels (kept above pseudo_labels.threshold confidence).
    cache: None/True = in-memory teacher cache, False = run the teacher every step, or a TeacherCache
    shared between runs on the same data and teacher (benchmarks).
    Under torchrun, batch_size is the global batch (split across ranks).
    device: where to train (default: cuda:LOCAL_RANK under torchrun with GPUs, else the student's device).
    """
    _check_inputs(teacher, student, data, epochs, max_steps, batch_size, output_dir, resume)
    ov = dict(overrides or {})
    if lr is not None:
        ov["train.lr"] = lr
    if checkpoint_every is not None:
        ov["train.checkpoint_every"] = checkpoint_every
    if isinstance(recipe, str) and recipe == "auto":  # probe the candidates, then train the winner
        from edgekd.distill.auto import distill_auto

        return distill_auto(teacher, student, data, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                            seed=seed, overrides=ov, output_dir=output_dir, resume=resume, progress=progress,
                            device=device, unlabeled=unlabeled, cache=cache, cache_max_bytes=cache_max_bytes)
    rec = load_recipe(recipe, ov)
    train_cfg = rec.train
    dist = _Dist()
    try:
        return _run(teacher, student, data, rec, train_cfg, dist, epochs=epochs, max_steps=max_steps,
                    batch_size=batch_size, seed=seed, output_dir=output_dir, resume=resume, progress=progress,
                    unlabeled=unlabeled, cache=cache, cache_max_bytes=cache_max_bytes, device=device)
    finally:
        dist.close()


def _run(teacher, student, data, rec, train_cfg, dist, *, epochs, max_steps, batch_size, seed, output_dir,
         resume, progress, unlabeled, cache, cache_max_bytes, device) -> DistillResult:
    t_start = time.perf_counter()
    if batch_size % dist.world:
        raise EdgeKDError(f"batch_size {batch_size} must be divisible by the number of processes {dist.world}")
    if device is None:
        if dist.world > 1 and torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        else:
            device = _device_of(student)
    try:
        dev = torch.device(device)
        student.to(dev)
        teacher.to(dev)
    except (RuntimeError, AssertionError) as exc:
        raise EdgeKDError(f"cannot use device '{device}': {str(exc).splitlines()[0][:160]}") from None
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    # Training set: labeled train (+ teacher-labeled extra images). Missing labels come from the teacher.
    x, y = data.train.x, data.train.y
    pseudo_info: dict[str, Any] = {}
    if y is None:
        y, kept, info = pseudo_label(teacher, x, rec.pseudo_labels["threshold"])
        x = x[kept]
        pseudo_info["train"] = info
    if unlabeled is not None:
        ux = unlabeled.x if isinstance(unlabeled, ArrayDataset) else np.asarray(unlabeled, dtype=np.float32)
        if ux.ndim != 4 or tuple(ux.shape[1:]) != tuple(x.shape[1:]):
            raise EdgeKDError(f"unlabeled images have shape {tuple(ux.shape[1:])}; expected {tuple(x.shape[1:])}")
        uy, kept, info = pseudo_label(teacher, ux, rec.pseudo_labels["threshold"])
        x, y = np.concatenate([x, ux[kept]]), np.concatenate([y, uy])
        pseudo_info["unlabeled"] = info
    if len(x) == 0:
        raise EdgeKDError("no training samples left after pseudo-label filtering; lower pseudo_labels.threshold")
    y = np.asarray(y, dtype=np.int64)
    vx = data.val.x if len(data.val) else data.test.x
    vy = (data.val.y if len(data.val) else data.test.y)
    val_kind = "labels"
    if vy is None:
        vy, val_kind = _teacher_labels(teacher, vx), "teacher-agreement"

    example = torch.from_numpy(x[: min(2, len(x))]).to(dev)
    try:
        with torch.no_grad():
            out = _logits(student(example))
            tout = _logits(teacher(example))
    except EdgeKDError:
        raise
    except Exception as exc:
        raise EdgeKDError(f"student or teacher cannot run on inputs of shape {tuple(example.shape[1:])}: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}") from None
    if out.shape[-1] != tout.shape[-1]:
        raise EdgeKDError(f"student predicts {out.shape[-1]} classes but the teacher {tout.shape[-1]}")
    if int(y.max()) >= out.shape[-1]:
        raise EdgeKDError(f"labels go up to {int(y.max())} but the student predicts {out.shape[-1]} classes")

    skipped: list[str] = []
    terms = build_terms(rec, student, teacher, example, skipped)
    if skipped and progress and dist.main:
        for note in skipped:
            print(f"distill: optional loss left out ({note})", file=sys.stderr, flush=True)
    t_keys = list(dict.fromkeys(k for t in terms for k in t.t_keys))
    reducers = teacher_reducers(terms)
    teacher_run, t_hooks = _teacher_fn(teacher, t_keys, reducers)

    n = len(x)
    if train_cfg["augment"] != "none" and x.ndim != 4:
        raise EdgeKDError(f"augment '{train_cfg['augment']}' crops (and flips) images, but the data is "
                          f"{tuple(x.shape[1:])} per sample: use augment none")
    aug = Augmenter(train_cfg["augment"], n, train_cfg["views"], tuple(x.shape[-2:]))
    if cache is False or not t_keys:
        tcache = None
    elif isinstance(cache, TeacherCache):
        tcache = cache
        fp = f"{_data_fingerprint(x)}:{_param_fingerprint(teacher)}:{train_cfg['augment']}:{aug.views}"
        if tcache.fingerprint not in (None, fp) or tcache.n != n or tcache.views != aug.views:
            raise EdgeKDError("the shared teacher cache was built for other data, teacher or augmentation")
        tcache.fingerprint = fp
    else:
        tcache = TeacherCache(n, aug.views, cache_max_bytes)

    model = _Trainable(student, terms).to(dev)
    windowed = any(t.spec.start > 0 or t.spec.end < 1 or t.spec.warmup > 0 for t in terms)
    ddp_model = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_model = DDP(model, device_ids=[dev] if dev.type == "cuda" else None, find_unused_parameters=windowed)

    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched = _optimizer(params, train_cfg, total_steps)

    out_dir = Path(output_dir) if output_dir is not None else None
    if out_dir is not None and dist.main:
        from edgekd.core import ensure_output_dir

        ensure_output_dir(out_dir)
    run_key = fingerprint({"recipe": rec.to_dict(), "epochs": epochs, "max_steps": max_steps, "batch": batch_size,
                           "seed": seed, "n": n, "data": _data_fingerprint(x), "teacher": _param_fingerprint(teacher),
                           "world": dist.world})

    epoch0 = step0 = global_step = 0
    best_acc, best_epoch, history = -1.0, -1, []
    best_state: dict[str, torch.Tensor] | None = None
    resumed_from = None
    torch.manual_seed(seed * 1000 + dist.rank)
    state = None
    if resume and out_dir is not None and (out_dir / ckpt.LAST).is_file():
        state = ckpt.load(out_dir / ckpt.LAST)
        if state.get("run_key") != run_key:
            if resume != "auto":
                raise EdgeKDError(f"{out_dir / ckpt.LAST} was written by a run with other settings "
                                  "(recipe, epochs, batch size, seed or data); use a fresh --output or drop --resume")
            state = None  # "auto" (compress reruns): other settings, so start over
    if state is not None:
        model.load_state_dict(state["trainable"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        epoch0, step0, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        best_acc, best_epoch, history = state["best_val_acc"], state["best_epoch"], list(state["history"])
        if dist.main:
            ckpt.set_rng_state(state["rng"])
        resumed_from = global_step

    def save_state(path: Path, epoch: int, step_in_epoch: int):
        ckpt.save(path, {
            "student": student.state_dict(), "trainable": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "rng": ckpt.rng_state(), "epoch": epoch, "step_in_epoch": step_in_epoch,
            "global_step": global_step, "best_val_acc": best_acc, "best_epoch": best_epoch, "history": history,
            "run_key": run_key, "recipe": rec.name,
        })

    teacher_acc = _teacher_val_acc(teacher, vx, vy, dist, cache)
    every = int(train_cfg["checkpoint_every"])
    bar = None
    if progress and dist.main:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=global_step, desc=f"distill[{rec.name}]", unit="step", leave=False,
                   mininterval=0.5)
    seconds_train = 0.0
    done = global_step >= total_steps
    epoch = epoch0
    while not done and epoch < epochs:
        t_epoch = time.perf_counter()
        order = np.random.default_rng([seed, epoch]).permutation(n)
        views = aug.epoch_views(seed, epoch)
        loss_sum = count = 0.0
        part_sums: dict[str, float] = {}
        model.train()
        step = step0 if epoch == epoch0 else 0
        while step < steps_per_epoch:
            batch = order[step * batch_size: (step + 1) * batch_size]
            batch = batch[: len(batch) - len(batch) % dist.world] if len(batch) >= dist.world else batch
            local = batch[dist.rank:: dist.world]
            xb = aug.apply(torch.from_numpy(x[local]), local, views[local]).to(dev, non_blocking=True)
            yb = torch.from_numpy(y[local]).to(dev, non_blocking=True)
            progress_frac = global_step / max(1, total_steps)
            factors = [t.spec.factor(progress_frac) for t in terms]
            needed = sorted({k for t, f in zip(terms, factors) if f > 0 for k in t.t_keys})
            if needed:
                def compute(pos, _xb=xb):
                    return teacher_run(_xb[torch.from_numpy(np.asarray(pos)).to(dev)])
                if tcache is not None:
                    t_out = {k: v.to(dev, non_blocking=True) for k, v in
                             tcache.get(t_keys, local, views[local], compute).items()}
                else:
                    t_out = compute(np.arange(len(local)))
            else:
                t_out = {}
            loss, parts, _ = ddp_model(xb, t_out, yb, factors)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if train_cfg["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(params, train_cfg["grad_clip"])
            opt.step()
            sched.step()
            global_step += 1
            step += 1
            loss_sum += float(loss.detach()) * len(local)
            count += len(local)
            for k, v in parts.items():
                part_sums[k] = part_sums.get(k, 0.0) + float(v) * len(local)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}", epoch=epoch, refresh=False)
            if global_step >= total_steps:
                done = True
                break
            if every and global_step % every == 0 and step < steps_per_epoch and out_dir is not None:
                if dist.main:
                    save_state(out_dir / ckpt.LAST, epoch, step)
                dist.barrier()
        # End of epoch (or of training): reduce train loss, held-out eval, best + last checkpoints.
        keys = sorted(part_sums)
        sums = dist.sum(loss_sum, count, *[part_sums[k] for k in keys])
        dist.sync_buffers(student)
        val_acc, val_loss = _evaluate(student, vx, vy, dist)
        seconds_train += time.perf_counter() - t_epoch
        entry = {"epoch": epoch, "steps": global_step, "train_loss": sums[0] / max(1.0, sums[1]),
                 "parts": {k: s / max(1.0, sums[1]) for k, s in zip(keys, sums[2:])},
                 "val_acc": val_acc, "val_loss": val_loss, "seconds": round(time.perf_counter() - t_epoch, 3)}
        history.append(entry)
        finished_epoch = step >= steps_per_epoch
        next_epoch, next_step = (epoch + 1, 0) if finished_epoch else (epoch, step)
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            if out_dir is not None and dist.main:
                ckpt.save(out_dir / ckpt.BEST, {"student": student.state_dict(), "val_acc": val_acc, "epoch": epoch,
                                                "global_step": global_step, "recipe": rec.name})
            best_state = {k: v.detach().clone() for k, v in student.state_dict().items()}
        if out_dir is not None and dist.main:
            save_state(out_dir / ckpt.LAST, next_epoch, next_step)
        dist.barrier()
        if bar is not None:
            bar.write(f"epoch {epoch}: train loss {entry['train_loss']:.4f}  val acc {val_acc:.4f}  "
                      f"(teacher {teacher_acc:.4f})", file=sys.stderr)
        epoch = next_epoch
        if not finished_epoch:
            break
    if bar is not None:
        bar.close()
    if t_hooks:
        t_hooks.remove()
    if model.taps:
        model.taps.remove()

    # Return the best student (by held-out accuracy); on a resumed run that was already complete,
    # or when the best epoch came before the resume, take it from best.pt.
    if best_state is not None:
        student.load_state_dict(best_state)
    elif out_dir is not None and (out_dir / ckpt.BEST).is_file():
        student.load_state_dict(ckpt.load(out_dir / ckpt.BEST)["student"])
    student.eval()
    cache_stats = tcache.stats() if tcache is not None else {"enabled": False, "reason": "disabled by caller"
                                                            if cache is False else "no teacher outputs needed"}
    metrics = {
        "recipe": rec.name,
        "epochs": history,
        "best_val_acc": best_acc,
        "best_epoch": best_epoch,
        "teacher_val_acc": teacher_acc,
        "val_metric": val_kind,
        "steps": global_step,
        "total_steps": total_steps,
        "seconds": round(time.perf_counter() - t_start, 3),
        "train_seconds": round(seconds_train, 3),
        "cache": cache_stats,
        "world_size": dist.world,
        "device": str(dev),
        "train_samples": n,
        "resumed_from_step": resumed_from,
        **({"skipped_losses": skipped} if skipped else {}),
        **({"pseudo_labels": pseudo_info} if pseudo_info else {}),
    }
    return DistillResult(
        student=student, metrics=metrics,
        best_checkpoint=(out_dir / ckpt.BEST) if out_dir is not None and (out_dir / ckpt.BEST).exists() else None,
        last_checkpoint=(out_dir / ckpt.LAST) if out_dir is not None and (out_dir / ckpt.LAST).exists() else None,
        recipe=rec.to_dict(),
    )
