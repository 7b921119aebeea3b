"""report.json (stable schema, see README) and report.md from the run's artifacts."""

from __future__ import annotations

import json
from typing import Any

from edgekd.backends import backend_of_result
from edgekd.core import Artifact, atomic_write_text

REPORT_SCHEMA = 1


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def latency_label(lat: dict[str, Any] | None) -> str:
    """The full sentence: kind, runtime, threads, runs, where, and the figures beyond p50/p90."""
    if not lat:
        return "—"
    where = lat.get("where", "?")
    runs = f"{lat['runs']} runs, " if lat.get("runs") else ""
    label = f"{lat.get('kind', '?')}: {lat.get('runtime', '?')}, {lat.get('threads', '?')} thr, {runs}{where}"
    figs = figures(lat)
    return f"{label} — {figs}" if figs else label


def where_short(lat: dict[str, Any]) -> str:
    """A few words on where a figure comes from (the backend's own); the full sentence stays in `where`."""
    backend = backend_of_result(lat)
    if backend is not None:
        return backend.where_short(lat)
    if lat.get("kind") == "measured" and str(lat.get("where", "")).startswith("host"):
        return "this host"
    return lat.get("target", "target")


def figures(lat: dict[str, Any]) -> str:
    """What a result has beyond p50/p90, in a few words: the backend's own figures, then the measured ones."""
    if lat.get("available") is False:
        return f"unavailable: {lat.get('error', '?')}"
    backend = backend_of_result(lat)
    f = backend.figures(lat) if backend is not None else []
    if lat.get("kind") == "measured":
        if lat.get("p99_ms") is not None:
            f.append(f"p99 {lat['p99_ms']:.3f} ms")
        if lat.get("init_ms") is not None:
            f.append(f"init {lat['init_ms']:.1f} ms")
        if lat.get("peak_rss_mb") is not None:
            f.append(f"peak RSS {lat['peak_rss_mb']:.1f} MB")
    return ", ".join(f)


def result_summary(lat: dict[str, Any], with_p50: bool = True) -> str:
    """One result in a table cell: kind, where (short), p50 when asked, figures."""
    p50 = f"p50 {lat['p50_ms']:.3f} ms" if with_p50 and lat.get("p50_ms") is not None else ""
    figs = ", ".join(x for x in (p50, figures(lat)) if x)
    how = f", {lat.get('runtime')} {lat.get('threads')} thr" if lat.get("kind") == "measured" else ""
    return f"{lat.get('kind', '?')}, {where_short(lat)}{how}" + (f": {figs}" if figs else "")


def no_figure(a: Artifact) -> str:
    """What stands in the latency column when a file has no figure: why, when the profile said (Core ML)."""
    notes = (a.extra or {}).get("profile_notes", [])
    return "not measurable here (no Apple device)" if any("not measurable here" in n for n in notes) else "—"


def artifact_rows(artifacts: list[Artifact]) -> list[list[str]]:
    rows = []
    for a in artifacts:
        lat = a.latency or {}
        cells = [result_summary(lat, with_p50=False)] if lat else [no_figure(a)]
        cells += [f"also {result_summary(o)}" for o in (a.extra or {}).get("other_latencies", [])]
        rows.append([
            a.name, _fmt(a.accuracy), _fmt(a.size_bytes / 1024 if a.size_bytes else None, ".1f"),
            _fmt(lat.get("p50_ms"), ".3f"), _fmt(lat.get("p90_ms"), ".3f"), "; ".join(cells),
        ])
    return rows


def budget_lines(report: dict[str, Any], artifacts: list[Artifact]) -> list[str]:
    """The profile's own budget rows (pass / fail / skip with why) per shipped artifact."""
    out = []
    for a in artifacts:
        for b in (a.extra or {}).get("budgets", []):
            val = "—" if b.get("value") is None else f"{b['value']:.4g}"
            why = f" (skipped: {b['why']})" if b.get("why") else ""
            out.append(f"{a.name}: {b['budget']} {val} vs limit {b['limit']:g} — {b['status'].upper()}{why} "
                       f"({b.get('kind')}, {b.get('backend')})")
    return out


HEADERS = ["artifact", "accuracy %", "size KiB", "p50 ms", "p90 ms", "latency"]


def headers(report: dict[str, Any]) -> list[str]:
    """The table's columns; the metric column is named by the modality (accuracy, or agreement with the teacher)."""
    return [HEADERS[0], report.get("accuracy_column", HEADERS[1]), *HEADERS[2:]]


def write_reports(run, report: dict[str, Any], artifacts: list[Artifact], *, title: str | None = None,
                  header: list[str] = ()) -> dict[str, Any]:
    """Write report.json and report.md for any modality; returns exactly what report.json holds.
    title / header: report.md's heading and the modality's lines above the table."""
    report = {"schema": REPORT_SCHEMA, **report, "artifacts": [a.to_dict() for a in artifacts]}
    atomic_write_text(run.path("report.json"), json.dumps(report, indent=2, default=str) + "\n")
    cols = headers(report)
    lines = [title or f"# edgekd compress — target `{report['target']['name']}`", "", *header, ""]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r) + " |" for r in artifact_rows(artifacts)]
    lines += ["", "## How each figure was obtained", ""]
    for a in artifacts:
        lines.append(f"- **{a.name}**: {latency_label(a.latency) if a.latency else no_figure(a)}")
        for extra in (a.extra or {}).get("other_latencies", []):
            lines.append(f"  - also p50 {_fmt(extra.get('p50_ms'), '.3f')} ms, {latency_label(extra)}")
        for f in (a.extra or {}).get("compiled_files", []):
            lines.append(f"  - compiled for the target: `{f}`")
        for n in (a.extra or {}).get("profile_notes", []):
            lines.append(f"  - note: {n}")
    if report.get("speedup_vs_teacher_onnx"):
        lines += ["", "Speed-up vs the teacher's ONNX file (p50, interleaved): " +
                  ", ".join(f"{k} {v}x" for k, v in report["speedup_vs_teacher_onnx"].items())]
    budgets = budget_lines(report, artifacts)
    if budgets:
        lines += ["", "## Budgets", ""] + [f"- {b}" for b in budgets]
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    atomic_write_text(run.path("report.md"), "\n".join(lines) + "\n")
    return report
