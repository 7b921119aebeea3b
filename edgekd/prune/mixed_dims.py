"""Find Torch-Pruning channel groups that mix two different tensor dimensions.

Torch-Pruning 1.6.1's dependency graph passes channel indices straight through transpose/permute, so
in an MLP-Mixer the 64-wide channel group also claims the in-features of the token-mixing Linear
(16 tokens): pruning it indexes past the end ("index 16 is out of bounds for dimension 0 with size
16"), or worse, cuts the wrong dimension. A group is mixed when some layer in it has fewer channels
along the coupled dimension than the indices the group asks it to remove.
"""

from __future__ import annotations


def mixed_groups(dg, model, *, ignored_layers, root_module_types) -> tuple[list[str], list]:
    """(names of the layers whose dimension does not match their group, the groups' out-channel layers).

    Ignoring the returned layers makes Torch-Pruning skip those groups (it skips any group holding an
    ignored layer's output channels), so those widths stay as they are and everything else is pruned.
    """
    names = {m: n for n, m in model.named_modules()}
    bad: list[str] = []
    keep: list = []
    for group in dg.get_all_groups(ignored_layers=ignored_layers, root_module_types=root_module_types):
        mismatched, outs = [], []
        for dep, idxs in group:
            module = dep.target.module
            if module not in names:  # a traced op (add, transpose, reshape), not a layer
                continue
            is_out = dg.is_out_channel_pruning_fn(dep.handler)
            if is_out:
                outs.append(module)
            pruner = dg.get_pruner_of_module(module)
            size = None if pruner is None else (pruner.get_out_channels if is_out else pruner.get_in_channels)(module)
            if size is not None and idxs and max(int(i) for i in idxs) >= size:
                mismatched.append(names[module] or type(module).__name__)
        if mismatched:
            bad += [n for n in mismatched if n not in bad]
            keep += [m for m in outs if m not in keep]
    return bad, keep
