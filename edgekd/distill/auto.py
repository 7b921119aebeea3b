"""`recipe="auto"`: a short probe picks the loss mix by held-out accuracy, then the whole budget trains it.

Each candidate recipe trains a copy of the same initial student on a compressed schedule (the full
OneCycle/cosine shape squeezed into its share of steps, so the probe sees warm-up and annealing, not just
the first steps of a long run). The probe's total is `share` of the run's steps. All candidates share one
teacher-output cache, so the teacher's forward passes are paid once.

Two stages. First the learning rate: KD (T=4, an even soft/hard mix) at the recipes' base LR times
LR_FACTORS. On the suite (benchmarks/distill_suite.py) the LR moved the student more than the loss mix did,
and a base LR fitted to one pair was several times too low for another (digits MLP, 200 steps: Hinton
84.4 % at 3e-3, 96.7 % at 3e-2; plain7 -> tiny3, 5 epochs: labels only 88.01 % at 3e-2, 88.72 % at 0.1).
Then the loss mix at that LR: LOSS_CANDIDATES. The LR stage uses the even mix, not Hinton's alpha 0.9,
because alpha 0.9 trails at every LR on low-capacity students and would pick the LR for a loss that loses.

The probe takes at most `share` of the run's steps. When that cannot give every trial MIN_PROBE_STEPS, trials
are dropped in DROP_ORDER (probe_plan); when it cannot pay two trials (a run under 2 * MIN_PROBE_STEPS / share
steps, 267 at 15 %), there is nothing to compare and auto trains the prior (PRIOR_RECIPE, or PRIOR_RECIPE_SHORT
under PRIOR_SHORT_STEPS, at PRIOR_LR_FACTOR times the base LR, or PRIOR_FINETUNE_LR_FACTOR for a student that
starts with a head start, see `head_start`) without a probe, and says so; a teacher no better than the majority
class trains labels only instead. Until stop 30 a 60-step floor probed such runs anyway, at
30-55 % of their wall time (the digits pairs of the suite, 50-200 steps).

Labels only (`ce`) is tried too, as the reference the teacher must beat: when the teacher's own val accuracy
is no better than the labels-only trial's (within two standard errors, at least `MIN_MARGIN`), it has nothing
to teach and auto trains labels only, and says so. A labels-only trial that merely leads the KD trials does not
decide it (see `choose`): KD's advantage grows with training length, so short trials under-rate it.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from edgekd.core.inputs import open_fraction
from edgekd.errors import EdgeKDError

LR_RECIPE = "kd-balanced"
LR_FACTORS = (1.0, 3.0, 10.0, 30.0)  # times the recipe's base LR (3e-3 for the built-ins, AdamW + OneCycle)
# The probe gets `share` of the run's steps. When that cannot pay every trial MIN_PROBE_STEPS, trials go in this order:
# kd-ls-ramp, the x1 LR, labels only, x3 (x10 and x30 won most often on the suite: plain7 -> tiny3, digits MLP, ViT ->
# micro3 at x30, ResNet -> MobileNet-style at x10).
DROP_ORDER = (("loss", "kd-ls-ramp"), ("lr", 1.0), ("loss", "ce"), ("lr", 3.0), ("lr", 30.0))
# Too short to probe: the LR factor with the smallest loss to the best fixed LR over the suite's 7 digits pairs
# (kd-balanced, 5 seeds, stop 30): at 5 epochs (~50 steps) x10 / x20 / x30 lost 1.23 / 0.33 / 0.76 points on
# average (worst 3.96 / 0.78 / 1.79); at 20 epochs (~200 steps) x10 / x17 / x30 lost 0.35 / 0.12 / 0.21.
# The recipe depends on the length. Under PRIOR_SHORT_STEPS it is kd-ls-ramp (logit standardisation, its KD weight
# ramping in over the first half): with retrained teachers (stop 31) a derived ResNet auto:0.1 student (8 channels,
# 9 blocks) lost 6.0 points to labels only at 5 epochs (55 steps) under kd-balanced and gained 0.9 under kd-ls
# (10 seeds, same teachers and students); over the 7 digits pairs at 5 epochs kd-ls gained 0.33 points on average
# (worst -0.58: a fresh micro3 student, which fits the labels faster than the teacher's relations), kd-balanced
# -0.63 (worst -6.0). The ramp (stop 34, `short_run_recipe_study`) gained 0.99 (worst +0.14) where kd-ls gained 0.44
# on the same runs, and on the 4 kept-back pairs +1.00 / +1.03 / +1.50 / -0.17 where kd-ls gained -0.97 / -0.11 /
# +0.55 / -0.20. At 20 epochs (200-220 steps) kd-balanced did better: +0.51 (worst +0.05) vs kd-ls +0.33 (worst
# -0.42), and the ramp did not beat it. The cut sits between the suite's two budgets (`prior_recipe_check` in
# benchmarks/results/distill_suite.json).
PRIOR_RECIPE = "kd-balanced"
PRIOR_RECIPE_SHORT = "kd-ls-ramp"
PRIOR_SHORT_STEPS = 100
PRIOR_LR_FACTOR = 20.0
# A student that already fits the task before any step (one derived from the teacher, a user's pretrained one) is a
# fine-tune, and x20 treats it like a random one: on the suite's derived digits students scratch's own sweep picked
# 3e-3..3e-2, not 0.06. The head start: its val accuracy, batch-norm statistics re-estimated on training inputs
# (a width-pruned student keeps the teacher's, which no longer fit it), above the majority class by the split's
# noise plus HEAD_START. On the 7 fitted digits pairs (10 seeds, same teachers and students, `initial_fit_lr_study`
# in benchmarks/results/distill_suite.json) two derived students have it (wide8 -> auto:0.1 at 58 %, MLP -> auto:0.1
# at 69 %; majority 15 / 12 %); the others start at 7-21 % (ResNet -> auto:0.1: 21 %, its scratch sweep picked
# 0.03-0.1 at 5 epochs). Its factor, x1 / x3 / x20 on those two (test points over scratch): 5 epochs +0.11 / +0.22 /
# -0.14 and +0.14 / +0.56 / +0.14; 20 epochs +0.50 / +0.39 / +0.36 and +0.14 / +0.31 / +0.11. x3 won; with it the
# digits pairs' mean gap closed went 0.175 -> 0.314 at 5 epochs and 0.508 -> 0.522 at 20 (worst pair unchanged:
# -0.58 / +0.06, students without a head start). Any HEAD_START from 0.004 to 0.37 splits these pairs the same way.
# Kept-back check (never used to choose): plain7 -> auto:0.1 has the head start (74 %; 8 % with the teacher's stale
# statistics) and moved +0.64 +- 0.45 points at 5 epochs (-0.83 -> -0.19 vs scratch) and -0.28 +- 0.15 at 20
# (+0.08 -> -0.19); the labels-only prior (scratch-probe) on the fitted head-start pairs: -1.06 / -1.25 -> +0.06 /
# +0.53 at 5 epochs, +0.19 / -1.36 -> +0.28 / +0.14 at 20.
PRIOR_FINETUNE_LR_FACTOR = 3.0
HEAD_START = 0.1  # accuracy (fraction) above the majority class, beyond the split's noise
# Stage 2's loss mixes, tried at the LR stage 1 chose. kd-ls-ramp replaced kd-ls in stop 34: on plain7 -> tiny3
# (5 epochs, lr 0.09, seed 0) 88.43 % vs 87.33 % (kd-balanced 88.16 %), and it led kd-ls on 6 of the 7 digits pairs
# at 5 epochs (`short_run_recipe_study`). DKD was a candidate until the session-8 suite: it trailed labels only on
# every pair at every LR tried (plain7 -> tiny3 at lr 0.1: 85.77 % vs 88.72 %), so its trial only cost steps.
LOSS_CANDIDATES = ("kd-ls-ramp", "ce")
CANDIDATES = (LR_RECIPE, *LOSS_CANDIDATES)
PROBE_SHARE = 0.15
MIN_MARGIN = 0.005  # accuracy (fraction): below this a probe difference is noise on any validation split
MIN_PROBE_STEPS = 20
REFERENCE_BATCH = 128  # the batch the built-in recipes' LR was set for


@dataclass
class ProbeReport:
    chosen: str
    reason: str
    share: float
    steps_per_candidate: int
    total_steps: int
    seconds: float
    tried: list[dict[str, Any]] = field(default_factory=list)
    lr: float | None = None  # the learning rate the chosen recipe trains with
    # the teacher's forward passes inside the probe: they fill the shared teacher cache, which the final training
    # then reads instead of running the teacher again (so they are the training's cost, paid early)
    teacher_seconds: float = 0.0
    initial_val_acc: float | None = None  # the untrained student's (no-probe runs: it sets the prior's LR)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_budget(total_steps: int, share: float = PROBE_SHARE) -> int:
    return int(total_steps * share)


def probe_steps(total_steps: int, n_candidates: int, share: float = PROBE_SHARE) -> int:
    return max(MIN_PROBE_STEPS, probe_budget(total_steps, share) // max(1, n_candidates))


def probe_plan(total_steps: int, share: float = PROBE_SHARE, user_lr: bool = False,
               losses: tuple[str, ...] = LOSS_CANDIDATES) -> tuple[list[float], tuple[str, ...]]:
    """(LR factors, loss candidates) that the probe budget can give MIN_PROBE_STEPS each: the whole ladder when
    it fits, else trials dropped in DROP_ORDER (never the last LR). With the user's LR the one factor is 1.
    ([], ()) when the budget cannot pay two trials: one trial compares nothing (see `prior`)."""
    fit = probe_budget(total_steps, share) // MIN_PROBE_STEPS
    if fit < 2:
        return [], ()
    cands = [("lr", f) for f in ([1.0] if user_lr else LR_FACTORS)] + [("loss", c) for c in losses]
    for drop in DROP_ORDER:
        if len(cands) <= fit:
            break
        if drop in cands and (drop[0] == "loss" or sum(k == "lr" for k, _ in cands) > 1):
            cands.remove(drop)
    return [v for k, v in cands if k == "lr"], tuple(v for k, v in cands if k == "loss")


def noise_margin(acc: float, n_val: int) -> float:
    """Two standard errors of an accuracy (fraction) measured on n_val samples, at least MIN_MARGIN: a difference
    below it is noise on that split."""
    p = max(min(acc, 1 - 1e-3), 1e-3)
    return max(MIN_MARGIN, 2 * math.sqrt(p * (1 - p) / max(n_val, 1)))


def choose(tried: list[dict[str, Any]], n_val: int, teacher_acc: float | None = None) -> tuple[str, str]:
    """The best distillation candidate by validation accuracy; labels only when the teacher has nothing to teach.

    The probe cannot rank distillation against labels only by the trials' own scores: KD learns slower early,
    so at 2.5 % of the budget labels only led (plain7 -> tiny3, 53 steps: 62.3 % vs 52.9 % val) though at the
    full budget and the same LR KD matched it (88.74 % vs 88.72 % test); on the digits MLP KD won by 0.3.
    So labels only is chosen when the teacher's own val accuracy is no better than the labels-only trial's
    (a weak or mismatched teacher), not when labels only merely leads a short trial. Without the teacher's
    figure, labels only must beat the best distillation trial by more than the noise."""
    kd = [t for t in tried if t["recipe"] != "ce" and t["val_acc"] is not None]
    ce = next((t for t in tried if t["recipe"] == "ce"), None)
    if not kd:
        return "ce", "no distillation candidate could train on this teacher/student pair"
    best = max(kd, key=lambda t: t["val_acc"])
    if ce is None or ce["val_acc"] is None:
        return best["recipe"], f"{best['recipe']} had the best held-out accuracy ({best['val_acc']:.4f})"
    margin = noise_margin(ce["val_acc"], n_val)
    if teacher_acc is not None:
        if ce["val_acc"] + margin >= teacher_acc:
            return "ce", (f"the teacher ({teacher_acc:.4f} val acc) is no better than the labels-only trial "
                          f"({ce['val_acc']:.4f}, noise {margin:.4f}): it has nothing to teach this student, "
                          "so the student trains on labels only")
        return best["recipe"], (f"{best['recipe']} had the best held-out accuracy among distillation candidates "
                                f"({best['val_acc']:.4f}); the teacher ({teacher_acc:.4f}) is above the labels-only "
                                f"trial ({ce['val_acc']:.4f}), so it has something to teach")
    if ce["val_acc"] > best["val_acc"] + margin:
        return "ce", (f"labels only ({ce['val_acc']:.4f}) beat the best distillation candidate {best['recipe']} "
                      f"({best['val_acc']:.4f}) by more than the probe's noise ({margin:.4f}): distillation "
                      "bought nothing in the probe, so the student trains on labels only")
    return best["recipe"], (f"{best['recipe']} had the best held-out accuracy among distillation candidates "
                            f"({best['val_acc']:.4f}; labels only {ce['val_acc']:.4f}, noise {margin:.4f})")


def pick_lr(trials: list[dict[str, Any]], n_val: int) -> float | None:
    """The LR stage's pick: the largest LR whose trial is within noise of the best one.

    A trial squeezed into a few dozen steps under-rates a large LR (short-horizon bias, Wu et al., ICLR 2018:
    the greedy short run favours small steps), so a tie goes to the larger LR. On plain7 -> tiny3 at 5 epochs
    (stop 34, seed 2) the 53-step trials tied (0.03: 59.66 %, 0.09: 59.12 % val, 5000 samples); the full run
    scored 87.99 % test at 0.09 and 87.71 % at 0.03 (`lr_tie_check` in benchmarks/results/distill_suite.json)."""
    scored = [t for t in trials if t["val_acc"] is not None]
    if not scored:
        return None
    best = max(t["val_acc"] for t in scored)
    return max(t["lr"] for t in scored if t["val_acc"] >= best - noise_margin(best, n_val))


def auto_settings(share: float = PROBE_SHARE) -> dict[str, Any]:
    """What `recipe="auto"` means, for manifests and fingerprints."""
    from edgekd.distill.recipe import load_recipe

    return {"auto": {"lr_recipe": LR_RECIPE, "lr_factors": list(LR_FACTORS), "losses": list(LOSS_CANDIDATES),
                     "share": share, "min_margin": MIN_MARGIN,
                     "prior_lr_factors": {"fresh": PRIOR_LR_FACTOR, "head_start": PRIOR_FINETUNE_LR_FACTOR,
                                          "head_start_above_chance": HEAD_START},
                     "recipes": {c: load_recipe(c).to_dict() for c in CANDIDATES}}}


def run_probe(teacher, student, data, *, epochs: int, max_steps: int | None, batch_size: int, seed: int,
              overrides: dict[str, Any] | None = None, share: float = PROBE_SHARE, device=None,
              progress: bool = False, log=None, lr_recipe: str = LR_RECIPE,
              losses: tuple[str, ...] = LOSS_CANDIDATES, cache=None, caches: dict | None = None) -> ProbeReport:
    """Stage 1 picks the LR (Hinton KD), stage 2 the loss mix at that LR; every trial starts from the same
    initial weights and runs a compressed schedule of the same length."""
    from edgekd.distill.engine import distill
    from edgekd.distill.recipe import load_recipe

    log = log or _stderr
    share = open_fraction(share, "auto probe share")
    ov = dict(overrides or {})
    user_lr = ov.get("train.lr")
    # the recipes' LR is for batch 128; AdamW's usual rule for other batches is the square root (not linear)
    base_lr = (float(user_lr) if user_lr is not None
               else float(load_recipe(lr_recipe).train["lr"]) * math.sqrt(batch_size / REFERENCE_BATCH))
    steps_per_epoch = max(1, math.ceil(len(data.train) / batch_size))
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    if data.train.y is None and lr_recipe != "ce":  # unlabeled: `ce` would fit the teacher's own top-1, not the
        losses = tuple(c for c in losses if c != "ce")  # labels-only reference it stands for; there is none
    factors, losses = probe_plan(total, share, user_lr is not None, losses)
    if not factors:
        start = _student_vs_chance(student, data)
        lr = base_lr if user_lr is not None else base_lr * prior_lr_factor(start)
        if cache is None and caches is not None:  # as the trials do: the final training reads the teacher's val
            cache = _cache_for(caches, lr_recipe, ov, len(data.train))  # accuracy from this cache, not a second pass
        return prior(lr_recipe, lr, total, share, _teacher_vs_chance(teacher, data, cache), start,
                     user_lr is not None)
    lrs = [base_lr * f for f in factors]  # the user's LR is kept (factor 1)
    steps = probe_steps(total, len(lrs) + len(losses), share)
    initial = copy.deepcopy(student.state_dict())
    # one teacher cache per augmentation setting, shared by the trials (and with the caller's, if given); `caches`
    # lets the caller keep them for the final training
    caches = {} if caches is None else caches
    if cache is not None and not isinstance(cache, bool):
        caches[(load_recipe(lr_recipe, _train_only(ov)).train["augment"], cache.views)] = cache
    t0 = time.perf_counter()
    teacher0 = _teacher_seconds(caches)
    tried: list[dict[str, Any]] = []
    teacher_acc: list[float] = []  # the teacher's val accuracy, as each trial measured it (the same split)

    def trial(name: str, lr: float) -> dict[str, Any]:
        model = copy.deepcopy(student)
        model.load_state_dict(initial)
        t = time.perf_counter()
        try:
            res = distill(teacher, model, data, recipe=name, epochs=max(1, math.ceil(steps / steps_per_epoch)),
                          max_steps=steps, batch_size=batch_size, seed=seed, lr=lr,
                          overrides=_train_only(ov, drop=("train.lr",)), progress=progress, device=device,
                          cache=False if cache is False else _cache_for(caches, name, ov, len(data.train)))
            acc, err = res.metrics.get("best_val_acc"), None
            if res.metrics.get("teacher_val_acc") is not None:
                teacher_acc.append(float(res.metrics["teacher_val_acc"]))
        except EdgeKDError as exc:  # e.g. a loss this pair cannot use
            acc, err = None, str(exc)
        entry = {"recipe": name, "lr": lr, "val_acc": acc, "steps": steps,
                 "seconds": round(time.perf_counter() - t, 2)}
        if err:
            entry["error"] = err
        if acc is not None and not math.isfinite(acc):
            entry["val_acc"] = None
        tried.append(entry)
        log(f"auto probe: {name:8s} lr {lr:.2g}  val acc {'-' if entry['val_acc'] is None else f'{acc:.4f}'} "
            f"({steps} steps, {entry['seconds']:.1f} s)")
        return entry

    stage1 = [trial(lr_recipe, lr) for lr in lrs]
    lr = pick_lr(stage1, len(data.val)) or base_lr
    for name in losses:
        trial(name, lr)
    final = [t for t in tried if t["lr"] == lr]
    chosen, reason = (choose(final, len(data.val), teacher_acc[0] if teacher_acc else None) if losses or lr_recipe != "ce"
                      else ("ce", "labels only: the scratch baseline, with the same LR probe"))
    return ProbeReport(chosen, f"lr {lr:.2g} (the largest within noise of the best of {', '.join(f'{x:.2g}' for x in lrs)} for "
                       f"{lr_recipe}); "
                       + reason, share, steps, total, round(time.perf_counter() - t0, 2), tried, lr,
                       round(_teacher_seconds(caches) - teacher0, 3))


def head_start(student_vs_chance: tuple[float, float, int] | None) -> bool:
    """Whether the untrained student already fits the task: its val accuracy beats the majority class by the
    split's noise plus HEAD_START (a student derived from the teacher, or a user's pretrained one)."""
    if student_vs_chance is None:
        return False
    acc, chance, n_val = student_vs_chance
    return acc > chance + noise_margin(chance, n_val) + HEAD_START


def prior_lr_factor(student_vs_chance: tuple[float, float, int] | None) -> float:
    """The prior's LR, times the base LR: a fine-tune's for a student with a head start, else a fresh student's."""
    return PRIOR_FINETUNE_LR_FACTOR if head_start(student_vs_chance) else PRIOR_LR_FACTOR


