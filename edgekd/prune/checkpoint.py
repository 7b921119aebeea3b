"""Checkpoints of derived / pruned models that load with torch.load(weights_only=True).

The file is the lead's portable format (edgekd.models.portable: state_dict + each layer's size
attributes) plus the names of the blocks that derive dropped. Loading rebuilds the unpruned
architecture (e.g. the teacher factory), drops the same blocks, then lets load_portable resize the
layers and load the weights. No pickled code is involved.
"""

from __future__ import annotations

from pathlib import Path

from edgekd.errors import EdgeKDError


def save_pruned(model, path, *, dropped_blocks: list[str] | None = None, meta: dict | None = None) -> Path:
    import torch

    from edgekd.core import atomic_path
    from edgekd.models.portable import portable_state

    payload = portable_state(model)
    payload["dropped_blocks"] = list(dropped_blocks or [])
    payload["meta"] = {k: v for k, v in (meta or {}).items() if isinstance(v, (str, int, float, bool, type(None)))}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_pruned(path) -> dict:
    from edgekd.core.inputs import load_torch_file

    p = Path(path).expanduser()
    obj = load_torch_file(p)
    if not isinstance(obj, dict) or obj.get("edgekd_portable") != 1:
        raise EdgeKDError(f"checkpoint {p} is not an edgekd derived/pruned checkpoint")
    return obj


def load_pruned(model, path):
    """Rebuild a derived / pruned model from its unpruned architecture `model` (e.g. factory()) + checkpoint."""
    from edgekd.models.portable import load_portable
    from edgekd.prune.depth import drop_blocks

    obj = read_pruned(path)
    dropped = obj.get("dropped_blocks") or []
    if dropped:
        names = dict(model.named_modules())
        missing = [b for b in dropped if b not in names]
        if missing:
            raise EdgeKDError(f"checkpoint {path} drops blocks the model does not have: {missing[:3]}")
        model = drop_blocks(model, set(dropped))
    return load_portable(model, path)
