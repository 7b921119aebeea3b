"""One epoch of training, shared by the image engine (edgekd.distill.engine) and the text path (edgekd.hf.train).

The caller supplies the epoch's batches and a step function (batch -> loss, loss parts, sample weight); the
loop owns the optimizer and scheduler steps, the step plan (which a time budget may shorten), the loss
bookkeeping and a per-step callback (progress, periodic checkpoints or evaluations).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from edgekd.errors import EdgeKDError

CLOCKS = ("wall", "cpu")


@dataclass
class StepPlan:
    """How many optimizer steps the run takes, and how many it has taken (over all epochs)."""

    planned: int  # what the epochs (or max_steps) ask for
    total: int = -1  # what this run will take: a time budget may lower it; -1 means `planned`
    step: int = 0

    def __post_init__(self):
        if self.total < 0:
            self.total = self.planned

    @property
    def done(self) -> bool:
        return self.step >= self.total

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.total)

    @property
    def stop_reason(self) -> str:
        return "time budget" if self.total < self.planned else "epochs done"


@dataclass
class EpochStats:
    """Sample-weighted sums of the loss and its parts over the steps of one epoch."""

    batches: int = 0
    loss_sum: float = 0.0
    weight: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)

    def add(self, loss: float, parts: dict[str, Any], weight: float) -> None:
        self.batches += 1
        self.loss_sum += loss * weight
        self.weight += weight
        for k, v in parts.items():
            self.parts[k] = self.parts.get(k, 0.0) + float(v) * weight


class Stepper:
    """Backward pass, gradient clipping and optimizer step; the scheduler steps separately, after a time
    budget has had the chance to refit the plan (so the next step's LR already follows the new plan)."""

    def __init__(self, opt, sched, params: list, clip: float = 0.0):
        self.opt, self.sched, self.params, self.clip = opt, sched, params, clip
        self.last_lr = 0.0

    def update(self, loss) -> None:
        import torch

        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.last_lr = self.opt.param_groups[0]["lr"]
        self.opt.step()

    def advance(self) -> None:
        self.sched.step()


class Clock:
    """Training time on the wall clock or in process CPU time (the same budget on a busy or idle machine);
    time spent inside `paused()` (held-out scoring) is not counted."""

    def __init__(self, kind: str = "wall"):
        if kind not in CLOCKS:
            raise EdgeKDError(f"budget_clock {kind!r}: want 'wall' or 'cpu'")
        self.kind = kind
        self._now = time.process_time if kind == "cpu" else time.perf_counter
        self._t0 = self._now()

    def elapsed(self) -> float:
        return self._now() - self._t0

    @contextmanager
    def paused(self):
        t = self._now()
        try:
            yield
        finally:
            self._t0 += self._now() - t


class TimeBudget:
    """Fits the step plan to `seconds` of training, measured over the first `probe` steps of each epoch
    (refitted every epoch: later ones can be cheaper, e.g. once teacher outputs are cached)."""

    def __init__(self, seconds: float, clock: Clock, probe: int = 10):
        self.seconds, self.clock, self.probe = seconds, clock, probe
        self._epoch_start = 0.0

    def start_epoch(self) -> None:
        self._epoch_start = self.clock.elapsed()

    def refit(self, plan: StepPlan, batches_this_epoch: int) -> None:
        if batches_this_epoch != self.probe:
            return
        elapsed = self.clock.elapsed()
        rate = (elapsed - self._epoch_start) / batches_this_epoch
        fit = plan.step + int((self.seconds - elapsed) / rate)
        plan.total = max(plan.step + 1, min(plan.planned, fit))


class WallBudget:
    """Fits the step plan to `seconds` of wall time from its creation, refitted after every step from the mean
    time per step so far (held-out scoring between epochs and the teacher's first passes included, so the
    estimate errs long while the teacher cache fills and the run ends at or before the budget). For the image
    engine, whose epochs on a few dozen images are a step or two long: TimeBudget probes inside an epoch."""

    def __init__(self, seconds: float, min_steps: int = 1):
        self.seconds, self.min_steps = float(seconds), min_steps
        self.clock = Clock("wall")
        self._steps0: int | None = None

    def start_epoch(self) -> None:
        pass

    def refit(self, plan: StepPlan, batches_this_epoch: int) -> None:
        if self._steps0 is None:  # a resumed run: count only this run's steps
            self._steps0 = plan.step - 1
        done = plan.step - self._steps0
        elapsed = self.clock.elapsed()
        rate = elapsed / max(1, done)
        fit = plan.step + int((self.seconds - elapsed) / rate)
        plan.total = max(plan.step + (0 if done >= self.min_steps else 1), min(plan.planned, fit))

    def due(self, last: bool, every_s: float = 30.0) -> bool:
        """Whether a progress line is due: every `every_s` seconds (epochs of a few images take seconds), and
        at the end."""
        now = self.clock.elapsed()
        if last or now - getattr(self, "_said", -every_s) >= every_s:
            self._said = now
            return True
        return False

    def line(self, plan: StepPlan) -> str:
        """A progress line's budget part."""
        return (f"[{self.clock.elapsed():.0f} / {self.seconds:.0f} s budget, step {plan.step}/{plan.total}"
                f"{' (fitted to the budget)' if plan.total < plan.planned else ''}]")


def run_epoch(batches: Iterable, step_fn: Callable, stepper: Stepper, plan: StepPlan, *, budget: TimeBudget | None = None,
              on_step: Callable[[float, EpochStats], None] | None = None) -> EpochStats:
    """Train on `batches` until they run out or the plan is done. `step_fn(batch)` returns (loss tensor,
    {part name: value}, sample weight); `on_step(loss, stats)` runs after every step."""
    stats = EpochStats()
    for batch in batches:
        loss, parts, weight = step_fn(batch)
        stepper.update(loss)
        plan.step += 1
        value = float(loss.detach())
        stats.add(value, parts, weight)
        if budget is not None:
            budget.refit(plan, stats.batches)
        stepper.advance()
        if on_step is not None:
            on_step(value, stats)
        if plan.done:
            break
    return stats


def progress_bar(enabled: bool, total: int, initial: int, desc: str):
    """A tqdm bar over the run's steps, or None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", leave=False, mininterval=0.5)
