"""The one result format every profiling backend returns, and the report that gathers them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

KINDS = ("measured", "simulated", "estimated")
# Keys every result carries (ARCHITECTURE.md "latency dict"); None where a backend cannot know them.
LATENCY_KEYS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "runs", "warmup", "threads", "runtime", "kind", "where")


def make_result(kind: str, where: str, backend: str, **figures: Any) -> dict[str, Any]:
    """A latency dict: the common keys first (None when unknown), then the backend's own figures."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    res: dict[str, Any] = {k: None for k in LATENCY_KEYS}
    res.update(figures)
    res.update(kind=kind, where=where, backend=backend)
    return res


@dataclass
class ProfileReport:
    model: str
    target: str
    results: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def primary(self) -> dict[str, Any] | None:
        """The headline figure: the first measured result, else the first one."""
        for r in self.results:
            if r.get("kind") == "measured" and r.get("p50_ms") is not None:
                return r
        return self.results[0] if self.results else None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
