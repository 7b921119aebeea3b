"""Training-state checkpoints: atomic writes, weights_only loads, RNG states as plain tensors/lists."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekd.core import atomic_path

LAST, BEST = "last.pt", "best.pt"


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "python": [py[0], list(py[1]), py[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    v, internal, g = state["python"]
    random.setstate((v, tuple(internal), g))


def save(path: Path, state: dict[str, Any]) -> Path:
    """Write through a temporary file + rename: a kill mid-write leaves the previous checkpoint intact."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load(path: Path) -> dict[str, Any]:
    from edgekd.core.inputs import load_torch_file

    return load_torch_file(path)