def prior(lr_recipe: str, lr: float, total: int, share: float,
          teacher_vs_chance: tuple[float, float, int] | None = None,
          student_vs_chance: tuple[float, float, int] | None = None, user_lr: bool = False) -> ProbeReport:
    """No probe: the run is too short for two trials inside `share` of it. teacher_vs_chance: the teacher's val
    accuracy and the split's majority-class rate; a teacher no better than that (beyond the split's noise) has
    nothing to teach, and the prior's soft targets would follow it, so labels only trains instead.
    student_vs_chance: the same for the untrained student, recorded in the report and named in the reason (the
    caller set `lr` from it with prior_lr_factor, unless the user gave the LR)."""
    chosen = "ce" if lr_recipe == "ce" else PRIOR_RECIPE_SHORT if total < PRIOR_SHORT_STEPS else PRIOR_RECIPE
    need = math.ceil(2 * MIN_PROBE_STEPS / share)
    why = (f"no probe: {total} steps are too few to compare two {MIN_PROBE_STEPS}-step trials inside {share:.0%} of "
           f"the run (that takes {need} steps or more)")
    if chosen != "ce" and teacher_vs_chance is not None:
        acc, chance, n_val = teacher_vs_chance
        if acc <= chance + noise_margin(chance, n_val):
            chosen = "ce"
            why += (f"; the teacher's val accuracy ({acc:.4f}) is no better than the majority class ({chance:.4f}): "
                    "it has nothing to teach")
    start = None
    if student_vs_chance is not None:
        start = student_vs_chance[0]
        if user_lr:
            how = "the LR the user gave"
        elif head_start(student_vs_chance):
            how = (f"it starts above the majority class ({student_vs_chance[1]:.4f}) by more than the noise plus "
                   f"{HEAD_START:.2f}, so it trains as a fine-tune, at {PRIOR_FINETUNE_LR_FACTOR:g}x the base LR")
        else:
            how = f"it starts near chance, so it trains at {PRIOR_LR_FACTOR:g}x the base LR"
        why += f"; the untrained student's val accuracy is {start:.4f}: {how}"
    return ProbeReport(chosen, f"{why}; trains the prior, {chosen} at lr {lr:.2g}", share, 0, total, 0.0, [], lr,
                       initial_val_acc=start)


