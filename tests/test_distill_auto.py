"""recipe="auto": the probe trains every candidate from the same start, picks by validation accuracy,
falls back to labels only only when distillation loses by more than the noise, and is resumable."""

import json
import re

import pytest
import torch

from tiny_vectors import mlp as _mlp, tiny_bundle

from edgekd.distill import distill
from edgekd.errors import EdgeKDError
from edgekd.distill.auto import (HEAD_START, LOSS_CANDIDATES, LR_FACTORS, LR_RECIPE, MIN_MARGIN, MIN_PROBE_STEPS,
                                 PRIOR_FINETUNE_LR_FACTOR, PRIOR_LR_FACTOR, PRIOR_RECIPE, PRIOR_RECIPE_SHORT,
                                 PRIOR_SHORT_STEPS, choose, head_start, pick_lr, prior, prior_lr_factor, probe_budget,
                                 probe_plan, probe_steps)

torch.set_num_threads(1)


def _bundle():
    return tiny_bundle(n=256)


def test_probe_steps_take_the_stated_share():
    assert probe_steps(1000, 5, 0.15) == 30
    assert probe_steps(10_000, 6, 0.15) == 250
    assert probe_budget(1000, 0.15) == 150 and probe_budget(100, 0.15) == 15  # no floor above the share


def test_the_probe_shrinks_to_its_budget_on_short_runs():
    full = len(LR_FACTORS) + len(LOSS_CANDIDATES)
    assert probe_plan(full * MIN_PROBE_STEPS * 10, 0.1) == (list(LR_FACTORS), LOSS_CANDIDATES)
    # three trials fit: the LRs the suite chose most often, no ce
    assert probe_plan(3 * MIN_PROBE_STEPS * 10, 0.1) == ([3.0, 10.0, 30.0], ())
    assert probe_plan(4 * MIN_PROBE_STEPS * 10, 0.1) == ([3.0, 10.0, 30.0], ("ce",))
    assert probe_plan(2 * MIN_PROBE_STEPS * 10, 0.1, user_lr=True) == ([1.0], ("ce",))  # the user's LR stays
    # under two trials' worth there is nothing to compare: no probe at all
    assert probe_plan(2 * MIN_PROBE_STEPS * 10 - 1, 0.1) == ([], ())
    assert probe_plan(10, 0.15, user_lr=True) == ([], ())


def _taught_teacher(data):
    """The task's classes are shifted apart along every feature: a teacher that sums the features knows them."""
    teacher = _mlp(64, 0)
    res = distill(teacher, _mlp(64, 0), data, recipe="ce", epochs=30, batch_size=32, lr=0.03, progress=False)
    assert res.metrics["best_val_acc"] > 0.6
    return res.student.eval()


def test_a_run_too_short_to_probe_trains_the_prior_and_says_why():
    data = _bundle()
    teacher = _taught_teacher(data)
    res = distill(teacher, _mlp(8, 1), data, recipe="auto", epochs=5, batch_size=32, progress=False)
    auto = res.metrics["auto"]  # 40 steps: 15 % is 6 steps, under two 20-step trials
    assert auto["tried"] == [] and auto["seconds"] == 0.0 and auto["chosen"] == PRIOR_RECIPE_SHORT
    assert "no probe" in auto["reason"] and "267 steps" in auto["reason"]
    assert res.metrics["steps"] == 40  # the whole budget trains the prior
    base = 3e-3 * (32 / 128) ** 0.5  # the recipes' base LR at batch 32 (square-root rule)
    assert auto["lr"] == pytest.approx(base * PRIOR_LR_FACTOR) == res.recipe["train"]["lr"]


