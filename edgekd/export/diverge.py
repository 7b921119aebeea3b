"""Name the first PyTorch layer whose output the exported file no longer reproduces.

Every leaf module's output (one sample) is looked up among the file's intermediate tensors of the same
size (NHWC files are permuted back). Converters fuse layers (conv+bn+relu), so a missing match alone
proves nothing; but an error propagates, so nothing after a real divergence matches. The culprit is the
first layer after the last layer that still matches.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from edgekd.export import execute
from edgekd.export.sample import take

# an intermediate tensor "matches" when max |diff| <= REL * max |ref|
REL = 1e-2


def _torch_activations(model, inputs: tuple) -> list[tuple[str, str, np.ndarray]]:
    import torch

    acts: list[tuple[str, str, np.ndarray]] = []
    hooks = []

    def hook(name, mod):
        def fn(_m, _inp, out):
            t = out[0] if isinstance(out, (tuple, list)) and out else out
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() > 1:
                acts.append((name, type(mod).__name__, t.detach().float().cpu().numpy()))
        return fn

    for name, mod in model.named_modules():
        if name and not any(True for _ in mod.children()):
            hooks.append(mod.register_forward_hook(hook(name, mod)))
    try:
        with torch.inference_mode():
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return acts


def _views(a: np.ndarray, target_shape: tuple) -> list[np.ndarray]:
    """The candidate tensor read in PyTorch's layout: as is, or NHWC -> NCHW."""
    out = []
    if a.size != int(np.prod(target_shape)):
        return out
    if len(target_shape) == 4 and a.ndim == 4:
        n, c, h, w = target_shape
        if a.shape == (n, h, w, c):
            out.append(a.transpose(0, 3, 1, 2))
    out.append(a.reshape(target_shape))
    return out


def _matches(ref: np.ndarray, cands: list[np.ndarray]) -> bool:
    scale = max(float(np.abs(ref).max()), 1e-6)
    for c in cands:
        for v in _views(c, ref.shape):
            if float(np.abs(v.astype(np.float64) - ref).max()) <= REL * scale:
                return True
    return False


def first_diverging_layer(model, inputs: tuple, path) -> str | None:
    """'name (Type)' of the first layer that diverges, or None when every traced layer matches."""
    one = take(inputs, 0, 1)
    acts = _torch_activations(model, one)
    if not acts:
        return None
    _, inter = execute.run_file(path, [a.numpy() for a in one], intermediates=True)
    by_size: dict[int, list[np.ndarray]] = defaultdict(list)
    for v in inter.values():
        if np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer):
            by_size[int(v.size)].append(np.asarray(v, dtype=np.float32))
    last_ok = -1
    for i, (_, _, ref) in enumerate(acts):
        if _matches(ref, by_size.get(int(ref.size), [])):
            last_ok = i
    if last_ok == len(acts) - 1:
        return None
    name, kind, _ = acts[last_ok + 1]
    return f"{name} ({kind})"
