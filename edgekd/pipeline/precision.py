"""The per-target precision rule: ship the precision that is fastest on the target's figure of record, among
the files whose checks passed.

A target file names what it ships (`[[ships]] precision = "int8"`) and may name other precisions the rule can
ship instead (`candidates = ["fp32"]`). Every candidate is profiled like the shipped file; then the rule
compares them on the *figure of record*, the most direct figure the run has for that target:

  1. a latency measured on the target itself (a device over adb/ssh, or the host when the host is the target);
  2. an NPU compiler's or simulator's figure (Vela cycles, the QNN HTP simulator), labelled estimated/simulated;
  3. emulated instructions per inference on the target's core (qemu, `[emulation]`).

A host stand-in for an unreachable device is never a figure of record: x86 timings say nothing about which
precision is faster on an ARM core (int8 is slower than fp32 on this x86 host and 2-4x cheaper on a Cortex-A76).
Without a figure for every candidate the declared precision ships, and the note says why.
"""

from __future__ import annotations

from dataclasses import dataclass

# Figures within this share of each other are a tie: the declared precision keeps shipping (timing noise on
# a shared machine is a few percent; emulated counts are exact, but a 2 % gain is not worth a precision change).
TIE = 0.03


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str  # ms | instructions
    label: str  # what it is, for the report

    def show(self) -> str:
        return f"{self.value / 1e6:.2f} M {self.unit}" if self.unit == "instructions" else f"{self.value:.4g} {self.unit}"


def record_figure(results: list[dict]) -> Figure | None:
    """The figure of record among one file's latency results (profile's dicts), by the order above."""
    measured = npu = emulated = None
    for r in results:
        backend, kind = r.get("backend"), r.get("kind")
        if backend == "host-fallback" or r.get("p50_ms") is None and backend != "qemu-emulation":
            continue
        if backend == "qemu-emulation" and r.get("emulated_instructions"):
            emulated = emulated or Figure(float(r["emulated_instructions"]), "instructions",
                                          f"emulated {r.get('qemu_cpu', 'ARM')} instructions per inference (qemu)")
        elif kind == "measured":
            measured = measured or Figure(float(r["p50_ms"]), "ms", f"p50 measured on {r.get('target', 'the target')} "
                                                                    f"({r.get('runtime', '')}, {r.get('threads')} thread(s))")
        elif kind in ("estimated", "simulated"):
            npu = npu or Figure(float(r["p50_ms"]), "ms", f"{kind} p50 ({r.get('backend', '')})")
    return measured or npu or emulated


def pick(declared: str, figures: dict[str, Figure | None]) -> tuple[str, str]:
    """(precision to ship, why). figures: precision -> its figure of record (None: none was obtained), for the
    declared precision and every candidate whose checks passed."""
    have = {p: f for p, f in figures.items() if f is not None}
    base = have.get(declared)
    missing = sorted(p for p in figures if p not in have)
    if base is None or len({f.unit for f in have.values()}) > 1:
        return declared, (f"{declared} ships as the target declares: no common figure of record for "
                          f"{', '.join(missing) or 'every candidate'} to compare precisions on")
    best = min(have, key=lambda p: have[p].value)
    others = ", ".join(f"{p} {have[p].show()}" for p in sorted(have) if p != declared)
    if best == declared or have[best].value >= base.value * (1 - TIE):
        why = f"{declared} ships: {base.show()} ({base.label}) vs {others or 'no other candidate'}"
        return declared, why + (f"; no figure for {', '.join(missing)}" if missing else "")
    ratio = base.value / have[best].value
    return best, (f"{best} ships instead of {declared}: {have[best].show()} vs {base.show()} ({base.label}); "
                  f"{declared} is {ratio:.2f}x slower on this target's figure of record")
