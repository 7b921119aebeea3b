"""Build registered models by name: `create_model("cnn-s", in_channels=1, num_classes=10)`."""

from __future__ import annotations

from typing import Callable

from edgekd.errors import EdgeKDError


def list_models() -> list[str]:
    return sorted(_families())


def is_registered(name: str) -> bool:
    return name in _families()


def create_model(name: str, *, in_channels: int = 1, num_classes: int = 10, **kwargs):
    families = _families()
    if name not in families:
        raise EdgeKDError(f"unknown model '{name}'; built-in students: {', '.join(sorted(families))}")
    return families[name](in_channels=in_channels, num_classes=num_classes, **kwargs)


def _families() -> dict[str, Callable]:
    import edgekd.models.students  # noqa: F401  (the built-in families register on import; torch loads here)
    from edgekd.models.registry import registered

    return registered()
