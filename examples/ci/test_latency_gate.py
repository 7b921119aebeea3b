"""Drop into your test suite: fails when the shipped model regresses against a reference model file.

    EDGEKD_CANDIDATE=build/model.onnx EDGEKD_BASELINE=baselines/model.onnx pytest test_latency_gate.py

The baseline may also be the JSON of an earlier `edgekd gate --output report.json` run (then only
the deterministic checks and a weaker absolute-time comparison are possible).
"""

import os
from pathlib import Path

import pytest

CANDIDATE = Path(os.environ.get("EDGEKD_CANDIDATE", "build/model.onnx"))
BASELINE = Path(os.environ.get("EDGEKD_BASELINE", "baselines/model.onnx"))
TARGET = os.environ.get("EDGEKD_TARGET", "host")


@pytest.mark.skipif(not (CANDIDATE.is_file() and BASELINE.is_file()), reason="model files not built")
def test_model_does_not_regress(tmp_path):
    from edgekd.gate import gate

    report = gate(CANDIDATE, BASELINE, TARGET, max_regression=0.05)
    (tmp_path / "gate.json").write_text(report.to_json())  # keep it for the CI artifact if you like
    if not report.passed:  # pytest.fail, not assert: the message stays the gate's lines, not a report repr
        pytest.fail(report.summary() + "".join(f"\n  {c.name}: {c.message}" for c in report.failures), pytrace=False)
