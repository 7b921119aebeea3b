"""The one stage sequence every kind of model goes through.

distill -> refine (baseline, pruning: where the modality has them) -> export (+ quantize) -> evaluate every
file -> decide what ships (one rule, edgekd.pipeline.shipping) -> profile -> the precision rule
(edgekd.pipeline.precision) -> one report (report.json/md).

What differs between image classifiers, feature vectors and Hugging Face text encoders lives in a modality
adapter (edgekd.modalities); this module never asks which one it runs. An adapter supplies:

    kind, pipeline, target, notes           attributes (`pipeline` names the run directory's owner)
    check()                                 cheap checks before any work (usage errors)
    prepare(run, log)                       load data, teacher and student; record the run's inputs
    distill() -> student                    train (a RunDir stage), return the student model
    refine(student) -> student              optional stages after distillation (identity if none)
    export(student) -> [Artifact]           deployable files (and references such as the teacher's)
    evaluate(student, files) -> [Artifact]  every row of the report with its accuracy or agreement
    profile(rows) -> [Artifact]             latency / memory per row (shipped rows on the target)
    stand_in(fmt, precision), missing(fmt, precision)   shipping substitutes and what to say without one
    describe(student, rows) -> dict         the report's modality sections (data, teacher, student, distill)
    title(report), header_lines(report)     report.md's heading and the lines above its table
"""

from __future__ import annotations

import platform
import time
from typing import Any, Callable

from edgekd.core import RunDir
from edgekd.pipeline.report import write_reports
from edgekd.pipeline.shipping import apply_precision_rule, budget_rows, device_note, mark_shipped


def run_pipeline(m, *, output, log: Callable[[str], None], on_start=None) -> dict[str, Any]:
    """on_start(run): called once the checks passed and the run directory exists."""
    t_start = time.perf_counter()
    m.check()
    run = RunDir(output, pipeline=m.pipeline)
    if on_start is not None:
        on_start(run)
    m.prepare(run, log)
    student = m.refine(m.distill())
    rows = m.evaluate(student, m.export(student))
    ship_notes = mark_shipped(m.target, rows, m.stand_in, m.missing)  # before profiling: shipped rows go to the target
    rows = m.profile(rows)
    ship_notes += apply_precision_rule(m.target, rows)  # the fastest precision on the figure of record ships
    shipped = [a for a in rows if a.extra.get("shipped")]
    sections = m.describe(student, rows)
    notes = list(m.notes) + sections.pop("notes", []) + ship_notes
    if note := device_note(m.target, shipped):
        notes.append(note)
    report = {"tool": "edgekd", "kind": m.kind,
              "target": {"name": m.target.name, "description": m.target.description, "source": m.target.source},
              **sections, "shipped": [a.path for a in shipped], "budgets": budget_rows(shipped),
              "host": {"machine": platform.machine(), "processor": platform.processor() or platform.machine()},
              "seconds": round(time.perf_counter() - t_start, 1), "notes": notes}
    if run.reused:
        log(f"resumed: skipped {len(run.reused)} unchanged stage(s): {', '.join(run.reused)}")
    report = write_reports(run, report, rows, title=m.title(report), header=m.header_lines(report), log=log)
    run.manifest["report"] = {"json": "report.json", "md": "report.md", "html": "report.html",
                              "figures": report["figures"]}
    run.save()
    return report
