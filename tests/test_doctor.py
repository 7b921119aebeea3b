import importlib.metadata as md
import subprocess
import sys

from edgekd.commands import doctor


def _run(*args):
    return subprocess.run([sys.executable, "-m", "edgekd.cli", *args], capture_output=True, text=True, timeout=120)


def test_version_lists_components_from_metadata():
    r = _run("--version")
    assert r.returncode == 0, r.stderr
    lines = dict(l.split(" ", 1) for l in r.stdout.strip().splitlines())
    assert lines["torch"] == md.version("torch")
    for label, _ in doctor.COMPONENTS:
        assert label in lines


def test_missing_package_reported_not_installed(monkeypatch):
    monkeypatch.setattr(doctor, "COMPONENTS", [("nope", ("edgekd-no-such-dist",))])
    assert "nope not installed" in doctor.version_text()


def test_doctor_rows_have_enable_commands():
    rows = doctor.checks()
    names = {r["name"] for r in rows}
    assert {"TensorFlow/onnx2tf", "Hugging Face", "ARM emulation", "adb", "ssh"} <= names
    assert all(r["enable"] for r in rows)
    r = _run("doctor")
    assert r.returncode == 0, r.stderr
    assert "adb" in r.stdout
