"""Helpers for asserting figures that depend on the CPU, its kernels or the library build (not a test module).

Two runs of "the same" model on different kernels (another CPU's fp32 kernels, fp16 weights, int8 on another
backend) give outputs that differ by a small amount per logit. When every logit differs by at most `bound`, the
top-1 class of a sample can only change if its two largest reference logits are within 2 * bound of each other:
such a sample is a near tie, and whether it flips depends on the CPU. Everything else must agree exactly.
"""

from __future__ import annotations

import numpy as np

# IEEE fp16 has an 11-bit significand: round-to-nearest changes a value by at most 2**-11 relative (unit roundoff).
FP16_UNIT_ROUNDOFF = 2.0**-11


def top2_margins(ref) -> np.ndarray:
    """Per sample: largest minus second-largest reference logit."""
    r = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    top2 = np.sort(r, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def near_ties(ref, bound: float) -> np.ndarray:
    """Mask of the samples whose top-1 may flip when each logit moves by at most `bound`."""
    return top2_margins(ref) <= 2.0 * bound


def assert_top1_agrees_except_near_ties(ref, got, bound: float) -> int:
    """Every sample that is not a near tie under `bound` keeps its top-1 class; returns the number of flips."""
    r = np.asarray(ref).reshape(len(ref), -1)
    g = np.asarray(got).reshape(len(got), -1)
    flipped = r.argmax(1) != g.argmax(1)
    firm = ~near_ties(r, bound)
    assert not (flipped & firm).any(), (
        f"{int((flipped & firm).sum())} sample(s) changed top-1 although their top-2 margin "
        f"{top2_margins(r)[flipped & firm].min():.4g} exceeds 2 x {bound:.4g}")
    return int(flipped.sum())
