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
        if not exact:
            notes.append(missing(ship.format, ship.precision) if missing else
                         f"No {ship.precision} {ship.format.upper()} file was made: nothing in {target.name}'s "
                         "format is shipped.")
        chosen.update(id(a) for a in exact)
    for a in artifacts:
        a.extra["shipped"] = id(a) in chosen
    return notes


def device_note(target, shipped: list[Artifact]) -> str | None:
    """A device target that was not reachable: its figures are host stand-ins, and the report says so."""
    if any((a.latency or {}).get("backend") == "host-fallback" for a in shipped):
        return f"No {target.name} device was reachable: its latencies are host measurements, labelled so."
    return None


def budget_rows(shipped: list[Artifact]) -> list[dict]:
    """The profile stage's pass / fail / skip rows per shipped file (a host stand-in never passes a device budget)."""
    return [{"artifact": a.name, **row} for a in shipped for row in a.extra.get("budgets", [])]
