"""What every report figure shares: matplotlib without a display, the marker of each kind of latency, PNGs
written atomically, and a self-contained HTML page (images inline as base64). The compress report
(edgekd.pipeline.report) and the gate draw their own figures with these."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgekd.core.files import atomic_path, atomic_write_text

# Each latency kind has its own marker, in every figure and legend: figures of different kinds are not comparable.
KIND_MARKERS = {"measured": "o", "simulated": "s", "emulated": "^", "estimated": "D"}
SHIPPED_COLOR, OTHER_COLOR = "#d62728", "#1f77b4"
MISSING = "figures need matplotlib: pip install 'edgekd[report]'"


@dataclass
class Figure:
    file: str  # relative to the report's directory
    title: str
    caption: str  # what is drawn and where its figures come from


def latency_kind(lat: dict[str, Any]) -> str:
    """measured / simulated / emulated / estimated: an instruction count under qemu is an emulation."""
    if lat.get("emulated_instructions") is not None:
        return "emulated"
    return str(lat.get("kind") or "estimated")


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display), or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)


def draw_all(drawers: list[Callable[..., Figure | None]], data: Any, out_dir: Path, log=None) -> list[Figure]:
    """Each drawer draws one PNG under out_dir, or returns None when `data` has nothing for it. A drawer that
    fails costs its figure (said in `log`), never the report."""
    plt = pyplot()
    if plt is None:
        return []
    figures = []
    for draw in drawers:
        try:
            fig = draw(plt, data, out_dir)
        except Exception as exc:  # a figure is never worth losing the run's report
            if log:
                log(f"figure {draw.__name__} not drawn: {type(exc).__name__}: {exc}")
            plt.close("all")
            continue
        if fig is not None:
            figures.append(fig)
    return figures


_INLINE = [(re.compile(r"\*\*(.+?)\*\*"), r"<b>\1</b>"), (re.compile(r"`(.+?)`"), r"<code>\1</code>")]


def inline(text: str) -> str:
    """The markdown the reports use inside a line (**bold**, `code`), as HTML."""
    out = html.escape(text, quote=False)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "th{background:#f3f3f3}figure{margin:1.5em 0}img{max-width:100%}figcaption{color:#555;font-size:14px}"
        "code{background:#f3f3f3;padding:0 3px}li{margin:2px 0}")


def html_page(title: str, blocks: list[tuple[str, Any]], base: Path) -> str:
    """blocks: ("h2", text), ("p", text), ("ul", [text]), ("table", (header, rows)), ("figure", Figure);
    figure files are read from `base` and inlined, so the page needs nothing beside it."""
    body = [f"<h1>{inline(title.lstrip('# '))}</h1>"]
    for kind, value in blocks:
        if kind in ("h2", "p"):
            body.append(f"<{kind}>{inline(value)}</{kind}>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{inline(v)}</li>" for v in value) + "</ul>")
        elif kind == "table":
            head, rows = value
            body.append("<table><tr>" + "".join(f"<th>{inline(h)}</th>" for h in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows)
                        + "</table>")
        elif kind == "figure":
            body.append(f'<figure><img src="{data_uri(base / value.file)}" alt="{html.escape(value.title)}">'
                        f"<figcaption><b>{inline(value.title)}</b>. {inline(value.caption)}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(re.sub(r'[`*]', '', title.lstrip('# ')))}</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_html(path: Path, title: str, blocks: list[tuple[str, Any]]) -> None:
    atomic_write_text(path, html_page(title, blocks, path.parent))


def markdown_figures(figures: list[Figure]) -> list[str]:
    """report.md's lines for the figures: the PNG beside it, then its caption."""
    lines = []
    for f in figures:
        lines += [f"![{f.title}]({f.file})", "", f"*{f.title}.* {f.caption}", ""]
    return lines
