"""The latency record every stage reports (docs/ARCHITECTURE.md, "Every latency dict")."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from edgekd.runtime.stats import summarize

KINDS = ("measured", "simulated", "estimated")


@dataclass(frozen=True)
class Latency:
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    runs: int | None
    warmup: int | None
    threads: int | None
    runtime: str
    kind: str  # measured | simulated | estimated: how far to trust the figure
    where: str  # the machine, runtime and method, in words a reader can check
    extra: dict[str, Any] = field(default_factory=dict)  # backend-specific figures (batch, seq_len, ...)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"latency kind {self.kind!r} is not one of {', '.join(KINDS)}")
        clash = set(self.extra) & {f.name for f in fields(self)}
        if clash:
            raise ValueError(f"extra repeats the documented latency keys {sorted(clash)}")

    @classmethod
    def from_ms(cls, ms, *, digits: int | None = None, runs: int | None = None, **rest: Any) -> Latency:
        """From per-invoke milliseconds; runs defaults to the number of samples."""
        stats = summarize(ms)
        if digits is not None:
            stats = {k: round(v, digits) for k, v in stats.items()}
        return cls(**stats, runs=len(ms) if runs is None else runs, **rest)

    def to_dict(self) -> dict[str, Any]:
        """The documented keys in their documented order, then the extra figures."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**out, **self.extra}
