"""Recovery / link training through edgekd.distill (the one training loop), plus quick evaluation."""

from __future__ import annotations

from typing import Any

# Recovery without a teacher signal: plain cross-entropy fine-tuning (the "without KD" baseline).
CE_RECIPE = {"name": "ce-finetune", "description": "cross-entropy fine-tuning, no teacher", "loss": [{"type": "ce"}]}


def train_link(teacher, student, data, *, recipe="hinton", epochs=1, max_steps=None, batch_size=128, lr=None,
               seed=0, output_dir=None, resume=False, progress=False, cache=None) -> dict:
    """Distill `teacher` into `student` in place; returns the distill metrics."""
    from edgekd.distill import distill

    res = distill(teacher, student, data, recipe=recipe, epochs=max(1, int(epochs)), max_steps=max_steps,
                  batch_size=batch_size, lr=lr, seed=seed, output_dir=output_dir, resume=resume,
                  progress=progress, **({"cache": cache} if cache is not None else {}))
    return res.metrics


def predict_logits(model, x, batch: int = 512):
    import numpy as np
    import torch

    from edgekd.prune._util import first_tensor

    was = model.training
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            outs.append(first_tensor(model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch])))).float().numpy())
    model.train(was)
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def accuracy(model, ds, limit: int | None = None) -> float | None:
    """Top-1 accuracy (0..1) on an ArrayDataset, or None when it has no labels."""
    if ds is None or ds.y is None or len(ds) == 0:
        return None
    x, y = (ds.x, ds.y) if limit is None else (ds.x[:limit], ds.y[:limit])
    return float((predict_logits(model, x).argmax(1) == y).mean())


def agreement(a, b, x) -> float:
    """Fraction of samples where two models predict the same class (student-teacher agreement)."""
    return float((predict_logits(a, x).argmax(1) == predict_logits(b, x).argmax(1)).mean())


def held_out(data) -> Any:
    return data.val if len(data.val) else data.test
