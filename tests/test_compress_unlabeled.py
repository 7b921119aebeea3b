"""`edgekd compress` on an image folder without class sub-folders (issue 22 part 4): the student learns from the
teacher alone, within --time-budget, and every figure is agreement with the teacher, never accuracy."""

import json
import subprocess
import sys

import numpy as np
import pytest

NETS = (
    "import torch\n"
    "from torch import nn\n"
    "def teacher():\n"
    "    torch.manual_seed(1)\n"
    "    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),\n"
    "                         nn.Linear(64, 5))\n"
    "def student():\n"
    "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
    "                         nn.Linear(8, 5))\n"
)


def _photos(folder, n=20, size=16):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):  # colour gradients in random directions: the teacher's top-1 varies between images
        a = rng.random(3)[None, None] * np.linspace(0, 1, size)[:, None, None] * np.ones((size, size, 3))
        if i % 2:
            a = a.transpose(1, 0, 2)
        Image.fromarray((255 * a).astype(np.uint8)).save(folder / f"img{i:02d}.png")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("unlabeled")
    (work / "nets.py").write_text(NETS)
    _photos(work / "photos")
    out = work / "run"
    cmd = [sys.executable, "-m", "edgekd.cli", "compress", "--teacher", "nets.py:teacher", "--student",
           "nets.py:student", "--data", "photos", "--target", "host", "--time-budget", "3", "--batch-size", "8",
           "--output", str(out), "--runs", "3", "--threads", "1", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout), proc.stderr


def test_report_says_agreement_never_accuracy(run):
    out, report, _ = run
    assert report["accuracy_column"] == "agreement w/ teacher %"
    assert report["accuracy_metric"].startswith("top-1 agreement with the teacher")
    rows = {a["name"]: a for a in report["artifacts"]}
    assert rows["teacher"]["accuracy"] == 100.0  # the reference agrees with itself
    for name, a in rows.items():
        if a["format"] != "coreml":
            assert 0.0 <= a["accuracy"] <= 100.0, name
    # every exported student file: its agreement with the PyTorch student, in report.json and report.md
    files = [n for n, a in rows.items() if n.startswith("student ")]
    assert {"student onnx int8", "student tflite int8"} <= set(files)
    assert set(report["agreement_with_student"]) == set(files)
    for n in files:
        assert rows[n]["extra"]["agreement_with_student"] >= 80.0, n  # fp32 copies and int8 of a tiny CNN
    md = (out / "report.md").read_text()
    assert "| agreement w/ teacher % |" in md and "accuracy %" not in md
    assert "no labels" in md and "agreement of each exported file with the PyTorch student" in md


def test_held_out_views_come_from_the_folder(run):
    _, report, _ = run
    data = report["data"]
    assert data["labelled"] is False and data["test_split"] == "held out"
    assert data["test_images"] == 4 and data["held_out_views"] == 8 and data["test"] == 32  # a fifth of 20, x8
    d = report["distill"]
    assert d["val_metric"] == "teacher-agreement"
    assert d["views"] == 16 and d["train_samples"] == data["train"]  # crop-flip training views by default


def test_time_budget_is_honoured_and_reported(run):
    out, report, stderr = run
    d = report["distill"]
    assert d["time_budget_s"] == 3.0
    assert d["budget_used_s"] <= 3.0 + 2.0  # fitted as it goes: over by a step or an epoch's scoring at most
    assert 0 < d["steps"] < d["planned_steps"]  # stopped by the budget, not by 10 000 epochs
    assert "time budget 3 s" in (out / "report.md").read_text()
    assert "s budget, step" in stderr and "distilled:" in stderr  # progress lines


def test_baseline_needs_labels(tmp_path):
    (tmp_path / "nets.py").write_text(NETS)
    _photos(tmp_path / "photos")
    proc = subprocess.run([sys.executable, "-m", "edgekd.cli", "compress", "--teacher", "nets.py:teacher",
                           "--student", "nets.py:student", "--data", "photos", "--baseline", "scratch",
                           "--output", str(tmp_path / "run")], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "labels" in proc.stderr
