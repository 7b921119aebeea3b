"""Model weight files: plain state_dicts and portable checkpoints of models whose architecture changed.

A derived / pruned / TA-chain model no longer matches its factory's shapes, and pickling the module would
need `weights_only=False`. So a portable file holds plain tensors and ints: the state_dict, each layer's size
attributes and the blocks derive dropped. Loading takes a fresh instance of the unpruned architecture (e.g.
the teacher factory), drops the same blocks, sets the sizes, resizes the tensors, then loads strictly.
Every file is read once, through edgekd.core.inputs.load_torch_file (weights_only=True: no pickled code).
"""

from __future__ import annotations

from pathlib import Path

from edgekd.errors import EdgeKDError

PORTABLE_KEY = "edgekd_portable"  # format version marker of a portable file
_SIZE_ATTRS = ("in_channels", "out_channels", "groups", "in_features", "out_features", "num_features",
               "embed_dim", "num_heads", "normalized_shape", "num_embeddings", "embedding_dim")
_WRAPPER_KEYS = ("state_dict", "model", "student")  # where training scripts nest a state_dict


def save_portable(model, path: str | Path, *, dropped_blocks: list[str] | None = None,
                  meta: dict | None = None) -> Path:
    """Write `model` so load_portable can rebuild it from its unpruned architecture (atomic write)."""
    import torch

    from edgekd.core import atomic_path

    attrs = {}
    for name, mod in model.named_modules():
        found = {a: getattr(mod, a) for a in _SIZE_ATTRS if isinstance(getattr(mod, a, None), (int, tuple))}
        if found:
            attrs[name] = {a: list(v) if isinstance(v, tuple) else v for a, v in found.items()}
    payload = {PORTABLE_KEY: 1, "state_dict": model.state_dict(), "module_attrs": attrs,
               "dropped_blocks": list(dropped_blocks or []),
               "meta": {k: v for k, v in (meta or {}).items() if isinstance(v, (str, int, float, bool, type(None)))}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_portable(model, path: str | Path):
    """Weights from `path` into `model` (its unpruned architecture for a portable file); returns it in eval mode."""
    from edgekd.core.inputs import load_torch_file

    blob = load_torch_file(path)
    if isinstance(blob, dict) and blob.get(PORTABLE_KEY) == 1:
        model = _rebuild(model, blob, path)
    else:
        _load_strict(model, _state_dict_of(blob, path), path)
    return model.eval()


def load_weights(model, weights: str | Path):
    """Load a state_dict checkpoint (plain, or under 'state_dict'/'model'/'student') into `model`."""
    from edgekd.core.inputs import load_torch_file

    return _load_strict(model, _state_dict_of(load_torch_file(weights), weights), weights)


def _state_dict_of(obj, path) -> dict:
    from edgekd.core.inputs import check_finite_tensors

    if isinstance(obj, dict):
        obj = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), obj)
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise EdgeKDError(f"checkpoint {Path(path).expanduser()} does not hold a state_dict of tensors")
    check_finite_tensors(obj, path)
    return {k.removeprefix("module."): v for k, v in obj.items()}  # saved from a DataParallel/DDP wrapper


def _rebuild(model, blob: dict, path):
    """Drop the saved blocks, set each layer's saved sizes and resize its tensors, then load the weights."""
    import torch

    from edgekd.core.inputs import check_finite_tensors
    from edgekd.models.surgery import drop_blocks

    dropped = blob.get("dropped_blocks") or []
    if dropped:
        missing = [b for b in dropped if b not in dict(model.named_modules())]
        if missing:
            raise EdgeKDError(f"checkpoint {path} drops blocks the model does not have: {missing[:3]}")
        model = drop_blocks(model, set(dropped))
    modules = dict(model.named_modules())
    for name, attrs in blob["module_attrs"].items():
        mod = modules.get(name)
        if mod is None:
            raise EdgeKDError(f"checkpoint {path} names layer '{name}' that the model does not have")
        for a, v in attrs.items():
            setattr(mod, a, tuple(v) if isinstance(v, list) else v)
    state = blob["state_dict"]
    check_finite_tensors(state, path)
    for key, tensor in state.items():
        mod_name, _, leaf = key.rpartition(".")
        mod = modules.get(mod_name)
        cur = getattr(mod, leaf, None) if mod is not None else None
        if isinstance(cur, torch.Tensor) and cur.shape != tensor.shape:
            new = torch.empty_like(tensor)
            is_param = isinstance(cur, torch.nn.Parameter)
            setattr(mod, leaf, torch.nn.Parameter(new, requires_grad=cur.requires_grad) if is_param else new)
    _load_strict(model, state, path)
    return model


def _load_strict(model, state: dict, path):
    try:
        return model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:240]
        raise EdgeKDError(f"checkpoint {Path(path).expanduser()} does not match the model: {first}") from None
