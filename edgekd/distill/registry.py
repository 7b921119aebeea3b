"""The loss types a recipe's [[loss]] entry can name, each declared once, beside its loss module.

    @register_loss("dkd", student="logits", teacher="logits", labels="required",
                   params={"temperature": number(4.0, lo=0, lo_open=True), "beta": number(8.0, lo=0)})
    def make_dkd(p, s_tap, t_tap) -> nn.Module:
        return DKDLoss(p["temperature"], beta=p["beta"])

A declaration says everything the rest of edgekd needs to know about a loss:
- params: its recipe keys (besides type/name/weight/start/end/warmup, which every loss has), each with a
  default and a check; parse_recipe rejects other keys and runs the checks, so a bad value fails before
  training. `check(params)` may add a test across keys (message or None).
- student: what it reads from the student (STUDENT_TAPS): its logits, pairs of layers (one loss module
  per pair, averaged) or one embedding (flattened per sample). The layer kinds add their own keys.
- teacher: "logits", "features" (the teacher side of each layer pair) or None (labels only);
  cache_teacher(params) -> (tag, reduce) shrinks a teacher feature before it is cached (AT keeps H*W).
- labels: "none", "optional" (passed when there are labels) or "required".
The decorated factory gets the params with defaults filled in and, for layer losses, the two Taps
(module path, per-sample shape) and returns the loss nn.Module; terms.py binds it to the models.

Built-in losses live in edgekd/distill/losses/ (recipe.loss_types() imports every module there).
This module imports no torch and nothing else from edgekd.distill, so recipe parsing stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

Check = Callable[[str, Any], "str | None"]  # (key, value) -> error message or None


@dataclass(frozen=True)
class Param:
    """One recipe key of a loss: its default and the check of a value the recipe gives."""

    default: Any = None
    check: Check | None = None


@dataclass(frozen=True)
class Tap:
    """A hooked tensor a layer loss reads: module path ("fc:input" = the input of fc) and per-sample shape."""

    path: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def number(default: float, lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Param:
    def check(key: str, v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"{key} must be a number, got {v!r}"
        if not math.isfinite(v):  # NaN passes every comparison below
            return f"{key} must be a finite number, got {v}"
        if lo is not None and hi is not None and not lo <= v <= hi:
            return f"{key} must lie in [{lo:g}, {hi:g}], got {v}"
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"{key} must be {'>' if lo_open else '>='} {lo:g}, got {v}"
        if hi is not None and v > hi:
            return f"{key} must be <= {hi:g}, got {v}"
        return None

    return Param(default, check)


def flag(default: bool = False) -> Param:
    return Param(default, lambda key, v: None if isinstance(v, bool) else f"{key} must be true or false, got {v!r}")


def _is_pair(p: Any) -> bool:
    return isinstance(p, list) and len(p) == 2 and all(isinstance(q, str) for q in p)


def layer_pairs() -> Param:
    """`pairs`: "auto" or [["student.layer", "teacher.layer"], ...]."""
    ok = lambda v: v == "auto" or (isinstance(v, list) and v and all(_is_pair(p) for p in v))  # noqa: E731
    return Param("auto", lambda key, v: None if ok(v) else
                 f"{key} must be \"auto\" or [[\"student.layer\", \"teacher.layer\"], ...]")


def layer_pair() -> Param:
    """`embedding`: "auto" or ["student.tap", "teacher.tap"]."""
    return Param("auto", lambda key, v: None if v == "auto" or _is_pair(v) else
                 f"{key} must be \"auto\" or [\"student.tap\", \"teacher.tap\"]")


# What a loss can read from the student, with the recipe keys each kind adds. `layers` names the key
# that picks the layers; "auto" there lets `optional = true` drop the loss when no such layers exist.
@dataclass(frozen=True)
class StudentTaps:
    params: Mapping[str, Param] = field(default_factory=dict)
    layers: str | None = None


STUDENT_TAPS: dict[str, StudentTaps] = {
    "logits": StudentTaps(),
    "pairs": StudentTaps({"pairs": layer_pairs(), "max_pairs": number(2), "optional": flag()}, "pairs"),
    "embedding": StudentTaps({"embedding": layer_pair(), "optional": flag()}, "embedding"),
}
TEACHER_OUTPUTS = ("logits", "features", None)
LABELS = ("none", "optional", "required")


@dataclass(frozen=True)
class LossType:
    name: str
    make: Callable[..., Any]  # (params, student Tap | None, teacher Tap | None) -> nn.Module
    params: Mapping[str, Param]
    student: str = "logits"
    teacher: str | None = "logits"
    labels: str = "none"
    cache_teacher: Callable[[dict[str, Any]], tuple[str, Callable]] | None = None
    check: Callable[[dict[str, Any]], "str | None"] | None = None

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self.params)

    def validate(self, given: Mapping[str, Any]) -> str | None:
        """The first problem with the recipe's values (message starting with the key), or None."""
        for key, param in self.params.items():
            if key in given and param.check is not None:
                problem = param.check(key, given[key])
                if problem:
                    return problem
        return self.check(dict(given)) if self.check is not None else None

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The recipe's values with the defaults filled in: what the factory receives."""
        return {**{k: p.default for k, p in self.params.items()}, **given}

    def layers_are_auto(self, params: Mapping[str, Any]) -> bool:
        key = STUDENT_TAPS[self.student].layers
        return key is not None and params.get(key, "auto") == "auto"


LOSSES: dict[str, LossType] = {}


def register_loss(name: str, *, student: str = "logits", teacher: str | None = "logits", labels: str = "none",
                  params: Mapping[str, Param] | None = None,
                  cache_teacher: Callable[[dict[str, Any]], tuple[str, Callable]] | None = None,
                  check: Callable[[dict[str, Any]], "str | None"] | None = None):
    """Decorator: register `make` as the factory of recipe loss `type = name` (see the module docstring)."""
    if student not in STUDENT_TAPS:
        raise ValueError(f"loss '{name}': student must be one of {sorted(STUDENT_TAPS)}, got {student!r}")
    if teacher not in TEACHER_OUTPUTS or (teacher == "features") != (student != "logits"):
        raise ValueError(f"loss '{name}': teacher must be 'logits' or None for logit losses, 'features' for layer losses")
    if labels not in LABELS:
        raise ValueError(f"loss '{name}': labels must be one of {LABELS}, got {labels!r}")
    own = dict(params or {})
    clash = set(own) & set(STUDENT_TAPS[student].params)
    if clash:
        raise ValueError(f"loss '{name}': {sorted(clash)} are set by student = {student!r}")

    def deco(make):
        if name in LOSSES:
            raise ValueError(f"loss type '{name}' is already registered")
        LOSSES[name] = LossType(name, make, {**own, **STUDENT_TAPS[student].params}, student, teacher, labels,
                                cache_teacher, check)
        return make

    return deco
