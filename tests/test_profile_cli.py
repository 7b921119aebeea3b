"""`edgekd profile` and `edgekd targets` through the real CLI entry point."""

import json
from pathlib import Path

import pytest

from edgekd.cli import main

FIX = Path(__file__).parent / "fixtures" / "profile"


def run(capsys, *argv):
    with pytest.raises(SystemExit) as ei:
        main(list(argv))
    out = capsys.readouterr()
    return ei.value.code, out.out, out.err


def test_targets_json_and_table(capsys):
    code, out, _ = run(capsys, "targets", "--json")
    assert code == 0
    names = {t["name"] for t in json.loads(out)}
    assert {"host", "android", "qualcomm-htp", "raspberry-pi-5", "ethos-u55-128", "ethos-u65-256"} <= names
    code, out, _ = run(capsys, "targets")
    assert code == 0 and "raspberry-pi-5" in out and "tflite int8" in out


def test_profile_json_and_table(capsys):
    code, out, _ = run(capsys, "profile", str(FIX / "tiny_fp32.onnx"), "--target", "host", "--runs", "5", "--json")
    assert code == 0
    rep = json.loads(out)
    assert rep["target"] == "host" and rep["results"][0]["runs"] == 5 and rep["results"][0]["kind"] == "measured"
    code, out, _ = run(capsys, "profile", str(FIX / "tiny_int8.tflite"), "--runs", "3", "--threads", "1")
    assert code == 0 and "measured" in out and "host x86_64" in out


def test_profile_errors_are_one_line(capsys):
    code, _, err = run(capsys, "profile", str(FIX / "tiny_fp32.onnx"), "--target", "pixel9")
    assert code == 1 and err.startswith("error: unknown target 'pixel9'") and err.count("\n") == 1
    code, _, err = run(capsys, "profile", "missing.tflite")
    assert code == 1 and "does not exist" in err
    code, _, err = run(capsys, "profile", str(FIX / "tiny_fp32.onnx"), "--runs", "0")
    assert code == 2 and err.startswith("error:")


BUDGET_TARGET = """name = "tight-host"
[[ships]]
format = "onnx"
precision = "int8"
[runtime]
name = "onnxruntime"
threads = 1
[connection]
kind = "local"
[budgets]
latency_ms = {lat}
size_bytes = 100000
peak_memory_mb = 500
"""


def test_budgets_are_checked_and_fail_the_command(capsys, tmp_path):
    tight = tmp_path / "tight.toml"
    tight.write_text(BUDGET_TARGET.format(lat="0.000001"))
    code, out, _ = run(capsys, "profile", str(FIX / "tiny_fp32.onnx"), "--target", str(tight), "--runs", "3")
    assert code == 1
    assert "budget latency_ms <= 1e-06" in out and "FAIL" in out and "budget size_bytes <= 100000: 6702 [host, measured] PASS" in out
    loose = tmp_path / "loose.toml"
    loose.write_text(BUDGET_TARGET.format(lat="10000"))
    code, out, _ = run(capsys, "profile", str(FIX / "tiny_fp32.onnx"), "--target", str(loose), "--runs", "3", "--json")
    assert code == 0
    rows = {b["budget"]: b for b in json.loads(out)["budgets"]}
    assert {r["status"] for r in rows.values()} == {"pass"} and rows["size_bytes"]["value"] == 6702


def test_host_stand_in_never_passes_a_device_latency_budget():
    from edgekd.profile.report import check_budgets
    from edgekd.targets import Budgets

    res = [{"backend": "host-fallback", "kind": "measured", "p50_ms": 0.1, "file_size_bytes": 10, "model_rss_mb": 5.0}]
    rows = {b["budget"]: b for b in check_budgets(Budgets(latency_ms=1.0, size_bytes=5, peak_memory_mb=100), res)}
    assert rows["latency_ms"]["status"] == "skip" and "not the device" in rows["latency_ms"]["why"]
    assert rows["size_bytes"]["status"] == "fail"  # the file is the same file wherever it is measured
    assert rows["peak_memory_mb"]["status"] == "skip"
