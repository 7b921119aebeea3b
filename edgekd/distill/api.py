"""distill(), the public entry point: recipe "auto" probes built-in recipes first (auto.py), any other recipe
trains once (engine.py). Kept apart from the engine: auto trains through the engine, so the entry point that
chooses between them sits above both and no module imports its own importer."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.data.bundle import ArrayDataset, DataBundle
from edgekd.distill import engine
from edgekd.distill.cache import TeacherCache
from edgekd.distill.engine import DistillResult
from edgekd.distill.recipe import Recipe


def distill(
    teacher: nn.Module,
    student: nn.Module,
    data: DataBundle,
    *,
    recipe: "str | dict | Recipe" = "auto",
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
    time_budget_s: stop after about this many seconds of wall time (the LR schedule anneals to the fitted end);
    with "auto" the probe's trials and the final training share it.
    """
    if not (isinstance(recipe, str) and recipe == "auto"):
        return engine.distill(teacher, student, data, recipe=recipe, epochs=epochs, max_steps=max_steps,
                              batch_size=batch_size, lr=lr, seed=seed, output_dir=output_dir, resume=resume,
                              progress=progress, unlabeled=unlabeled, overrides=overrides, cache=cache,
                              checkpoint_every=checkpoint_every, cache_max_bytes=cache_max_bytes, device=device,
                              time_budget_s=time_budget_s)
    from edgekd.distill.auto import distill_auto  # probe the candidates, then train the winner

    engine.check_inputs(teacher, student, data, epochs, max_steps, batch_size, output_dir, resume)
    return distill_auto(teacher, student, data, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                        seed=seed, overrides=engine.recipe_overrides(overrides, lr, checkpoint_every),
                        output_dir=output_dir, resume=resume, progress=progress, device=device,
                        unlabeled=unlabeled, cache=cache, cache_max_bytes=cache_max_bytes,
                        time_budget_s=time_budget_s)
