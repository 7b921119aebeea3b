"""Numerical agreement between PyTorch outputs and an exported file's outputs on the same real inputs.

Figures: max abs error, that error relative to the largest reference value, the worst per-sample cosine
similarity, and top-1 agreement for (N, K) logits. Tolerances depend on the file's precision.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# rel: max |diff| / max |ref|; cos: worst per-sample cosine; top1: share of samples with the same argmax.
# fp32 bounds leave room for reordered float sums in deep graphs, nothing more.
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"rel": 2e-3, "cos": 0.9999},
    "fp16": {"rel": 3e-2, "cos": 0.999},
    "int8": {"cos": 0.98, "top1": 0.9},
    "dynamic": {"cos": 0.98, "top1": 0.9},
    "mixed": {"cos": 0.98, "top1": 0.9},
}


def _align(ref: np.ndarray, got: np.ndarray) -> np.ndarray | None:
    """got in ref's shape (channels-last outputs are permuted back); None when they cannot match."""
    if got.shape == ref.shape:
        return got
    if got.ndim == 4 and ref.ndim == 4 and got.shape == (ref.shape[0], ref.shape[2], ref.shape[3], ref.shape[1]):
        return got.transpose(0, 3, 1, 2)
    if got.size == ref.size and got.shape[0] == ref.shape[0] and got.ndim != ref.ndim:
        return got.reshape(ref.shape)  # e.g. (N,K,1,1) vs (N,K)
    return None


def _match_outputs(ref: list[np.ndarray], got: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Pair outputs by position when shapes allow, else by the first unused output of a fitting shape."""
    pairs, used = [], set()
    for i, r in enumerate(ref):
        cand = None
        if i < len(got) and _align(r, got[i]) is not None and i not in used:
            cand = i
        else:
            cand = next((j for j, g in enumerate(got) if j not in used and _align(r, g) is not None), None)
        if cand is None:
            pairs.append((r, None))
        else:
            used.add(cand)
            pairs.append((r, _align(r, got[cand])))
    return pairs


def _cosines(r: np.ndarray, g: np.ndarray) -> np.ndarray:
    r2 = r.reshape(r.shape[0], -1).astype(np.float64) if r.ndim else r.reshape(1, 1).astype(np.float64)
    g2 = g.reshape(r2.shape).astype(np.float64)
    num = (r2 * g2).sum(1)
    den = np.linalg.norm(r2, axis=1) * np.linalg.norm(g2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(den > 0, num / np.maximum(den, 1e-300), np.where(np.abs(r2 - g2).max(1) == 0, 1.0, 0.0))
    return cos


def compare(ref: list[np.ndarray], got: list[np.ndarray], precision: str = "fp32") -> dict[str, Any]:
    """Parity figures over all outputs; `passed` applies TOLERANCES[precision]."""
    tol = TOLERANCES.get(precision, TOLERANCES["fp32"])
    pairs = _match_outputs(ref, got)
    res: dict[str, Any] = {"precision": precision, "tolerance": dict(tol), "outputs": len(ref),
                           "samples": int(ref[0].shape[0]) if ref[0].ndim else 1}
    missing = [i for i, (_, g) in enumerate(pairs) if g is None]
    if missing:
        res.update(passed=False, max_abs=None, rel_err=None, cosine=None, top1_agreement=None,
                   reason=f"output(s) {missing} missing or of another shape "
                          f"(expected {[list(ref[i].shape) for i in missing]}, file gave {[list(g.shape) for g in got]})")
        return res
    max_abs, ref_max, cos_min, finite = 0.0, 0.0, 1.0, True
    for r, g in pairs:
        finite &= bool(np.isfinite(g).all())
        d = np.abs(r.astype(np.float64) - g.astype(np.float64))
        max_abs = max(max_abs, float(d.max()) if d.size else 0.0)
        ref_max = max(ref_max, float(np.abs(r).max()) if r.size else 0.0)
        cos_min = min(cos_min, float(_cosines(r, g).min()))
    r0, g0 = pairs[0]
    top1 = float((r0.argmax(1) == g0.argmax(1)).mean()) if r0.ndim == 2 and r0.shape[1] > 1 else None
    rel = max_abs / max(ref_max, 1e-12)
    passed = finite and cos_min >= tol["cos"]
    if "rel" in tol:
        passed &= rel <= tol["rel"]
    if "top1" in tol and top1 is not None:
        passed &= top1 >= tol["top1"]
    res.update(max_abs=max_abs, rel_err=rel, cosine=cos_min, top1_agreement=top1, passed=bool(passed))
    if not finite:
        res["reason"] = "the file produced NaN or Inf"
    return res
