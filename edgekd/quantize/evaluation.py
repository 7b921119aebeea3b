"""What a quantized file is scored on, and how: top-1 accuracy when the held-out data has labels, agreement
with the float file when it has none (a user quantizing a model often has images, not labels).

Both are percentages where the float file scores `reference` (its accuracy, or 100 % agreement with itself),
so the accuracy budget reads the same way: points lost against the float file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Below this many held-out samples one sample is worth more than 1 point, and the binomial standard error of
# a ~90 % figure is over 3 points: a drop of a few points cannot be told from noise. Such a set is warned about.
MIN_EVAL_SAMPLES = 100


def size_problem(n: int, max_drop: float | None) -> tuple[str, bool] | None:
    """(message, fatal) when `n` held-out samples are too few to mean anything; fatal when even one sample
    is worth more points than the --max-drop budget, so the budget cannot be measured at all."""
    if n >= MIN_EVAL_SAMPLES:
        return None
    per_sample = 100.0 / max(n, 1)
    msg = (f"only {n} held-out samples (one is {per_sample:.1f} points; fewer than {MIN_EVAL_SAMPLES} cannot tell a "
           "drop of a few points from noise)")
    if max_drop is not None and per_sample > max_drop:
        return f"{msg}: the --max-drop {max_drop} budget is finer than this evaluation can measure; give more " \
               "held-out data (an .npz x_test, a test/ folder) or a larger --eval-samples", True
    return msg, False


class Scorer:
    """Scores files against held-out x (and y when given); the float file's outputs are computed once."""

    def __init__(self, float_path: Path, x: np.ndarray, y: np.ndarray | None, split: str):
        self.x, self.y, self.split = x, y, split
        self.measure = "accuracy" if y is not None else "agreement"
        self._float_logits = _logits(float_path, x)

    @property
    def reference(self) -> float:
        """The float file's own score: its accuracy, or 100 % agreement with itself."""
        if self.y is None:
            return 100.0
        return round(float((self._float_logits.argmax(1) == self.y).mean() * 100.0), 3)

    def score(self, path: Path) -> float:
        got = _logits(path, self.x)
        if self.y is None:
            return round(float((got.argmax(1) == self._float_logits.argmax(1)).mean() * 100.0), 3)
        return round(float((got.argmax(1) == self.y).mean() * 100.0), 3)

    def agreement(self, path: Path) -> dict:
        """Top-1 / top-5 agreement (%; top-5 is top-K for K < 5 classes), mean cosine and mean KL(float || quantized) of the softmax, per sample."""
        return agreement(self._float_logits, _logits(path, self.x))

    def describe(self) -> dict:
        return {"on": self.split, "samples": int(len(self.x)), "measure": self.measure,
                "why": "labelled held-out data: top-1 accuracy" if self.y is not None else
                       "no labels: agreement with the float file (top-1), not accuracy"}


def _logits(path: Path, x: np.ndarray) -> np.ndarray:
    from edgekd.runtime import load_runner

    out = load_runner(path, threads=1).predict(x)
    return out.reshape(len(out), -1).astype(np.float64)


def agreement(ref: np.ndarray, got: np.ndarray) -> dict:
    """How closely `got` logits follow `ref` logits, sample by sample."""
    ref, got = ref.reshape(len(ref), -1).astype(np.float64), got.reshape(len(got), -1).astype(np.float64)
    k = min(5, ref.shape[1])
    top5_ref, top5_got = np.argsort(-ref, 1)[:, :k], np.argsort(-got, 1)[:, :k]
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(top5_ref, top5_got)])
    cos = (ref * got).sum(1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1), 1e-300)
    p, q = _softmax(ref), _softmax(got)
    kl = (p * (np.log(np.maximum(p, 1e-12)) - np.log(np.maximum(q, 1e-12)))).sum(1)
    return {"top1": round(float((ref.argmax(1) == got.argmax(1)).mean() * 100.0), 3),
            "top5_overlap": round(float(overlap * 100.0), 3), "cosine_mean": round(float(cos.mean()), 6),
            "kl_mean": round(float(kl.mean()), 6), "samples": int(len(ref))}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
