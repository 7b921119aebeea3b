"""Capture intermediate tensors by module path with forward hooks (a model's forward is never rewritten).

A tap is "path" (the module's output) or "path:input" (its first input, e.g. the embedding that
enters the classifier). `auto_pairs` and `auto_embedding` pick taps for any pair of CNN classifiers.
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

from edgekd.errors import EdgeKDError


def _first_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        return x[0]
    if hasattr(x, "last_hidden_state"):
        return x.last_hidden_state
    return None


def resolve(model: nn.Module, path: str, who: str = "model") -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        close = difflib.get_close_matches(path, names, n=3)
        hint = f"; did you mean {', '.join(close)}" if close else f"; it has {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}"
        raise EdgeKDError(f"{who} has no layer '{path}'{hint}") from None


class FeatureTaps:
    """Context-free hook set: `taps.clear()` before a forward, read `taps.out[tap]` after it."""

    def __init__(self, model: nn.Module, taps: list[str], who: str = "model"):
        self.out: dict[str, torch.Tensor] = {}
        self._handles = []
        for tap in dict.fromkeys(taps):
            path, _, kind = tap.partition(":")
            mod = resolve(model, path, who)
            if kind == "input":
                self._handles.append(mod.register_forward_pre_hook(self._pre(tap)))
            elif kind in ("", "output"):
                self._handles.append(mod.register_forward_hook(self._post(tap)))
            else:
                raise EdgeKDError(f"tap '{tap}': use 'layer.path' or 'layer.path:input'")

    def _pre(self, tap):
        def hook(_m, args):
            t = _first_tensor(args)
            if t is not None:
                self.out[tap] = t

        return hook

    def _post(self, tap):
        def hook(_m, _args, output):
            t = _first_tensor(output)
            if t is not None:
                self.out[tap] = t

        return hook

    def clear(self):
        self.out = {}

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []


def trace_shapes(model: nn.Module, example: torch.Tensor) -> list[tuple[str, tuple[int, ...], str]]:
    """Run one forward and list (module path, output shape without batch, module type) in call order."""
    seen: list[tuple[str, tuple[int, ...], str]] = []
    handles = []
    for name, mod in model.named_modules():
        if not name:
            continue

        def hook(_m, _a, out, _name=name, _type=type(mod).__name__):
            t = _first_tensor(out)
            if t is not None:
                seen.append((_name, tuple(t.shape[1:]), _type))

        handles.append(mod.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return seen


def auto_pairs(student: nn.Module, teacher: nn.Module, example_s: torch.Tensor, example_t: torch.Tensor,
               max_pairs: int = 2) -> list[tuple[str, str]]:
    """Pair the deepest stages of equal spatial size: the last student/teacher module producing each
    resolution both models have (outermost block first), deepest `max_pairs` resolutions."""
    ts, tt = trace_shapes(student, example_s), trace_shapes(teacher, example_t)

    def outer(trace):
        # per size, the shallowest modules (stages, blocks) win over their internals (a block's expansion
        # conv may already run at the next stage's input size); among those, the last called
        best: dict[tuple[int, int], tuple[int, str]] = {}
        for name, shape, _ in trace:
            if len(shape) == 3:
                depth = name.count(".")
                cur = best.get(shape[1:])
                if cur is None or depth <= cur[0]:
                    best[shape[1:]] = (depth, name)
        return {hw: name for hw, (_, name) in best.items()}

    s_stage, t_stage = outer(ts), outer(tt)
    common = [hw for hw in s_stage if hw in t_stage]
    # deepest = smallest maps; skip 1x1 (pooled) maps, which carry no spatial structure
    common = [hw for hw in common if hw[0] * hw[1] > 1]
    common.sort(key=lambda hw: hw[0] * hw[1])
    pairs = [(s_stage[hw], t_stage[hw]) for hw in common[:max_pairs]]
    if not pairs and not any(len(shape) == 3 for _, shape, _ in ts + tt):
        # no feature maps at all (MLPs on feature vectors): hint on the penultimate embeddings instead
        s_lin = [name for name, _, typ in ts if typ == "Linear"]
        t_lin = [name for name, _, typ in tt if typ == "Linear"]
        if s_lin and t_lin:
            pairs = [(s_lin[-1] + ":input", t_lin[-1] + ":input")]
    if not pairs:
        raise EdgeKDError("no student and teacher layers with the same spatial size were found; "
                          "name the layer pairs in the recipe (pairs = [[\"student.layer\", \"teacher.layer\"]])")
    return pairs


def auto_embedding(model: nn.Module, example: torch.Tensor, who: str = "model") -> str:
    """The input of the last nn.Linear called in forward: the penultimate embedding of a classifier."""
    trace = trace_shapes(model, example)
    linears = [name for name, _, typ in trace if typ == "Linear"]
    if not linears:
        raise EdgeKDError(f"{who} has no nn.Linear head to take the embedding from; name the layer in the recipe "
                          "(embedding = \"path:input\")")
    return linears[-1] + ":input"
