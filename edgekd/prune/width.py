"""Width reduction with Torch-Pruning (DepGraph): remove whole channels, keep the surviving weights.

Glue only: Torch-Pruning builds the dependency graph, ranks channel groups and rewrites the layers.
We add (1) channel rounding that never drops a layer below `round_to` channels (the library's floor
rounding can round a small layer down to zero), (2) a search over the channel ratio that hits a MACs or
parameter target, since MACs fall roughly with the square of the kept-channel fraction.
"""

from __future__ import annotations

import copy
from typing import Callable

from edgekd.errors import EdgeKDError
from edgekd.prune._util import output_layers
from edgekd.prune.mixed_dims import mixed_groups


def _pruner_class():
    import torch_pruning as tp

    class RoundingPruner(tp.pruner.BasePruner):
        """BasePruner whose channel rounding goes to the nearest multiple and keeps at least one multiple."""

        def _round_to(self, n_pruned, current_channels, round_to):
            keep = current_channels - n_pruned
            keep = int(round(keep / round_to)) * round_to
            keep = min(current_channels, max(keep, min(round_to, current_channels)))
            return current_channels - keep

    return RoundingPruner


def importance_fn(name: str):
    import torch_pruning as tp

    if name == "magnitude":
        return tp.importance.MagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.TaylorImportance()
    if name == "lamp":
        return tp.importance.LAMPImportance(p=2)
    if name == "random":
        return tp.importance.RandomImportance()
    raise EdgeKDError(f"unknown importance {name!r}: use magnitude, taylor, lamp or random")


def make_pruner(
    model,
    x,
    *,
    pruning_ratio: float,
    importance: str = "magnitude",
    global_pruning: bool = False,
    round_to: int | None = 8,
    iterative_steps: int = 1,
    ignored_layers: list | None = None,
    max_pruning_ratio: float = 0.95,
    notes: list | None = None,
):
    """A Torch-Pruning pruner over `model` that never touches the output layer(s).

    Channel groups whose dependency graph mixes two tensor dimensions (see mixed_dims) are left at
    their width; `notes` (when given) gets one line naming them.
    """
    from torch import nn

    # Recurrent layers are left whole: Torch-Pruning 1.6.1 has no GRU/RNN pruner and its LSTM one fails
    # (asserts on stacked layers, indexes out of range on a single one); derive's shortfall check reports it.
    recurrent = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    ignored = list(ignored_layers or []) + output_layers(model, x) + recurrent

    def build(skip):
        return _pruner_class()(
            model,
            x,
            importance=importance_fn(importance),
            global_pruning=global_pruning,
            pruning_ratio=pruning_ratio,
            max_pruning_ratio=max_pruning_ratio,
            iterative_steps=iterative_steps,
            ignored_layers=skip,
            round_to=round_to if round_to and round_to > 1 else None,
        )

    try:
        pruner = build(ignored)
        bad, keep = mixed_groups(pruner.DG, model, ignored_layers=pruner.ignored_layers,
                                 root_module_types=pruner.root_module_types)
        if keep:  # rebuilt: the library counts channels per group at construction (global pruning)
            pruner = build(ignored + keep)
    except EdgeKDError:
        raise
    except Exception as exc:  # noqa: BLE001 - tracing failures are a property of the user's model
        hint = (f" (its {', '.join(sorted({type(m).__name__ for m in recurrent}))} layer(s) may be why: Torch-Pruning "
                "1.6.1 cannot prune recurrent layers)" if recurrent else "")
        raise EdgeKDError(f"Torch-Pruning could not trace this model for channel pruning: {_first_line(exc)}{hint}") from None
    if recurrent and notes is not None:
        note = (f"{len(recurrent)} recurrent layer(s) ({', '.join(sorted({type(m).__name__ for m in recurrent}))}) "
                "left whole: Torch-Pruning 1.6.1 cannot prune a recurrent layer's hidden size")
        if note not in notes:
            notes.append(note)
    if bad and notes is not None:
        note = (f"left the channel group(s) tied to {', '.join(bad[:4])}"
                + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
                + " at full width: Torch-Pruning's graph couples them with another dimension (a transpose/permute, "
                "e.g. token-mixing layers); the other layers were pruned")
        if note not in notes:
            notes.append(note)
    return pruner


def _first_line(exc) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def step_pruner(pruner) -> None:
    """pruner.step(), with a library failure turned into one line naming the group it was pruning."""
    names = {m: n for n, m in pruner.model.named_modules()}
    last, inside = None, False
    try:
        for group in pruner.step(interactive=True):
            last, inside = names.get(group[0].dep.target.module, "?"), True
            group.prune()
            inside = False
    except Exception as exc:  # noqa: BLE001 - e.g. an IndexError from a group the graph got wrong
        where = (f" in the channel group of {last}" if inside else f" after the channel group of {last}" if last
                 else " at its first channel group")
        raise EdgeKDError(f"Torch-Pruning could not shrink this model's channels{where} "
                          f"({type(exc).__name__}: {_first_line(exc)}); name a smaller --student instead") from None


def _same_layers(src, dst, layers) -> list:
    """The modules of deep copy `dst` that correspond (by name) to `layers` of `src`."""
    if not layers:
        return []
    names = {m: n for n, m in src.named_modules()}
    mods = dict(dst.named_modules())
    return [mods[names[m]] if m in names and names[m] in mods else m for m in layers]


def prune_width_once(model, x, pruning_ratio: float, **kw):
    """Copy of `model` with `pruning_ratio` of each layer's channels removed (uniform, magnitude by default)."""
    m = copy.deepcopy(model)
    if pruning_ratio > 0:
        kw["ignored_layers"] = _same_layers(model, m, kw.get("ignored_layers"))  # the copy's own modules
        step_pruner(make_pruner(m, x, pruning_ratio=pruning_ratio, **kw))
    return m


def prune_width_to(model, x, target: float, metric: Callable, *, iters: int = 10, tol: float = 0.05, **kw):
    """Search the channel pruning ratio so that metric(model) lands at (or just under) `target`.

    Returns (pruned_model, channel_pruning_ratio, reached). The metric is a step function of the ratio
    (channels are rounded), so we bisect and keep the largest model not above target * (1 + tol).
    """
    hi_ratio = kw.pop("max_pruning_ratio", 0.95)
    hi_model = prune_width_once(model, x, hi_ratio, max_pruning_ratio=hi_ratio, **kw)
    if metric(hi_model) > target * (1 + tol):
        return hi_model, hi_ratio, False
    lo, hi = 0.0, hi_ratio
    best, best_ratio = hi_model, hi_ratio
    for _ in range(iters):
        mid = (lo + hi) / 2
        m = prune_width_once(model, x, mid, max_pruning_ratio=hi_ratio, **kw)
        if metric(m) <= target * (1 + tol):
            hi, best, best_ratio = mid, m, mid
        else:
            lo = mid
    return best, best_ratio, True
