"""The one rule for what a run ships, and the notes that explain it, for every modality.

A student file ships when the target asks for its (format, precision). When a modality cannot make what
the target asks for (a text encoder has no static-int8 TFLite), it names a stand-in precision and says
why; the report carries that sentence, so a user never ships a substitute without being told.
"""

from __future__ import annotations

from typing import Callable

from edgekd.core import Artifact

# stand_in(format, precision) -> (precision to ship instead, note) or None when the modality has no stand-in
StandIn = Callable[[str, str], "tuple[str, str | None] | None"]
DEPLOYABLE = ("onnx", "tflite", "pte", "coreml")


def is_reference(a: Artifact) -> bool:
    """Teacher files are references for accuracy and speed-ups, never what a run ships."""
    return a.name.startswith("teacher")


def mark_shipped(target, artifacts: list[Artifact], stand_in: StandIn | None = None,
                 missing: Callable[[str, str], str] | None = None) -> list[str]:
    """Set extra["shipped"] on every artifact; returns the notes (stand-ins used, formats not made)."""
    students = [a for a in artifacts if a.format in DEPLOYABLE and not is_reference(a)]
    chosen: set[int] = set()
    notes: list[str] = []
    for ship in target.ships:
        exact = [a for a in students if (a.format, a.precision) == (ship.format, ship.precision)]
        if not exact and stand_in and (alt := stand_in(ship.format, ship.precision)):
            precision, why = alt
            exact = [a for a in students if (a.format, a.precision) == (ship.format, precision)]
            if exact and why:
                notes.append(why)
        exact = _without_failed_checks(exact, students, notes)
        if not exact:
            notes.append(missing(ship.format, ship.precision) if missing else
                         f"No {ship.precision} {ship.format.upper()} file was made: nothing in {target.name}'s "
                         "format is shipped.")
        chosen.update(id(a) for a in exact)
    candidates = {id(a) for ship in target.ships for a in students if a.format == ship.format
                  and a.precision in ship.candidates and not failed_check(a)}
    for a in artifacts:
        a.extra["shipped"] = id(a) in chosen
        a.extra["precision_candidate"] = id(a) in candidates - chosen  # profiled on the target like the shipped file
    return notes


def apply_precision_rule(target, artifacts: list[Artifact]) -> list[str]:
    """After profiling: for each ship with candidates, ship the precision fastest on the figure of record
    (edgekd.pipeline.precision); returns one note per decision, saying why."""
    from edgekd.pipeline.precision import pick, record_figure

    notes = []
    for ship in target.ships:
        if not ship.candidates:
            continue
        rows = [a for a in artifacts if a.format == ship.format and (a.extra.get("shipped")
                                                                      or a.extra.get("precision_candidate"))]
        current = next((a for a in rows if a.extra.get("shipped")), None)
        if current is None:
            continue
        by_precision = {a.precision: a for a in rows}
        figures = {p: record_figure([a.latency or {}, *a.extra.get("other_latencies", [])])
                   for p, a in by_precision.items()}
        chosen, why = pick(current.precision, figures)
        notes.append(f"{target.name}: {why}.")
        if chosen != current.precision:
            current.extra["shipped"] = False
            by_precision[chosen].extra["shipped"] = True
        for a in rows:
            a.extra["precision_rule"] = why
    return notes


def failed_check(a: Artifact) -> bool:
    """A file whose own check (parity, accuracy budget) failed and that the user did not allow (--allow-drop)."""
    check = a.extra.get("check") or {}
    return check.get("passed") is False and not check.get("allowed")


def _without_failed_checks(files: list[Artifact], students: list[Artifact], notes: list[str]) -> list[Artifact]:
    """A failed file never ships unless allowed: the fp32 file of the same format ships instead, and a note says so."""
    kept = [a for a in files if not failed_check(a)]
    for a in files:
        if failed_check(a):
            fp32 = [b for b in students if (b.format, b.precision) == (a.format, "fp32") and not failed_check(b)]
            instead = f"{fp32[0].path} ships instead" if fp32 else "nothing ships in its place"
            notes.append(f"{a.path} failed its check ({a.extra['check'].get('what')}): not shipped, {instead}; "
                         "rerun with --allow-drop to ship it anyway")
            kept += [b for b in fp32[:1] if b not in kept]
    return kept


def device_note(target, shipped: list[Artifact]) -> str | None:
    """A device target that was not reachable: its figures are host stand-ins, and the report says so."""
    if any((a.latency or {}).get("backend") == "host-fallback" for a in shipped):
        return f"No {target.name} device was reachable: its latencies are host measurements, labelled so."
    return None


def budget_rows(shipped: list[Artifact]) -> list[dict]:
    """The profile stage's pass / fail / skip rows per shipped file (a host stand-in never passes a device budget)."""
    return [{"artifact": a.name, **row} for a in shipped for row in a.extra.get("budgets", [])]