def test_choose_prefers_distillation_within_noise_and_ce_beyond_it():
    kd = {"recipe": "hinton", "val_acc": 0.80}
    assert choose([kd, {"recipe": "ce", "val_acc": 0.80 + MIN_MARGIN / 2}], 10_000)[0] == "hinton"
    chosen, reason = choose([kd, {"recipe": "ce", "val_acc": 0.90}], 10_000)
    assert chosen == "ce" and "bought nothing" in reason
    # a small validation split widens the noise band: 0.05 is within two standard errors of 100 samples
    assert choose([kd, {"recipe": "ce", "val_acc": 0.85}], 100)[0] == "hinton"
    assert choose([{"recipe": "dkd", "val_acc": None}, {"recipe": "ce", "val_acc": 0.5}], 100)[0] == "ce"


def test_choose_asks_whether_the_teacher_has_something_to_teach():
    """With the teacher's val accuracy known, a short labels-only lead does not decide (KD learns slower
    early); a teacher no better than the labels-only trial does."""
    kd, ce = {"recipe": "kd-balanced", "val_acc": 0.53}, {"recipe": "ce", "val_acc": 0.62}
    chosen, reason = choose([kd, ce], 5000, teacher_acc=0.92)
    assert chosen == "kd-balanced" and "something to teach" in reason
    chosen, reason = choose([kd, ce], 5000, teacher_acc=0.62 + MIN_MARGIN / 2)  # within the noise of the trial
    assert chosen == "ce" and "nothing to teach" in reason
    assert choose([kd, {"recipe": "kd-ls", "val_acc": 0.55}, ce], 5000, teacher_acc=0.9)[0] == "kd-ls"


def test_auto_probes_every_candidate_then_trains_the_winner(tmp_path):
    teacher = _mlp(64, 0).eval()
    data = _bundle()
    res = distill(teacher, _mlp(8, 1), data, recipe="auto", epochs=110, batch_size=32, progress=False,
                  output_dir=tmp_path / "run", checkpoint_every=0)  # 880 steps: room for the whole probe
    auto = res.metrics["auto"]
    # stage 1: the LR for Hinton KD; stage 2: the other losses at the LR stage 1 chose
    assert [t["recipe"] for t in auto["tried"]] == [LR_RECIPE] * len(LR_FACTORS) + list(LOSS_CANDIDATES)
    assert len({t["lr"] for t in auto["tried"]}) == len(LR_FACTORS)
    assert {t["lr"] for t in auto["tried"][len(LR_FACTORS):]} == {auto["lr"]}
    assert all(t["steps"] == auto["steps_per_candidate"] for t in auto["tried"])
    assert auto["chosen"] in (LR_RECIPE, *LOSS_CANDIDATES) and res.metrics["recipe"] == f"auto:{auto['chosen']}"
    assert res.recipe["train"]["lr"] == auto["lr"]  # the winner trains at the probed LR
    assert res.metrics["steps"] == 110 * 8  # the winner gets the whole budget
    saved = json.loads((tmp_path / "run" / "auto_probe.json").read_text())
    assert saved["report"]["chosen"] == auto["chosen"]


def test_the_final_training_reads_the_teacher_outputs_the_probe_computed(monkeypatch):
    import edgekd.distill.auto as auto

    monkeypatch.setattr(auto, "choose", lambda *a, **k: (LR_RECIPE, "forced"))  # a random teacher would lose to ce
    data = _bundle()
    res = distill(_mlp(64, 0).eval(), _mlp(8, 1), data, recipe="auto", epochs=110, batch_size=32, progress=False,
                  checkpoint_every=0)
    # the trials covered every training sample, so the final training runs the teacher no more: all of its
    # 110 x len(train) lookups hit the cache the probe filled (a fresh cache would miss the first epoch's), and the
    # shared cache's teacher time is the probe's (timings rounded to 3 digits)
    cache, probe = res.metrics["cache"], res.metrics["auto"]
    assert cache["enabled"] and cache["hits"] >= 110 * len(data.train)
    assert cache["teacher_seconds"] == pytest.approx(probe["teacher_seconds"], abs=2e-3)


