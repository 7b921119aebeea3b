"""A small timm-like registry: `create_model("cnn-s", in_channels=1, num_classes=10)`."""

from __future__ import annotations

from typing import Callable

from edgekd.errors import EdgeKDError

_REGISTRY: dict[str, Callable] = {}


def register_model(name: str):
    def deco(fn: Callable) -> Callable:
        _REGISTRY[name] = fn
        return fn

    return deco


def list_models() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def create_model(name: str, *, in_channels: int = 1, num_classes: int = 10, **kwargs):
    _load_builtins()
    if name not in _REGISTRY:
        raise EdgeKDError(f"unknown model '{name}'; built-in students: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](in_channels=in_channels, num_classes=num_classes, **kwargs)


def is_registered(name: str) -> bool:
    _load_builtins()
    return name in _REGISTRY


def _load_builtins() -> None:
    import edgekd.models.students  # noqa: F401  (registers on import)
