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


def _how_obtained(artifacts: list[Artifact]) -> list[str]:
    lines = []
    for a in artifacts:
        lines.append(f"- **{a.name}**: {latency_label(a.latency) if a.latency else no_figure(a)}")
        for extra in (a.extra or {}).get("other_latencies", []):
            lines.append(f"  - also p50 {_fmt(extra.get('p50_ms'), '.3f')} ms, {latency_label(extra)}")
        for f in (a.extra or {}).get("compiled_files", []):
            lines.append(f"  - compiled for the target: `{f}`")
        for n in (a.extra or {}).get("profile_notes", []):
            lines.append(f"  - note: {n}")
    return lines


def _sections(report: dict[str, Any], artifacts: list[Artifact]) -> list[tuple[str, list[str]]]:
    """The report's sections after the table, (heading, bullet lines), for report.md and report.html alike."""
    out = [("How each figure was obtained", _how_obtained(artifacts))]
    if report.get("speedup_vs_teacher_onnx"):
        out[0][1].append("Speed-up vs the teacher's ONNX file (p50, interleaved): " +
                         ", ".join(f"{k} {v}x" for k, v in report["speedup_vs_teacher_onnx"].items()))
    if budgets := budget_lines(report, artifacts):
        out.append(("Budgets", [f"- {b}" for b in budgets]))
    if report.get("notes"):
        out.append(("Notes", [f"- {n}" for n in report["notes"]]))
    return out


def write_reports(run, report: dict[str, Any], artifacts: list[Artifact], *, title: str | None = None,
                  header: list[str] = (), log=None) -> dict[str, Any]:
    """Write report.json, report.md (figures as PNGs beside it) and report.html (self-contained) for any
    modality; returns exactly what report.json holds. title / header: the heading and the modality's lines
    above the table."""
    from edgekd.core.plots import MISSING, draw_all, markdown_figures, write_html
    from edgekd.pipeline.figures import DRAWERS

    report = {"schema": REPORT_SCHEMA, **report, "artifacts": [a.to_dict() for a in artifacts]}
    figures = draw_all(DRAWERS, report, run.root, log=log)
    if not figures and not _has_plt():
        report["notes"] = [*report.get("notes", []), f"report.html has no figures: {MISSING}"]
    report["figures"] = [f.file for f in figures]
    atomic_write_text(run.path("report.json"), json.dumps(report, indent=2, default=str) + "\n")
    cols, rows = headers(report), artifact_rows(artifacts)
    title = title or f"# edgekd compress — target `{report['target']['name']}`"
    sections = _sections(report, artifacts)
    lines = [title, "", *header, ""]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    for heading, items in sections:
        lines += ["", f"## {heading}", "", *items]
    if figures:
        lines += ["", "## Figures", "", *markdown_figures(figures)]
    atomic_write_text(run.path("report.md"), "\n".join(lines).rstrip() + "\n")
    blocks = _header_blocks(header) + [("table", (cols, rows))]
    blocks += [("figure", f) for f in figures]
    for heading, items in sections:
        blocks += [("h2", heading), ("ul", [i.strip().removeprefix("- ") for i in items])]
    write_html(run.path("report.html"), title, blocks)
    return report


def _header_blocks(header: list[str]) -> list[tuple[str, Any]]:
    """The modality's markdown lines above the table: runs of '- ' lines become lists, '|' lines tables, the rest
    paragraphs."""
    blocks: list[tuple[str, Any]] = []
    for line in (h for h in header if h.strip()):
        if line.startswith("|"):  # a markdown table: header row, separator row, rows
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if blocks and blocks[-1][0] == "table":
                if not set("".join(cells)) <= set("-: "):
                    blocks[-1][1][1].append(cells)
            else:
                blocks.append(("table", (cells, [])))
        elif line.startswith("- "):
            if not blocks or blocks[-1][0] != "ul":
                blocks.append(("ul", []))
            blocks[-1][1].append(line[2:])
        else:
            blocks.append(("p", line))
    return blocks


def _has_plt() -> bool:
    from importlib.util import find_spec

    return find_spec("matplotlib") is not None