def test_resumed_auto_run_reuses_the_probe(tmp_path, monkeypatch):
    import edgekd.distill.auto as auto

    data, teacher = _bundle(), _mlp(64, 0).eval()
    distill(teacher, _mlp(8, 1), data, recipe="auto", epochs=2, batch_size=32, progress=False,
            output_dir=tmp_path / "run")
    monkeypatch.setattr(auto, "run_probe", lambda *a, **k: (_ for _ in ()).throw(AssertionError("probed again")))
    res = distill(teacher, _mlp(8, 1), data, recipe="auto", epochs=2, batch_size=32, progress=False,
                  output_dir=tmp_path / "run", resume="auto")
    assert "auto" in res.metrics


def test_a_learning_rate_the_user_gave_is_kept():
    res = distill(_mlp(64, 0).eval(), _mlp(8, 1), _bundle(), recipe="auto", epochs=40, batch_size=32, lr=0.02,
                  progress=False)  # 320 steps: a probe of the loss mix at the user's LR fits in 15 %
    assert res.metrics["auto"]["tried"] and {t["lr"] for t in res.metrics["auto"]["tried"]} == {0.02}
    assert res.recipe["train"]["lr"] == 0.02


def test_auto_share_buys_a_probe_on_a_short_run_and_bad_values_are_one_line_errors():
    teacher, data = _mlp(64, 0).eval(), _bundle()
    res = distill(teacher, _mlp(8, 1), data, recipe="auto", epochs=6, batch_size=32, progress=False,
                  overrides={"auto.share": 0.9})  # 48 steps, 43 for the probe: the x10 and x30 trials
    auto = res.metrics["auto"]
    assert auto["share"] == 0.9 and len(auto["tried"]) == 2 and res.metrics["steps"] == 48
    for bad, msg in (({"auto.share": 1.5}, "must lie in (0, 1)"), ({"auto.share": "x"}, "must be a number"),
                     ({"auto.sahre": 0.5}, "unknown auto setting")):
        with pytest.raises(EdgeKDError, match=re.escape(msg)):
            distill(teacher, _mlp(8, 1), data, recipe="auto", epochs=1, batch_size=32, progress=False, overrides=bad)


def test_a_short_run_with_an_untrained_teacher_trains_labels_only_and_says_why():
    # no probe to notice it, so the prior checks the teacher against the majority class: an untrained teacher
    # (chance on 4 balanced classes) has nothing to teach, and kd-ls's soft targets (90 %) would follow it
    res = distill(_mlp(64, 0).eval(), _mlp(8, 1), _bundle(), recipe="auto", epochs=5, batch_size=32, progress=False)
    auto = res.metrics["auto"]
    assert auto["chosen"] == "ce" and "nothing to teach" in auto["reason"] and "no probe" in auto["reason"]
    assert prior("kd-balanced", 0.06, 40, 0.15, (0.26, 0.25, 256)).chosen == "ce"  # within the split's noise
    assert prior("kd-balanced", 0.06, 40, 0.15, (0.90, 0.25, 256)).chosen == PRIOR_RECIPE_SHORT


def test_the_prior_recipe_follows_the_run_length():
    # under PRIOR_SHORT_STEPS the logit-standardised KD with its weight ramping in (it did not collapse on a derived
    # deep-narrow student at 55 steps, and a fresh tiny one fits the labels first); from there to the probe's
    # threshold the even KD mix; the labels-only baseline stays labels only
    assert prior("kd-balanced", 0.06, PRIOR_SHORT_STEPS - 1, 0.15).chosen == PRIOR_RECIPE_SHORT
    assert prior("kd-balanced", 0.06, PRIOR_SHORT_STEPS, 0.15).chosen == PRIOR_RECIPE
    assert prior("ce", 0.06, 40, 0.15).chosen == "ce"
    assert PRIOR_RECIPE != PRIOR_RECIPE_SHORT


