"""Print a compress report as a rich table (or JSON)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def print_report(report: dict[str, Any], output: Path, as_json: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    from edgekd.core import Artifact
    from edgekd.pipeline.report import artifact_rows, budget_lines, headers, latency_label, no_figure

    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    arts = [Artifact.from_dict(a) for a in report["artifacts"]]
    table = Table(title=f"edgekd compress → {report['target']['name']}  ({report['seconds']:.0f} s)")
    for h in headers(report):
        table.add_column(h, justify="left" if h in ("artifact", "latency") else "right", no_wrap=h == "artifact")
    for a, row in zip(arts, artifact_rows(arts)):
        style = "bold green" if a.extra.get("shipped") else None
        table.add_row(*row, style=style)
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    for a in arts:
        if a.extra.get("shipped"):
            console.print(f"ships: [bold]{output / a.path}[/] — latency "
                          f"{latency_label(a.latency) if a.latency else no_figure(a)}")
    for line in budget_lines(report, arts):
        console.print(f"budget {line}", markup=False)
    for n in report.get("notes", []):
        console.print(f"note: {n}")
    console.print(f"report: {output / 'report.md'}, {output / 'report.json'}; manifest: {output / 'manifest.json'}")