def _student_vs_chance(student, data) -> tuple[float, float, int] | None:
    """(the untrained student's val accuracy, majority-class rate, val size), its batch-norm statistics first
    re-estimated on the training inputs (_fresh_norm_stats); None without labels or when the student cannot run on
    the inputs (the training's own checks say why in one line)."""
    import numpy as np

    from edgekd.distill.trainer.ddp import Dist
    from edgekd.distill.trainer.evaluation import evaluate

    vy = data.val.y if data.val is not None else None
    if vy is None or len(vy) == 0:
        return None
    vy = np.asarray(vy, dtype=np.int64)
    try:
        acc, _ = evaluate(_fresh_norm_stats(student, data.train.x), data.val.x, vy, Dist())
    except (RuntimeError, ValueError, TypeError, IndexError):  # e.g. inputs of the wrong shape for this student
        return None
    return float(acc), float(np.bincount(vy).max() / len(vy)), len(vy)


NORM_STATS_SAMPLES = 1024  # training inputs (no labels, no steps) that re-estimate a copy's batch-norm statistics


def _fresh_norm_stats(student, x):
    """The student itself when it has no batch norm, else a copy whose batch-norm running statistics are those of
    its own activations on the first NORM_STATS_SAMPLES training inputs. A student width-pruned from the teacher
    keeps the teacher's statistics, which no longer fit its thinner layers: on the suite's derived wide8 student
    (digits) they put its val accuracy at 20 % (majority 15 %), fresh ones at 58 %, though no weight changed."""
    import numpy as np
    import torch
    from torch import nn

    from edgekd.distill.trainer.ddp import device_of

    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in student.modules()):
        return student
    model = copy.deepcopy(student).eval()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches below
            m.train()
    dev = device_of(model)
    with torch.no_grad():
        for i in range(0, min(NORM_STATS_SAMPLES, len(x)), 128):
            model(torch.from_numpy(np.ascontiguousarray(x[i:i + 128])).to(dev))
    return model