def test_a_student_that_already_fits_the_task_trains_the_prior_as_a_fine_tune():
    # 256 val samples, 4 balanced classes: chance 0.25, two standard errors 2 * sqrt(0.25 * 0.75 / 256) = 0.054, so
    # the head start needs a val accuracy above 0.25 + 0.054 + HEAD_START
    line = 0.25 + 0.054 + HEAD_START
    assert head_start((line + 0.01, 0.25, 256)) and not head_start((line - 0.01, 0.25, 256))
    assert not head_start(None)  # no labelled val split: a fresh student's LR
    assert prior_lr_factor((0.95, 0.25, 256)) == PRIOR_FINETUNE_LR_FACTOR < PRIOR_LR_FACTOR
    assert prior_lr_factor((0.26, 0.25, 256)) == PRIOR_LR_FACTOR
    data = _bundle()
    teacher = _taught_teacher(data)
    base = 3e-3 * (32 / 128) ** 0.5
    # a student trained on the task before (here: a copy of the teacher) starts far above chance ...
    res = distill(teacher, _taught_teacher(data).train(), data, recipe="auto", epochs=5, batch_size=32,
                  progress=False)
    auto = res.metrics["auto"]
    assert auto["initial_val_acc"] > line and "fine-tune" in auto["reason"]
    assert auto["lr"] == pytest.approx(base * PRIOR_FINETUNE_LR_FACTOR) == res.recipe["train"]["lr"]
    # ... a random one at chance: the fresh student's LR, and the reason says which
    auto = distill(teacher, _mlp(8, 1), data, recipe="auto", epochs=5, batch_size=32, progress=False).metrics["auto"]
    assert auto["initial_val_acc"] < line and "near chance" in auto["reason"]
    assert auto["lr"] == pytest.approx(base * PRIOR_LR_FACTOR)
    # the user's LR is kept either way
    auto = distill(teacher, _taught_teacher(data).train(), data, recipe="auto", epochs=5, batch_size=32, lr=0.02,
                   progress=False).metrics["auto"]
    assert auto["lr"] == 0.02 and "the LR the user gave" in auto["reason"]


def test_the_head_start_is_measured_with_fresh_batch_norm_statistics():
    # a width-pruned student keeps the teacher's batch-norm statistics, which no longer fit it: here a trained
    # student's are spoiled on purpose, so its raw val accuracy is at chance though every weight is intact
    from torch import nn

    from edgekd.distill.auto import _student_vs_chance
    from edgekd.distill.trainer.ddp import Dist
    from edgekd.distill.trainer.evaluation import evaluate

    data = _bundle()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
    student = distill(_taught_teacher(data), net, data, recipe="ce", epochs=20, batch_size=32, lr=0.03,
                      progress=False).student
    with torch.no_grad():
        student[1].running_mean += 100.0  # every unit's activation looks far below its mean: ReLU zeroes them all
    raw, _ = evaluate(student, data.val.x, data.val.y, Dist())
    acc, chance, n_val = _student_vs_chance(student, data)
    assert raw <= chance + 0.05 and not head_start((raw, chance, n_val))
    assert acc > 0.6 and head_start((acc, chance, n_val))
    assert float(student[1].running_mean.min()) > 50  # measured on a copy: the student itself is unchanged


def test_the_lr_stage_breaks_a_tie_towards_the_larger_lr():
    # 5000 val samples: two standard errors near 60 % are ~1.4 points, so 58.4 vs 58.8 is a tie, 52.0 is not
    tied = [{"recipe": "kd-balanced", "lr": 0.03, "val_acc": 0.588},
            {"recipe": "kd-balanced", "lr": 0.09, "val_acc": 0.584},
            {"recipe": "kd-balanced", "lr": 0.009, "val_acc": 0.45}]
    assert pick_lr(tied, 5000) == 0.09
    clear = [{"recipe": "kd-balanced", "lr": 0.03, "val_acc": 0.588},
             {"recipe": "kd-balanced", "lr": 0.09, "val_acc": 0.52}]
    assert pick_lr(clear, 5000) == 0.03
    assert pick_lr([{"recipe": "kd-balanced", "lr": 0.03, "val_acc": None}], 5000) is None
