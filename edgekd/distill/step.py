"""One training step of the image / feature-vector engine: the student and its loss terms as one module
(so DDP syncs every trained parameter), and the teacher's outputs, from the TeacherCache or run live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from edgekd.distill.cache import Augmenter, TeacherCache
from edgekd.distill.hooks import FeatureTaps
from edgekd.distill.terms import Term, teacher_reducers
from edgekd.distill.trainer.ddp import Dist
from edgekd.distill.trainer.loop import StepPlan
from edgekd.core.outputs import logits_of


class Trainable(nn.Module):
    """Student + loss modules (regressors) in one module, so DDP syncs all trained parameters."""

    def __init__(self, student: nn.Module, terms: list[Term]):
        super().__init__()
        self.student = student
        self.terms = nn.ModuleList(terms)
        taps = [t for term in terms for t in term.s_taps]
        self.taps = FeatureTaps(student, taps, "student") if taps else None

    def forward(self, x, t_out, y, factors: list[float], mix: tuple[torch.Tensor, float] | None = None):
        """mix = (labels of the partner samples, lambda): x is lambda * x + (1 - lambda) * x[perm], so a term
        that reads labels is lambda * term(y) + (1 - lambda) * term(y_partner) (mixup's loss, Zhang et al. 2018);
        terms that only compare with the teacher read the teacher's outputs on the same mixed x."""
        if self.taps:
            self.taps.clear()
        s = {"logits": logits_of(self.student(x))}
        if self.taps:
            s.update(self.taps.out)
        parts = {}
        total = s["logits"].new_zeros(())
        for term, factor in zip(self.terms, factors):
            if factor == 0 or term.spec.weight == 0:
                continue
            v = term(s, t_out, y)
            if mix is not None and term.reads_labels:
                v = mix[1] * v + (1.0 - mix[1]) * term(s, t_out, mix[0])
            parts[term.spec.name] = v.detach()
            total = total + term.spec.weight * factor * v
        return total, parts, s["logits"]


class TeacherOutputs:
    """The teacher keys the terms read ("logits", taps, reduced taps) for a batch, cached or live."""

    def __init__(self, teacher: nn.Module, terms: list[Term], cache: TeacherCache | None, dev: torch.device):
        self.keys = self.keys_of(terms)
        self.cache, self.dev = cache, dev
        reducers = teacher_reducers(terms)
        taps = sorted({k.split("|")[0] for k in self.keys if k != "logits"})
        self.hooks = FeatureTaps(teacher, taps, "teacher") if taps else None

        @torch.no_grad()
        def run(x: torch.Tensor) -> dict[str, torch.Tensor]:
            if self.hooks:
                self.hooks.clear()
            out = {"logits": logits_of(teacher(x)).float()}
            for k in self.keys:
                if k != "logits":
                    out[k] = reducers[k](self.hooks.out[k.split("|")[0]]).float().contiguous()
            return out

        self.run = run

    @staticmethod
    def keys_of(terms: list[Term]) -> list[str]:
        return list(dict.fromkeys(k for t in terms for k in t.t_keys))

    def __call__(self, xb: torch.Tensor, local: np.ndarray, views: np.ndarray) -> dict[str, torch.Tensor]:
        def compute(pos, _xb=xb):
            return self.run(_xb[torch.from_numpy(np.asarray(pos)).to(self.dev)])

        if self.cache is None:
            return compute(np.arange(len(local)))
        cached = self.cache.get(self.keys, local, views, compute)
        return {k: v.to(self.dev, non_blocking=True) for k, v in cached.items()}

    def live(self, xb: torch.Tensor) -> dict[str, torch.Tensor]:
        """The teacher on inputs no cache holds (a mixup batch)."""
        return self.run(xb)

    def close(self) -> None:
        if self.hooks:
            self.hooks.remove()


@dataclass
class BatchStep:
    """A global batch of sample indices -> (loss, loss parts, samples on this rank), for trainer.loop."""

    model: nn.Module  # the Trainable, DDP-wrapped under torchrun
    terms: list[Term]
    teacher: TeacherOutputs
    aug: Augmenter
    x: np.ndarray
    y: np.ndarray
    dist: Dist
    dev: torch.device
    plan: StepPlan
    views: np.ndarray | None = None  # which augmented view each sample shows this epoch
    mixup: float = 0.0  # Beta(a, a) concentration; 0 = no mixup
    seed: int = 0

    def start_epoch(self, seed: int, epoch: int) -> None:
        self.views = self.aug.epoch_views(seed, epoch)

    def __call__(self, batch: np.ndarray) -> tuple[torch.Tensor, dict[str, Any], int]:
        local = self.dist.local_rows(batch)
        xb = self.aug.apply(torch.from_numpy(self.x[local]), local, self.views[local]).to(self.dev, non_blocking=True)
        yb = torch.from_numpy(self.y[local]).to(self.dev, non_blocking=True)
        xb, mix = self.mix(xb, yb)
        factors = [t.spec.factor(self.plan.fraction) for t in self.terms]
        needed = any(f > 0 and t.t_keys for t, f in zip(self.terms, factors))
        t_out = {} if not needed else self.teacher.live(xb) if mix else self.teacher(xb, local, self.views[local])
        loss, parts, _ = self.model(xb, t_out, yb, factors, mix)
        return loss, parts, len(local)

    def mix(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, tuple | None]:
        """Input mixup with one lambda per batch, drawn from (seed, step) so a resumed run mixes the same way."""
        if self.mixup <= 0 or len(xb) < 2:
            return xb, None
        rng = np.random.default_rng([self.seed, self.plan.step, 17])
        lam = float(rng.beta(self.mixup, self.mixup))
        perm = torch.from_numpy(rng.permutation(len(xb))).to(xb.device)
        return lam * xb + (1.0 - lam) * xb[perm], (yb[perm], lam)


def epoch_batches(order: np.ndarray, batch_size: int, start: int, steps: int) -> Iterator[np.ndarray]:
    """The epoch's global batches from step `start` on (a resumed run continues mid-epoch).

    A last batch of one sample (N = k * batch_size + 1) also takes the epoch's first sample: batch norm cannot
    train on a single value per channel, and the run crashed at the end of the epoch."""
    for s in range(start, steps):
        batch = order[s * batch_size: (s + 1) * batch_size]
        yield np.concatenate([batch, order[:1]]) if len(batch) == 1 and len(order) > 1 else batch
