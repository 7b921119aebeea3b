"""Save/load models whose layer widths changed (pruned or derived) as plain tensors + ints.

A pruned model no longer matches its factory's shapes, and pickling the module would need
`weights_only=False`. So we store the state_dict plus each layer's size attributes; loading sets
those attributes on a fresh instance, resizes its tensors, then loads the weights strictly.
"""

from __future__ import annotations

from pathlib import Path

from edgekd.core import atomic_path
from edgekd.errors import EdgeKDError

_SIZE_ATTRS = ("in_channels", "out_channels", "groups", "in_features", "out_features", "num_features",
               "embed_dim", "num_heads", "normalized_shape", "num_embeddings", "embedding_dim")


def portable_state(model) -> dict:
    attrs = {}
    for name, mod in model.named_modules():
        found = {a: getattr(mod, a) for a in _SIZE_ATTRS if isinstance(getattr(mod, a, None), (int, tuple))}
        if found:
            attrs[name] = {a: list(v) if isinstance(v, tuple) else v for a, v in found.items()}
    return {"edgekd_portable": 1, "state_dict": model.state_dict(), "module_attrs": attrs}


def save_portable(model, path: str | Path) -> Path:
    import torch

    with atomic_path(path) as tmp:
        torch.save(portable_state(model), tmp)
    return Path(path)


def load_portable(model, path: str | Path):
    """Reshape `model` (a fresh instance of the same architecture) to the saved widths and load the weights."""
    import torch

    from edgekd.core.inputs import check_finite_tensors, load_torch_file

    blob = load_torch_file(path)
    if not isinstance(blob, dict) or blob.get("edgekd_portable") != 1:
        from edgekd.models.loading import load_weights

        load_weights(model, path)
        return model
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
            setattr(mod, leaf, torch.nn.Parameter(new, requires_grad=cur.requires_grad) if isinstance(cur, torch.nn.Parameter) else new)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise EdgeKDError(f"checkpoint {path} does not match the model: {' '.join(str(exc).split())[:240]}") from None
    return model.eval()
