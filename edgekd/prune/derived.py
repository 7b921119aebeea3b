"""Derive a student from the teacher: drop depth (residual blocks / layers) and/or width (channels).

The student starts from the teacher's surviving weights, which is a far better initialisation than a
random small network (DistilBERT, Torch-Pruning's "prune then distill" recipes).
"""

from __future__ import annotations

import copy
import math
import warnings as _warnings
from dataclasses import dataclass, field
from typing import Any

from edgekd.errors import EdgeKDError
from edgekd.models.surgery import drop_blocks
from edgekd.prune import _util
from edgekd.prune.depth import every_other, find_droppable
from edgekd.prune.shortfall import check_shortfall
from edgekd.prune.width import prune_width_to

MODES = ("width", "depth", "auto")
BY = ("macs", "params")


@dataclass
class DeriveResult:
    model: Any  # the derived nn.Module (eval mode)
    mode: str
    by: str
    target_ratio: float
    achieved_ratio: float  # of `by` (MACs or params), derived / teacher
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    latency_before: dict | None = None  # measured, PyTorch eager on this host, see latency dict fields
    latency_after: dict | None = None
    speed: dict | None = None  # paired derived/teacher latency ratio with its CI (interleaved)
    dropped_blocks: list[str] = field(default_factory=list)
    channel_pruning_ratio: float = 0.0  # fraction of each layer's channels removed by the width step
    round_to: int | None = 8  # channel counts were rounded to multiples of this
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. far above the asked ratio (shortfall.py)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "model"}
        d["macs_ratio"] = self.macs_after / max(1, self.macs_before)
        d["params_ratio"] = self.params_after / max(1, self.params_before)
        if self.speed:
            d["latency_speedup"] = self.speed["speedup"]
        return d


def derive(
    teacher,
    *,
    ratio: float,
    by: str = "macs",
    mode: str = "auto",
    example_input,
    round_to: int = 8,
    importance: str = "magnitude",
    ignored_layers: list | None = None,
    measure_latency: bool = True,
    threads: int = 2,
    drop: list[str] | None = None,
) -> DeriveResult:
    """Make a smaller copy of `teacher` with about `ratio` of its MACs (or parameters).

    mode="width": Torch-Pruning channel pruning, uniform across layers, channels rounded to `round_to`;
    mode="depth": drop every other droppable residual block / stacked layer until the ratio is met
    (depth alone is coarse: it stops at half the droppable blocks); mode="auto": depth first for about
    sqrt(ratio) of the cost, width for the rest (balanced like compound scaling). The teacher is not modified.
    drop: drop exactly these blocks (module names) instead of choosing; then width pruning fills the rest
    (the TA chain uses it so the student keeps the depth plan it was announced with).
    """
    import torch

    if by not in BY:
        raise EdgeKDError(f"unknown --by {by!r}: use macs or params")
    if mode not in MODES:
        raise EdgeKDError(f"unknown derive mode {mode!r}: use width, depth or auto")
    try:
        ratio = float(ratio)
    except (TypeError, ValueError):
        raise EdgeKDError(f"derive ratio must be a number in (0, 1], got {ratio!r}") from None
    if not (0.0 < ratio <= 1.0) or math.isnan(ratio):
        raise EdgeKDError(f"derive ratio must be in (0, 1] (fraction of the teacher's {by} kept), got {ratio}")
    if not isinstance(teacher, torch.nn.Module):
        raise EdgeKDError("derive needs a PyTorch nn.Module teacher")
    if round_to is not None and int(round_to) < 1:
        raise EdgeKDError(f"round_to must be >= 1, got {round_to}")

    x = _util.example_tensor(example_input)
    was_training = teacher.training
    ref_out = _util.first_tensor(_util.check_runs(teacher, x))
    teacher.train(was_training)
    model = copy.deepcopy(teacher).eval()
    model.requires_grad_(True)  # the teacher may be frozen; the derived student must be trainable
    macs0, params0 = _util.count(model, x)
    base = macs0 if by == "macs" else params0
    if base == 0:  # Torch-Pruning's counter found no layer modules
        raise EdgeKDError(f"cannot derive a student from {type(teacher).__name__}: it holds no nn.Conv/nn.Linear layers "
                          "to prune (a .pt2 program or an .onnx/.tflite file has none); give the teacher as "
                          "'module:factory' with --teacher-weights, or name a --student")
    target = ratio * base

    def metric(m) -> int:
        macs, params = _util.count(m, x)
        return macs if by == "macs" else params

    notes: list[str] = []
    dropped: list[str] = []
    if drop:
        model, dropped = _drop_given(model, x, list(drop), ref_out)
    elif mode in ("depth", "auto") and ratio < 1.0:
        depth_target = target if mode == "depth" else max(target, math.sqrt(ratio) * base)
        model, dropped = _reduce_depth(model, x, depth_target, by, metric, ref_out, notes, strict=(mode == "depth"))

    channel_ratio = 0.0
    reached = metric(model) <= target * 1.05
    if mode in ("width", "auto") and not reached:
        keep_layers = _same_modules(teacher, model, ignored_layers) if ignored_layers else None
        model, channel_ratio, reached = prune_width_to(
            model, x, target, metric, round_to=round_to, importance=importance, ignored_layers=keep_layers,
            notes=notes,
        )
    model.eval()
    out = _util.first_tensor(_util.check_runs(model, x))
    if out is None or ref_out is None or out.shape != ref_out.shape:
        raise EdgeKDError("derived model no longer produces the teacher's output shape; try mode='width'")

    macs1, params1 = _util.count(model, x)
    achieved = (macs1 if by == "macs" else params1) / max(1, base)
    if not reached:
        notes.append(
            f"could not reach {by} ratio {ratio:g}: smallest reached is {achieved:.4f} "
            f"(round_to={round_to} keeps at least {round_to} channels per layer"
            + ("; depth alone stops at every other block" if mode == "depth" else "")
            + ")"
        )
    shortfall = check_shortfall(teacher, model, x, by=by, ratio=ratio, achieved=achieved, base=base)
    if shortfall:  # loud: in the result, in Python's warnings, and printed by the CLI / pipeline
        _warnings.warn(shortfall, UserWarning, stacklevel=2)
    lat0 = lat1 = speed = None
    if measure_latency:
        lat0, lat1, speed = _util.measure_latency(teacher, model, x, threads=threads)
        teacher.train(was_training)
    return DeriveResult(
        model=model, mode=mode, by=by, target_ratio=ratio, achieved_ratio=round(achieved, 5),
        macs_before=macs0, macs_after=macs1, params_before=params0, params_after=params1,
        latency_before=lat0, latency_after=lat1, speed=speed, dropped_blocks=dropped,
        channel_pruning_ratio=round(channel_ratio, 4), round_to=round_to, notes=notes,
        warnings=[shortfall] if shortfall else [],
    )


