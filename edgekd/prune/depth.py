"""Depth reduction: find blocks that can be dropped (residual blocks, stacked transformer layers).

Detection is generic: a block is droppable when it sits in an nn.Sequential / nn.ModuleList, holds
parameters, runs once on the example input, and maps its input shape to the same output shape, and
either (Sequential) its traced graph adds its own input back (a residual block), or (ModuleList) it is
one of a stack of same-class layers (a transformer / RNN layer stack). Dropping every other such block
is DistilBERT's "take every other layer" initialisation; the surviving layers keep their teacher weights.
Removing them is model surgery: edgekd.models.surgery.drop_blocks.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from edgekd.prune._util import first_tensor

_ADD_FUNCS = {operator.add, operator.iadd}
_ADD_METHODS = {"add", "add_", "__add__", "__iadd__"}


@dataclass
class Block:
    name: str  # qualified module name, e.g. "layer3.1" or "encoder.layer.5"
    parent: str  # qualified name of the container
    index: int  # position inside the container
    kind: str  # "residual" | "layer"
    macs: int = 0
    params: int = 0


def _is_residual(block) -> bool:
    """True when the block's traced graph adds its (unchanged) input to something: out = x + f(x)."""
    import torch
    import torch.fx

    try:
        gm = torch.fx.symbolic_trace(block)
    except Exception:  # noqa: BLE001 - untraceable blocks are simply not treated as residual
        return False
    inputs = {n for n in gm.graph.nodes if n.op == "placeholder"}
    for n in gm.graph.nodes:
        is_add = (n.op == "call_function" and (n.target in _ADD_FUNCS or n.target is torch.add)) or (
            n.op == "call_method" and n.target in _ADD_METHODS
        )
        if is_add and any(a in inputs for a in n.args if isinstance(a, torch.fx.Node)):
            return True
    return False


def _has_weights(module) -> bool:
    from torch import nn

    return any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) for m in module.modules())


def find_droppable(model, x) -> list[Block]:
    """All blocks that can be removed without breaking shapes (see module docstring)."""
    import torch
    from torch import nn

    containers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Sequential, nn.ModuleList))}
    children: dict[nn.Module, tuple[str, str, int]] = {}
    for cname, c in containers.items():
        for i, (sub, child) in enumerate(c.named_children()):
            if isinstance(child, (nn.Sequential, nn.ModuleList)) or not _has_weights(child):
                continue
            children.setdefault(child, (f"{cname}.{sub}" if cname else sub, cname, i))

    seen: dict[nn.Module, list] = {}

    def hook(mod, args, kwargs, out):
        t_in = first_tensor(args) if args else first_tensor(kwargs)
        t_out = first_tensor(out)
        seen.setdefault(mod, []).append(
            (tuple(t_in.shape) if t_in is not None else None, tuple(t_out.shape) if t_out is not None else None)
        )

    hooks = [m.register_forward_hook(hook, with_kwargs=True) for m in children]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()

    blocks: list[Block] = []
    for child, (name, parent, idx) in children.items():
        calls = seen.get(child, [])
        if len(calls) != 1 or calls[0][0] is None or calls[0][0] != calls[0][1]:
            continue
        container = containers[parent]
        if isinstance(container, nn.ModuleList):
            same = sum(type(c) is type(child) for c in container)
            if same >= 2:
                blocks.append(Block(name, parent, idx, "layer"))
        elif _is_residual(child):
            blocks.append(Block(name, parent, idx, "residual"))
    return blocks


def every_other(blocks: list[Block]) -> list[Block]:
    """Blocks at odd positions of their container: dropping them all keeps layers 0, 2, 4, ..."""
    return [b for b in blocks if b.index % 2 == 1]
