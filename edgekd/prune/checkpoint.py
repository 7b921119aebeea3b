"""Checkpoints of derived / pruned models that load with torch.load(weights_only=True).

A pruned model has other layer shapes than its factory builds, so a plain state_dict does not load.
We store the state_dict plus the dropped blocks; loading rebuilds the factory's model, drops the same
blocks and resizes each Conv / Linear / norm layer to the stored tensor shapes before load_state_dict.
No pickled code is involved (unlike torch.save(model) or Torch-Pruning's full-object state).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError

MARKER = "edgekd_pruned"
VERSION = 1


def save_pruned(model, path, *, dropped_blocks: list[str] | None = None, meta: dict | None = None) -> Path:
    import torch

    from edgekd.core import atomic_path

    payload = {
        MARKER: VERSION,
        "dropped_blocks": list(dropped_blocks or []),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": {k: v for k, v in (meta or {}).items() if isinstance(v, (str, int, float, bool, type(None)))},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def is_pruned_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get(MARKER) == VERSION and isinstance(obj.get("state_dict"), dict)


def read_pruned(path) -> dict:
    import torch

    p = Path(path).expanduser()
    if not p.is_file():
        raise EdgeKDError(f"checkpoint {p} does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt or unsafe file
        raise EdgeKDError(f"checkpoint {p} cannot be loaded safely: {str(exc).splitlines()[0][:200]}") from None
    if not is_pruned_checkpoint(obj):
        raise EdgeKDError(f"checkpoint {p} is not an edgekd derived/pruned checkpoint")
    return obj


def load_pruned(model, path_or_obj):
    """Rebuild a derived / pruned model from its unpruned architecture `model` (e.g. factory()) + checkpoint."""
    from edgekd.prune.depth import drop_blocks

    obj = path_or_obj if isinstance(path_or_obj, dict) else read_pruned(path_or_obj)
    if obj["dropped_blocks"]:
        names = dict(model.named_modules())
        missing = [b for b in obj["dropped_blocks"] if b not in names]
        if missing:
            raise EdgeKDError(f"checkpoint drops blocks the model does not have: {missing[:3]}")
        model = drop_blocks(model, set(obj["dropped_blocks"]))
    resize_to_state_dict(model, obj["state_dict"])
    try:
        model.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as exc:
        raise EdgeKDError(f"pruned checkpoint does not match the model: {' '.join(str(exc).split())[:240]}") from None
    return model.eval()


def resize_to_state_dict(model, sd: dict) -> None:
    """Give every layer the shapes stored in `sd` (only layers whose meaning is clear from their weights)."""
    import torch
    from torch import nn

    for name, mod in model.named_modules():
        prefix = f"{name}." if name else ""
        w = sd.get(prefix + "weight")
        own = dict(mod.named_parameters(recurse=False)) | dict(mod.named_buffers(recurse=False))
        if not own or all(k not in own or sd.get(prefix + k) is None or tuple(sd[prefix + k].shape) == tuple(own[k].shape)
                          for k in own):
            continue
        if isinstance(mod, nn.modules.conv._ConvNd) and w is not None:
            depthwise = mod.groups > 1 and mod.groups == mod.in_channels
            mult = mod.out_channels // mod.groups
            mod.out_channels = int(w.shape[0])
            if depthwise:
                mod.groups = mod.out_channels // mult
            mod.in_channels = int(w.shape[1]) * mod.groups
        elif isinstance(mod, nn.Linear) and w is not None:
            mod.out_features, mod.in_features = int(w.shape[0]), int(w.shape[1])
        elif isinstance(mod, nn.modules.batchnorm._NormBase):
            ref = w if w is not None else sd.get(prefix + "running_mean")
            mod.num_features = int(ref.shape[0])
        elif isinstance(mod, nn.LayerNorm) and w is not None:
            mod.normalized_shape = tuple(int(s) for s in w.shape)
        elif isinstance(mod, nn.GroupNorm) and w is not None:
            mod.num_channels = int(w.shape[0])
        else:
            raise EdgeKDError(f"cannot rebuild pruned layer '{name}' ({type(mod).__name__}) from a checkpoint")
        for k, t in own.items():
            new = sd.get(prefix + k)
            if new is None:
                continue
            fresh = torch.empty(new.shape, dtype=new.dtype)
            if isinstance(t, nn.Parameter):
                setattr(mod, k, nn.Parameter(fresh, requires_grad=t.requires_grad))
            else:
                mod._buffers[k] = fresh
