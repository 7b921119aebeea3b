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


def _memory_mb(r: dict[str, Any]) -> tuple[float | None, str]:
    """The memory figure a budget compares: what the model adds, else the process peak, else NPU SRAM."""
    if r.get("model_rss_mb") is not None:
        return r["model_rss_mb"], "peak RSS growth while loading + running the model"
    if r.get("peak_rss_mb") is not None:
        return r["peak_rss_mb"], "process peak RSS"
    if r.get("sram_used_bytes") is not None:
        return r["sram_used_bytes"] / 2**20, "NPU SRAM used (Vela)"
    return None, ""


def check_budgets(budgets: Any, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The target's optional budgets against each result: pass / fail, or skip with the reason.

    A latency budget is a claim about the device, so a host measurement standing in for an
    unreachable device is skipped, never passed.
    """
    out = []
    for r in results:
        def add(name, limit, value, why="", what=""):
            if limit is None:
                return
            status = "skip" if value is None or why else ("pass" if value <= limit else "fail")
            out.append({"budget": name, "limit": limit, "value": value, "status": status, "backend": r.get("backend"),
                        "kind": r.get("kind"), "what": what, "why": why})

        device = r.get("backend") != "host-fallback"
        add("latency_ms", budgets.latency_ms, r.get("p50_ms"),
            "" if device else "measured on the host, not the device",
            "p50" if r.get("p50_ms") is not None else "no latency figure from this backend")
        add("size_bytes", budgets.size_bytes, r.get("file_size_bytes"), what="model file size")
        mem, what = _memory_mb(r)
        add("peak_memory_mb", budgets.peak_memory_mb, mem, "" if device else "measured on the host, not the device", what)
    return out


@dataclass
class ProfileReport:
    model: str
    target: str
    results: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    budgets: list[dict[str, Any]] = field(default_factory=list)  # check_budgets() rows

    @property
    def budgets_failed(self) -> list[dict[str, Any]]:
        return [b for b in self.budgets if b["status"] == "fail"]

    @property
    def primary(self) -> dict[str, Any] | None:
        """The headline figure: the first measured result, else the first one."""
        for r in self.results:
            if r.get("kind") == "measured" and r.get("p50_ms") is not None:
                return r
        return self.results[0] if self.results else None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
