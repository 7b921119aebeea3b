"""report.json (stable schema, see README) and report.md from the run's artifacts."""

from __future__ import annotations

import json
from typing import Any

from edgekd.core import Artifact, atomic_write_text

REPORT_SCHEMA = 1


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def latency_label(lat: dict[str, Any] | None) -> str:
    if not lat:
        return "—"
    where = lat.get("where", "?")
    return f"{lat.get('kind', '?')}: {lat.get('runtime', '?')}, {lat.get('threads', '?')} thr, {lat.get('runs', '?')} runs, {where}"


def where_short(lat: dict[str, Any]) -> str:
    """A few words on where a figure comes from; the full sentence stays in `where`."""
    if lat.get("backend") == "host-fallback":
        return f"this host (no {lat.get('target', 'target')} device reachable)"
    if lat.get("kind") == "measured" and str(lat.get("where", "")).startswith("host"):
        return "this host"
    return f"{lat.get('target', '?')}"


def artifact_rows(artifacts: list[Artifact]) -> list[list[str]]:
    rows = []
    for a in artifacts:
        lat = a.latency or {}
        how = f"{lat['kind']}, {lat.get('runtime', '?')}, {where_short(lat)}" if lat else "—"
        rows.append([
            a.name, _fmt(a.accuracy), _fmt(a.size_bytes / 1024 if a.size_bytes else None, ".1f"),
            _fmt(lat.get("p50_ms"), ".3f"), _fmt(lat.get("p90_ms"), ".3f"), how,
        ])
    return rows


HEADERS = ["artifact", "accuracy %", "size KiB", "p50 ms", "p90 ms", "latency"]


def write_reports(run, report: dict[str, Any], artifacts: list[Artifact]) -> None:
    report = {"schema": REPORT_SCHEMA, **report, "artifacts": [a.to_dict() for a in artifacts]}
    atomic_write_text(run.path("report.json"), json.dumps(report, indent=2, default=str) + "\n")
    lines = [f"# edgekd compress — target `{report['target']['name']}`", ""]
    lines += [f"- data: {report['data']['name']} ({report['data']['test']} test images)",
              f"- teacher: `{report['teacher']['spec']}` ({report['teacher']['macs']:,} MACs, {report['teacher']['params']:,} params)",
              f"- student: `{report['student']['spec']}` ({report['student']['macs']:,} MACs, {report['student']['params']:,} params)",
              f"- distillation: recipe `{report['distill'].get('recipe')}`, {report['distill'].get('epochs')} epochs", ""]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in artifact_rows(artifacts)]
    lines += ["", "## How each latency was obtained", ""]
    for a in artifacts:
        lines.append(f"- **{a.name}**: {latency_label(a.latency)}")
        for extra in (a.extra or {}).get("other_latencies", []):
            lines.append(f"  - also {latency_label(extra)}: p50 {_fmt(extra.get('p50_ms'), '.3f')} ms")
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    atomic_write_text(run.path("report.md"), "\n".join(lines) + "\n")