def _teacher_vs_chance(teacher, data, cache) -> tuple[float, float, int] | None:
    """(teacher val accuracy, majority-class rate, val size) on a labelled val split; None without labels."""
    import numpy as np

    from edgekd.distill.trainer.ddp import Dist
    from edgekd.distill.trainer.evaluation import teacher_val_acc

    vy = data.val.y if data.val is not None else None
    if vy is None or len(vy) == 0:
        return None
    chance = float(np.bincount(np.asarray(vy, dtype=np.int64)).max() / len(vy))
    try:
        return teacher_val_acc(teacher, data.val.x, vy, Dist(), cache), chance, len(vy)
    except Exception:  # a teacher that cannot run on these inputs: the engine's own check says so in one line
        return None


def distill_auto(teacher, student, data, *, epochs: int, max_steps: int | None, batch_size: int, seed: int,
                 overrides: dict[str, Any] | None, output_dir, resume, progress: bool, device=None,
                 labels_only: bool = False, **kwargs):
    """Probe, then train the chosen recipe for the whole budget; the probe's report is in metrics["auto"].

    labels_only: the fair scratch baseline: the same LR probe with recipe `ce` and the same budget."""
    import json
    from pathlib import Path

    from edgekd.core import atomic_write_text
    from edgekd.distill.engine import distill

    overrides, share = probe_share(overrides)
    key = {"epochs": epochs, "max_steps": max_steps, "batch": batch_size, "seed": seed,
           "overrides": {k: str(v) for k, v in (overrides or {}).items()}, "labels_only": labels_only,
           **auto_settings(share)}
    saved = Path(output_dir) / "auto_probe.json" if output_dir else None
    report, caches = None, {}
    if saved is not None and resume and saved.is_file():  # a resumed run does not probe again
        try:
            blob = json.loads(saved.read_text())
            if blob.get("key") == json.loads(json.dumps(key, default=str)):
                report = ProbeReport(**blob["report"])
        except (ValueError, TypeError, KeyError):
            report = None
    budget = kwargs.pop("time_budget_s", None)
    t_start = time.perf_counter()
    if report is None:
        extra = {"lr_recipe": "ce", "losses": ()} if labels_only else {}
        probe_max = max_steps
        if budget:  # the probe is sized in steps: the budget's worth, from a short pilot's time per step
            probe_max = _steps_in_budget(teacher, student, data, budget, batch_size, seed, overrides, device, caches,
                                         max_steps, epochs)
        report = run_probe(teacher, student, data, epochs=epochs, max_steps=probe_max, batch_size=batch_size,
                           seed=seed, overrides=overrides, device=device, cache=kwargs.get("cache"), caches=caches,
                           share=share, **extra)
        if saved is not None:
            saved.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(saved, json.dumps({"key": key, "report": report.to_dict()}, indent=2, default=str) + "\n")
    _stderr(f"auto: chose '{report.chosen}': {report.reason}")
    final_ov = dict(overrides or {}, **({"train.lr": report.lr} if report.lr else {}))
    if kwargs.get("cache") is None and caches:  # the teacher outputs the probe computed are not computed again
        kwargs["cache"] = _cache_for(caches, report.chosen, final_ov, len(data.train))
    if budget:  # what the pilot and the probe left of it (at least a tenth: the final training always runs)
        kwargs["time_budget_s"] = max(0.1 * budget, budget - (time.perf_counter() - t_start))
    res = distill(teacher, student, data, recipe=report.chosen, epochs=epochs, max_steps=max_steps,
                  batch_size=batch_size, seed=seed, overrides=final_ov, output_dir=output_dir, resume=resume,
                  progress=progress, device=device, **kwargs)
    if budget:
        res.metrics["time_budget_s"] = budget  # the whole budget: pilot, probe and final training
        res.metrics["budget_used_s"] = round(time.perf_counter() - t_start, 3)
    res.metrics["auto"] = report.to_dict()
    res.metrics["recipe"] = "scratch:ce" if labels_only else f"auto:{report.chosen}"
    return res


