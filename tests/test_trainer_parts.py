"""The trainer parts on their own (edgekd/distill/trainer/): checkpointer round trip and settings check, the
epoch loop on a tiny model, the time budget's stop, the LR schedules, the DDP helpers in one process."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill.trainer.checkpointer import Checkpointer
from edgekd.distill.trainer.ddp import Dist
from edgekd.distill.trainer.evaluation import BestModel, eval_mode
from edgekd.distill.trainer.loop import Clock, StepPlan, Stepper, TimeBudget, run_epoch
from edgekd.distill.trainer.schedule import build_optimizer, warmup_decay
from edgekd.errors import EdgeKDError

TRAIN = {"optimizer": "adamw", "lr": 0.3, "weight_decay": 0.0, "momentum": 0.9, "scheduler": "cosine", "warmup": 0.1}


def _regression(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5, 3.0])


def _tiny(total: int):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    params = list(model.parameters())
    opt, sched = build_optimizer(params, TRAIN, total)
    return model, Stepper(opt, sched, params, clip=1.0)


def test_epoch_loop_trains_and_stops_at_the_plan():
    x, y = _regression()
    model, stepper = _tiny(total=40)
    plan = StepPlan(40)
    batches = [np.arange(i, i + 8) for i in range(0, 64, 8)]  # 8 steps an epoch

    def step(rows):
        return nn.functional.mse_loss(model(x[rows]).squeeze(-1), y[rows]), {"mse": 0.0}, len(rows)

    seen = []
    losses = []
    for _ in range(6):
        stats = run_epoch(batches, step, stepper, plan, on_step=lambda loss, s: seen.append(plan.step))
        losses.append(stats.loss_sum / stats.weight)
        if plan.done:
            break
    assert plan.step == 40 and plan.done and plan.stop_reason == "epochs done"
    assert seen == list(range(1, 41)) and stats.batches == 8 and stats.weight == 64 and stats.parts == {"mse": 0.0}
    assert losses[-1] < 0.25 * losses[0]
    assert stepper.sched.last_epoch == 40 and 0 < stepper.last_lr < TRAIN["lr"]  # annealed towards the end


def test_time_budget_stops_early_and_keeps_eval_time_out():
    x, y = _regression()
    model, stepper = _tiny(total=1000)
    plan = StepPlan(1000)
    clock = Clock("wall")
    budget = TimeBudget(1e-3, clock)
    budget.start_epoch()

    def step(rows):
        return nn.functional.mse_loss(model(x[rows]).squeeze(-1), y[rows]), {}, 1

    stats = run_epoch([np.arange(8)] * 1000, step, stepper, plan, budget=budget)
    # refitted after the 10-step probe: the budget is long gone, so one more step and stop
    assert plan.step == 11 == stats.batches and plan.total == 11 and plan.stop_reason == "time budget"
    before = clock.elapsed()
    with clock.paused():
        sum(range(200_000))
    assert clock.elapsed() - before < 5e-3
    with pytest.raises(EdgeKDError, match="budget_clock"):
        Clock("gpu")


def test_checkpointer_round_trip_and_settings_check(tmp_path):
    x, y = _regression()
    model, stepper = _tiny(total=10)
    for rows in (np.arange(8), np.arange(8, 16)):
        stepper.update(nn.functional.mse_loss(model(x[rows]).squeeze(-1), y[rows]))
        stepper.advance()
    ck = Checkpointer(tmp_path / "run", {"lr": 1}, "unit", writer=True)
    progress = {"epoch": 1, "step_in_epoch": 2, "global_step": 2, "best_val_acc": 0.5, "best_epoch": 0,
                "history": [{"epoch": 0}]}
    ck.save_last(model, model, stepper.opt, stepper.sched, progress)
    ck.save_best(model, 0.5, 0, 2)
    assert ck.path("last.pt") and ck.path("best.pt")

    fresh, fresh_stepper = _tiny(total=10)
    state = Checkpointer(tmp_path / "run", {"lr": 1}, "unit", writer=True).resumable(True)
    assert Checkpointer.restore(state, fresh, fresh_stepper.opt, fresh_stepper.sched, set_rng=False) == progress
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    assert fresh_stepper.sched.last_epoch == 2
    assert fresh_stepper.opt.state_dict()["state"][0]["step"] == 2
    assert set(ck.best_student()) == {"weight", "bias"}

    other = Checkpointer(tmp_path / "run", {"lr": 2}, "unit", writer=True)
    with pytest.raises(EdgeKDError, match="other settings"):
        other.resumable(True)
    assert other.resumable("auto") is None and other.resumable(False) is None
    assert Checkpointer(None, {}, "unit", writer=True).path("last.pt") is None


def test_best_model_keeps_the_best_epoch():
    model = nn.Linear(2, 1)
    best = BestModel()
    assert best.offer(model, 0.5, 0)
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not best.offer(model, 0.5, 1) and best.epoch == 0  # a tie is not better
    model.train()
    best.restore(model, saved=lambda: pytest.fail("best.pt read although the best is in memory"))
    assert torch.equal(model.weight, kept["weight"]) and not model.training
    resumed = BestModel(0.9, 3)
    resumed.restore(model, saved=lambda: {k: torch.zeros_like(v) for k, v in kept.items()})
    assert float(model.weight.detach().abs().sum()) == 0.0
    model.train()
    with eval_mode(model):
        assert not model.training and not torch.is_grad_enabled()
    assert model.training


def test_best_model_breaks_an_accuracy_tie_by_the_held_out_loss():
    """A saturated held-out set (a few photos at 100 % agreement): later epochs win on a lower loss."""
    model = nn.Linear(2, 1)
    best = BestModel()
    assert best.offer(model, 1.0, 0, loss=0.9)
    assert not best.offer(model, 1.0, 1, loss=0.95) and best.epoch == 0
    assert best.offer(model, 1.0, 2, loss=0.4) and best.epoch == 2 and best.loss == 0.4
    assert not best.offer(model, 0.9, 3, loss=0.1) and best.epoch == 2  # accuracy first


def test_lr_schedule_warms_up_then_decays_to_zero():
    """The text path's schedule (moved from tests/test_hf.py with the code)."""
    f = [warmup_decay(s, 100, 0.1) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and max(f) == 1.0
    assert all(a >= b for a, b in zip(f[9:], f[10:])) and f[-1] == pytest.approx(1 / 90)
    assert warmup_decay(0, 5, 0.06) == 1.0  # under one warmup step: start at the peak
    c = [warmup_decay(s, 100, 0.1, "cosine") for s in range(100)]
    assert c[:10] == f[:10] and c[10] == 1.0 and c[-1] == pytest.approx(0.5 * (1 + np.cos(np.pi * 89 / 90)))


def test_one_process_dist_shares_nothing():
    d = Dist()
    assert d.world == 1 and d.main and d.sum(1.0, 2.0) == [1.0, 2.0]
    assert d.local_rows(np.arange(5)).tolist() == [0, 1, 2, 3, 4]
    m = nn.Linear(2, 2)
    assert d.wrap(m, torch.device("cpu"), find_unused=False) is m
    d.check_batch(7)


def test_epoch_batches_never_end_with_a_batch_of_one():
    from edgekd.distill.step import epoch_batches

    order = np.arange(5)
    batches = list(epoch_batches(order, 2, 0, 3))
    assert [len(b) for b in batches] == [2, 2, 2] and batches[-1].tolist() == [4, 0]
    assert [len(b) for b in epoch_batches(np.arange(6), 2, 0, 3)] == [2, 2, 2]
