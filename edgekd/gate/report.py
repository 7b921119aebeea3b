"""Gate results and their four renderings: dict/JSON, JUnit XML, GitHub Actions annotations, Markdown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("pass", "fail", "warn", "skip")


@dataclass
class Check:
    name: str  # e.g. "size_bytes", "ops.transpose", "latency.ab"
    status: str  # pass | fail | warn | skip
    message: str  # one line a reviewer can act on
    kind: str = "deterministic"  # deterministic | measured | simulated | estimated
    baseline: Any = None
    candidate: Any = None
    limit: Any = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check status must be one of {STATUSES}, got {self.status!r}")


@dataclass
class GateReport:
    candidate: dict[str, Any]  # path, sha256, info (model_info), latency (when measured)
    baseline: dict[str, Any]  # same for a model file; {"source": "json", ...} for a stored run
    target: str
    checks: list[Check]
    settings: dict[str, Any]
    timing: dict[str, Any] | None = None  # A/B attempts, or the absolute comparison
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def summary(self) -> str:
        n = {s: sum(c.status == s for c in self.checks) for s in STATUSES}
        verdict = "PASS" if self.passed else "FAIL"
        return f"edgekd gate {verdict}: {n['fail']} failed, {n['warn']} warnings, {n['pass']} passed, {n['skip']} skipped"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        d["summary"] = self.summary()
        d["format"] = "edgekd-gate/1"  # lets a later run recognise this file as a stored baseline
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    # ------------------------------------------------------------ JUnit

    def to_junit(self) -> str:
        """One <testcase> per check; fail -> <failure>, skip -> <skipped>, warn -> passes with system-out."""
        from xml.etree import ElementTree as ET

        suite = ET.Element(
            "testsuite",
            name="edgekd-gate",
            tests=str(len(self.checks)),
            failures=str(len(self.failures)),
            errors="0",
            skipped=str(sum(c.status == "skip" for c in self.checks)),
            time=f"{self.seconds:.3f}",
        )
        props = ET.SubElement(suite, "properties")
        for k, v in (("candidate", self.candidate.get("path")), ("baseline", self.baseline.get("path")), ("target", self.target)):
            ET.SubElement(props, "property", name=k, value=str(v))
        for c in self.checks:
            case = ET.SubElement(suite, "testcase", classname=f"edgekd.gate.{self.target}", name=c.name)
            if c.status == "fail":
                f = ET.SubElement(case, "failure", message=c.message, type=c.kind)
                f.text = _detail_text(c)
            elif c.status == "skip":
                ET.SubElement(case, "skipped", message=c.message)
            else:
                out = ET.SubElement(case, "system-out")
                out.text = ("WARNING: " if c.status == "warn" else "") + c.message
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

    # ------------------------------------------------------------ GitHub Actions

    def github_annotations(self) -> list[str]:
        """Workflow commands: ::error for failures, ::warning for warnings, one ::notice summary."""
        file = self.candidate.get("path") or ""
        lines = []
        for c in self.checks:
            if c.status in ("fail", "warn"):
                level = "error" if c.status == "fail" else "warning"
                lines.append(f"::{level} file={_gh_prop(file)},title={_gh_prop('edgekd gate: ' + c.name)}::{_gh_data(c.message)}")
        lines.append(f"::notice title=edgekd gate::{_gh_data(self.summary())}")
        return lines

    def markdown(self) -> str:
        """For $GITHUB_STEP_SUMMARY or a PR comment."""
        icon = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "➖"}
        rows = [f"### {self.summary()}", "", f"candidate `{self.candidate.get('path')}` vs baseline "
                f"`{self.baseline.get('path')}`, target `{self.target}`", "",
                "| | check | baseline | candidate | limit | result |", "|---|---|---|---|---|---|"]
        for c in self.checks:
            rows.append(f"| {icon[c.status]} | {c.name} | {fmt(c.baseline)} | {fmt(c.candidate)} | {fmt(c.limit)} | {c.message} |")
        return "\n".join(rows + [""] + [f"- {n}" for n in self.notes]) + "\n"


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={fmt(x)}" for k, x in v.items()) or "none"
    return str(v)


def _detail_text(c: Check) -> str:
    parts = [f"kind: {c.kind}", f"baseline: {fmt(c.baseline)}", f"candidate: {fmt(c.candidate)}", f"limit: {fmt(c.limit)}"]
    if c.details:
        parts.append("details: " + json.dumps(c.details, default=str))
    return "\n".join(parts)


def _gh_data(s: str) -> str:
    # Escaping rules of GitHub's workflow-command parser (actions/toolkit command.ts).
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(s: str) -> str:
    return _gh_data(s).replace(":", "%3A").replace(",", "%2C")
