"""Model surgery: remove named blocks from their containers (derive's depth reduction, and rebuilding its files)."""

from __future__ import annotations

from collections import OrderedDict


def drop_blocks(model, names: set[str]):
    """Remove the named blocks in place (Sequential keeps the survivors' names, so their weights map 1:1)."""
    from torch import nn

    modules = dict(model.named_modules())
    by_parent: dict[str, set[str]] = {}
    for n in names:
        parent, _, sub = n.rpartition(".")
        by_parent.setdefault(parent, set()).add(sub)
    for parent, subs in by_parent.items():
        container = modules[parent]
        kept = [(k, m) for k, m in container.named_children() if k not in subs]
        if isinstance(container, nn.Sequential):
            new = nn.Sequential(OrderedDict(kept))
        else:
            new = nn.ModuleList([m for _, m in kept])
        if parent == "":  # the model itself is the container: the new container is the model
            model = new
            continue
        owner_name, _, attr = parent.rpartition(".")
        owner = modules[owner_name] if owner_name else model
        old_len = len(container)
        setattr(owner, attr, new)
        # Keep layer-count bookkeeping consistent (nn.TransformerEncoder.num_layers, HF config.num_hidden_layers).
        if getattr(owner, "num_layers", None) == old_len:
            owner.num_layers = len(new)
        for m in model.modules():  # HF models keep the layer count in a config shared by submodules
            cfg = getattr(m, "config", None)
            if cfg is not None and getattr(cfg, "num_hidden_layers", None) == old_len:
                cfg.num_hidden_layers = len(new)
    return model