PILOT_STEPS = 3


def _steps_in_budget(teacher, student, data, budget: float, batch_size: int, seed: int, overrides, device, caches,
                     max_steps: int | None, epochs: int) -> int:
    """How many steps fit in `budget` seconds: a PILOT_STEPS-step run of the prior recipe on a copy of the
    student, timed (its teacher outputs land in the shared cache, so the training reads them again for free)."""
    from edgekd.distill.engine import distill

    steps_per_epoch = max(1, math.ceil(len(data.train) / batch_size))
    planned = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    t = time.perf_counter()
    distill(teacher, copy.deepcopy(student), data, recipe=PRIOR_RECIPE, epochs=1, max_steps=PILOT_STEPS,
            batch_size=batch_size, seed=seed, overrides=_train_only(overrides), progress=False, device=device,
            cache=_cache_for(caches, PRIOR_RECIPE, overrides, len(data.train)))
    per_step = (time.perf_counter() - t) / PILOT_STEPS
    fit = max(1, int((budget - (time.perf_counter() - t)) / per_step))
    _stderr(f"auto: time budget {budget:.0f} s: ~{per_step:.2f} s per step (a {PILOT_STEPS}-step pilot) -> "
            f"{min(fit, planned)} steps")
    return min(fit, planned)


def probe_share(overrides: dict[str, Any] | None) -> tuple[dict[str, Any], float]:
    """(the recipe overrides, the probe's share): `auto.share` is auto's own setting, not a recipe field (a
    user with a seconds-long run may rather pay a larger share for a probe than train the prior)."""
    ov = dict(overrides or {})
    extra = sorted(k for k in ov if k.startswith("auto.") and k != "auto.share")
    if extra:
        raise EdgeKDError(f"unknown auto setting(s) {extra}; known: auto.share (the probe's share of the steps)")
    return ov, open_fraction(ov.pop("auto.share", PROBE_SHARE), "auto.share")


def _stderr(msg: str) -> None:
    """Progress lines go to stderr: stdout carries --json output."""
    import sys

    print(msg, file=sys.stderr, flush=True)


def _train_only(overrides: dict[str, Any] | None, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """Overrides that apply to any candidate: training settings (train.augment, ...)."""
    return {k: v for k, v in (overrides or {}).items() if k.startswith("train.") and k not in drop}


def _teacher_seconds(caches: dict) -> float:
    return sum(c.teacher_seconds for c in caches.values())


def _cache_for(caches: dict, name: str, overrides, n: int):
    """The candidates' shared teacher cache for this recipe's augmentation (views differ per setting)."""
    from edgekd.distill.cache import Augmenter, TeacherCache
    from edgekd.distill.recipe import load_recipe

    train = load_recipe(name, _train_only(overrides)).train
    views = Augmenter.view_count(train["augment"], train["views"])
    return caches.setdefault((train["augment"], views), TeacherCache(n, views))
