"""The suite's kept-back pairs (issue 18): their architectures run, and no default run includes them."""

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import distill_suite as suite  # noqa: E402
from suite_kept_back import mixer8, pixel_mlp, row_gru  # noqa: E402


def test_kept_back_pairs_are_pairs_and_new():
    assert suite.KEPT_BACK and suite.KEPT_BACK <= set(suite.PAIRS)
    families = {suite.PAIRS[p][1] for p in suite.KEPT_BACK}
    assert {row_gru, mixer8} <= families


@pytest.mark.parametrize("factory", [row_gru, mixer8, pixel_mlp])
def test_architectures_classify_8x8_digits(factory):
    assert factory()(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_brief_reports_means_and_choice():
    runs = {"scratch": [{"test_acc": 0.9, "lr": 0.03}, {"test_acc": 0.92, "lr": 0.1}],
            "auto": [{"test_acc": 0.95, "chosen": "kd-ls", "probe_seconds": 0.0, "seconds": 1.0}] * 2}
    v = {"teacher": {"test_acc": 0.99}, "runs": runs, "summary": suite.summarise({"test_acc": 0.99}, runs)}
    b = suite.brief(v)
    assert b["scratch"] == "91.00 ± 1.00" and b["scratch_lr_picked"] == [0.03, 0.1]
    assert b["auto_gain_points"] == pytest.approx(4.0, abs=1e-6) and b["auto_chosen"] == {"kd-ls": 2}
    assert b["auto_gap_closed"] == pytest.approx(4 / 8, abs=1e-3)


def test_unknown_pair_is_one_line_error(tmp_path):
    p = subprocess.run([sys.executable, str(BENCH / "distill_suite.py"), "--pairs", "nope", "--out",
                        str(tmp_path / "x.json")], capture_output=True, text=True)
    assert p.returncode != 0 and "unknown pair" in p.stderr and "Traceback" not in p.stderr


def test_default_pairs_leave_kept_back_out():
    assert not set(suite.DEFAULT_PAIRS) & suite.KEPT_BACK
    assert set(suite.DEFAULT_PAIRS) | suite.KEPT_BACK == set(suite.PAIRS)
