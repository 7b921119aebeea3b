"""`--student auto --latency-budget`: budget parsing, the figure a budget is judged on, the bisection, the CLI."""

import json
import subprocess
import sys

import pytest

from edgekd.errors import UsageError
from edgekd.modalities.classifier.student_search import _first_within, figure_of_record, parse_budget

EDGEKD = [sys.executable, "-m", "edgekd.cli"]


def test_budget_units():
    assert parse_budget("1.5ms") == 1.5 and parse_budget("800us") == pytest.approx(0.8)
    assert parse_budget("0.002s") == pytest.approx(2.0) and parse_budget("2") == 2.0 and parse_budget(None) is None
    for bad in ("fast", "-1ms", "0", "1.5 minutes"):
        with pytest.raises(UsageError, match="--latency-budget"):
            parse_budget(bad)


HOST_STAND_IN = {"kind": "measured", "backend": "host-fallback", "p50_ms": 0.01}
EMULATED = {"kind": "estimated", "backend": "emulation", "emulated_instructions": 90_000, "p50_ms": 0.03}


def test_figure_of_record_is_never_a_host_standing_in_for_the_device():
    assert figure_of_record([HOST_STAND_IN, EMULATED]) is EMULATED
    device = {"kind": "measured", "backend": "adb", "p50_ms": 0.05}
    assert figure_of_record([HOST_STAND_IN, EMULATED, device]) is device
    vela = {"kind": "estimated", "backend": "vela", "p50_ms": 0.06}
    assert figure_of_record([{"kind": "measured", "backend": "host-fallback", "p50_ms": 1.0}, vela]) is vela
    assert figure_of_record([HOST_STAND_IN]) is None
    assert figure_of_record([{"kind": "simulated", "backend": "qnn-htp", "p50_ms": 11.0}]) is None  # not the phone's time
    host = {"kind": "measured", "backend": "host", "p50_ms": 0.02}  # the host target is this machine
    assert figure_of_record([host]) is host


@pytest.mark.parametrize("first", [0, 1, 4, 9, None])
def test_bisection_finds_the_largest_candidate_within_the_budget(first):
    calls = []
    n = 10

    def meets(i):
        calls.append(i)
        return first is not None and i >= first

    assert _first_within(n, meets) == first
    assert len(set(calls)) <= 6  # log2(10) + the two ends, not every candidate


def run(args, cwd):
    return subprocess.run(EDGEKD + args, capture_output=True, text=True, cwd=cwd, timeout=900)


@pytest.mark.parametrize("args, needle", [
    (["--student", "auto", "--target", "host"], "--student auto needs --latency-budget"),
    (["--student", "cnn-s", "--latency-budget", "1ms"], "--latency-budget applies to --student auto"),
    (["--student", "auto", "--latency-budget", "soon"], "--latency-budget expects a positive time"),
])
def test_usage_errors(tmp_path, args, needle):
    proc = run(["compress", *args, "--output", "out"], tmp_path)
    assert proc.returncode == 2 and needle in proc.stderr.strip().splitlines()[-1], proc.stderr[-1500:]


@pytest.mark.slow
def test_search_on_the_host_target_reports_every_candidate(tmp_path):
    (tmp_path / "tnet.py").write_text(
        "import torch\nfrom torch import nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),\n"
        "        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),\n"
        "        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))\n")
    proc = run(["compress", "--teacher", "tnet.py:build", "--data", "digits", "--student", "auto",
                "--latency-budget", "1000ms", "--target", "host", "--recipe", "hinton", "--epochs", "1",
                "--runs", "5", "--eval-samples", "200", "--output", "run", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    search = report["student"]["search"]
    # a generous budget: the largest candidate fits; it and the next one are probe-trained, the larger wins ties
    tried = search["candidates"]
    assert [c["ratio"] for c in tried] == [0.5, 0.35] and all(c["meets"] for c in tried)
    assert all(c["kind"] == "measured" and c["latency_ms"] > 0 and c["probe_acc"] is not None for c in tried)
    assert tried[0]["macs"] > tried[1]["macs"] > 0
    assert report["student"]["spec"] == f"auto:{search['chosen']}"
    md = (tmp_path / "run" / "report.md").read_text()
    assert "student search: latency budget 1000 ms on host" in md and "| auto:0.35 |" in md
