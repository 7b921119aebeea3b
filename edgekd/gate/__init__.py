"""CI regression gate (issue 7): deterministic hard checks plus an interleaved A/B wall-time test.

    from edgekd.gate import gate
    report = gate("candidate.onnx", "baseline.onnx", "host", max_regression=0.05)
    report.passed, report.exit_code, report.to_json(), report.to_junit(), report.github_annotations()
"""

from edgekd.gate.checks import Limits
from edgekd.gate.gate import gate
from edgekd.gate.report import Check, GateReport
from edgekd.runtime.timing import TimingSettings

__all__ = ["Check", "GateReport", "Limits", "TimingSettings", "gate"]
