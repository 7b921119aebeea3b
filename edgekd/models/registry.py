"""Where model families register by name (timm's pattern): `@register_model("cnn-s")` on a factory.

This module imports no model family, so any module (edgekd.models.students, a user's plugin) can register
into it; lookups go through edgekd.models.factory, which loads the built-in families first.
"""

from __future__ import annotations

from typing import Callable

_REGISTRY: dict[str, Callable] = {}


def register_model(name: str):
    def deco(fn: Callable) -> Callable:
        _REGISTRY[name] = fn
        return fn

    return deco


def registered() -> dict[str, Callable]:
    """Name -> factory for every family registered so far (a copy)."""
    return dict(_REGISTRY)
