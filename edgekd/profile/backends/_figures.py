"""Small formatting helpers the backends' report descriptions share."""

from __future__ import annotations

from typing import Any


def kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def cycles(result: dict[str, Any]) -> list[str]:
    return [f"{result['cycles_total']:,.0f} cycles"] if result.get("cycles_total") is not None else []


def npu_share(on: int, off: int) -> float | None:
    """The share of compute ops the NPU takes; None when there are none."""
    return on / (on + off) if (on + off) else None