def _drop_given(model, x, names, ref_out):
    mods = dict(model.named_modules())
    missing = [n for n in names if n not in mods]
    if missing:
        raise EdgeKDError(f"cannot drop blocks the model does not have: {missing[:3]}")
    model = drop_blocks(model, set(names))
    out = _util.first_tensor(_util.check_runs(model, x))
    if out is None or ref_out is None or out.shape != ref_out.shape:
        raise EdgeKDError(f"dropping {names[:3]} changes the model's output shape")
    return model, sorted(names)


def _same_modules(teacher, model, layers) -> list:
    """Map layers given on the teacher to the corresponding modules of its deep copy (by name)."""
    names = {id(m): n for n, m in teacher.named_modules()}
    mods = dict(model.named_modules())
    out = []
    for layer in layers:
        n = names.get(id(layer))
        if n is None or n not in mods:
            raise EdgeKDError("ignored_layers must be modules of the teacher")
        out.append(mods[n])
    return out


def _reduce_depth(model, x, target, by, metric, ref_out, notes, *, strict):
    """Drop every-other droppable blocks, largest first, while the cost stays above `target`."""
    blocks = every_other(find_droppable(model, x))
    if not blocks:
        if strict:
            raise EdgeKDError(
                "no droppable residual blocks or stacked layers found in this model; use mode 'width' or 'auto'"
            )
        notes.append("no droppable residual blocks / stacked layers found: width only")
        return model, []
    _, _, layer_macs, layer_params = _layer_costs(model, x)
    mods = dict(model.named_modules())
    by_params = by == "params"
    for b in blocks:
        sub = list(mods[b.name].modules())
        b.macs = sum(layer_macs.get(m) or 0 for m in sub)
        b.params = sum(p.numel() for p in mods[b.name].parameters())
    blocks.sort(key=lambda b: (b.params if by_params else b.macs), reverse=True)  # biggest savings first
    # Decide on real counts (leaf-layer sums miss ops such as attention matmuls).
    current, chosen = metric(model), []
    for b in blocks:
        if current <= target:
            break
        trial = drop_blocks(copy.deepcopy(model), set(chosen + [b.name]))
        value = metric(trial)
        if not strict and value < target:  # auto: never overshoot, width pruning fills the rest finely
            continue
        chosen.append(b.name)
        current = value
    if not chosen:
        return model, []
    backup = copy.deepcopy(model)
    model = drop_blocks(model, set(chosen))
    try:
        out = _util.first_tensor(_util.check_runs(model, x))
        ok = out is not None and out.shape == ref_out.shape
    except EdgeKDError:
        ok = False
    if not ok:
        notes.append("dropping blocks broke the model's forward pass: depth left unchanged")
        return backup, []
    return model, chosen


def _layer_costs(model, x):
    from edgekd.models.measure import count_ops

    return count_ops(model, x, layer_wise=True)
