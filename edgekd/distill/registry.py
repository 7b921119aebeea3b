"""The loss types a recipe's [[loss]] entry can name, each declared once.

    @register_loss("dkd", keys={"temperature", "alpha", "beta"}, check=my_check)
    def build_dkd(spec, student, teacher, example) -> list[Term]: ...

`keys` are the entry's own settings (besides type/name/weight/start/end, which every loss has);
parse_recipe rejects any other key. `check(params)` returns an error message (str) or None; it runs
when the recipe is parsed, so a bad value fails before any training starts. The builder turns the
parsed LossSpec into Terms bound to the two models (edgekd/distill/terms.py holds the built-in ones).

This module imports nothing else from edgekd.distill, so recipe.py and terms.py can both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class LossType:
    name: str
    keys: frozenset[str]
    build: Callable[..., list]  # (spec, student, teacher, example) -> list[Term]
    check: Callable[[dict[str, Any]], "str | None"] | None = None


LOSSES: dict[str, LossType] = {}


def register_loss(name: str, keys: Iterable[str] = (), check: Callable[[dict[str, Any]], "str | None"] | None = None):
    """Decorator: register `build` as the builder of recipe loss `type = name`."""

    def deco(build):
        if name in LOSSES:
            raise ValueError(f"loss type '{name}' is already registered")
        LOSSES[name] = LossType(name, frozenset(keys), build, check)
        return build

    return deco


def loss_types() -> dict[str, LossType]:
    """All registered types; importing terms registers the built-in ones."""
    import edgekd.distill.terms  # noqa: F401

    return LOSSES


# Small validators for `check` functions: each returns an error message or None.

def number(params: dict[str, Any], key: str, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False) -> str | None:
    if key not in params:
        return None
    v = params[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return f"{key} must be a number, got {v!r}"
    if lo is not None and (v <= lo if lo_open else v < lo):
        return f"{key} must be {'>' if lo_open else '>='} {lo:g}, got {v}"
    if hi is not None and v > hi:
        return f"{key} must be <= {hi:g}, got {v}"
    return None


def boolean(params: dict[str, Any], key: str) -> str | None:
    if key in params and not isinstance(params[key], bool):
        return f"{key} must be true or false, got {params[key]!r}"
    return None


def first_error(*messages: "str | None") -> str | None:
    return next((m for m in messages if m), None)
