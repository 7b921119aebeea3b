"""Bad input through the real `edgekd` command: one `error:` line, non-zero exit, no model file left."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EDGEKD = [sys.executable, "-m", "edgekd.cli"]
MODEL_SUFFIXES = {".onnx", ".tflite", ".pt", ".pt2"}


def run(args, cwd=None):
    return subprocess.run(EDGEKD + args, capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_one_line_error(proc, needle):
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error: "), proc.stderr
    assert needle in lines[-1], lines[-1]
    assert "Traceback" not in proc.stderr


def no_model_files(out: Path):
    return not out.exists() or not [p for p in out.rglob("*") if p.suffix in MODEL_SUFFIXES]


@pytest.fixture
def tiny_teacher(tmp_path):
    src = tmp_path / "tnet.py"
    src.write_text(
        "import torch\n"
        "def build():\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),\n"
        "        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))\n"
    )
    return src


def test_help_is_fast_and_lists_commands():
    proc = run(["--help"])
    assert proc.returncode == 0
    for cmd in ("compress", "distill", "models"):
        assert cmd in proc.stdout


def test_unknown_target(tmp_path):
    proc = run(["compress", "--target", "no-such-phone", "--output", str(tmp_path / "o")])
    assert_one_line_error(proc, "unknown target 'no-such-phone'")
    assert no_model_files(tmp_path / "o")


def test_missing_checkpoint(tmp_path, tiny_teacher):
    proc = run(["compress", "--teacher", f"{tiny_teacher}:build", "--teacher-weights", str(tmp_path / "nope.pt"),
                "--data", "digits", "--output", str(tmp_path / "o")])
    assert_one_line_error(proc, "does not exist")
    assert no_model_files(tmp_path / "o")


def test_corrupt_checkpoint(tmp_path, tiny_teacher):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 truncated zip")
    proc = run(["compress", "--teacher", f"{tiny_teacher}:build", "--teacher-weights", str(bad),
                "--data", "digits", "--output", str(tmp_path / "o")])
    assert_one_line_error(proc, "not a readable PyTorch checkpoint")
    assert no_model_files(tmp_path / "o")


def test_missing_entrypoint(tmp_path, tiny_teacher):
    proc = run(["compress", "--teacher", f"{tiny_teacher}:no_such_factory", "--data", "digits",
                "--output", str(tmp_path / "o")])
    assert_one_line_error(proc, "has no attribute 'no_such_factory'")
    proc = run(["compress", "--teacher", "not_a_module_xyz:build", "--data", "digits", "--output", str(tmp_path / "o")])
    assert_one_line_error(proc, "cannot be imported")
    assert no_model_files(tmp_path / "o")


@pytest.mark.parametrize("source, needle", [
    ("import no_such_dependency_xyz\ndef build():\n    pass\n", "ModuleNotFoundError: No module named 'no_such_dependency_xyz'"),
    ("def build(:\n", "SyntaxError"),
    ("def build():\n    raise ValueError('needs a config file')\n", "failed: ValueError: needs a config file"),
])
def test_broken_user_module_is_one_line_error(tmp_path, source, needle):
    (tmp_path / "broken.py").write_text(source)
    proc = run(["compress", "--teacher", "broken.py:build", "--data", "digits", "--output", str(tmp_path / "o")],
               cwd=tmp_path)
    assert_one_line_error(proc, needle)
    assert no_model_files(tmp_path / "o")


def test_data_of_wrong_shape(tmp_path, tiny_teacher):
    np.savez(tmp_path / "rgb.npz", x=np.random.rand(40, 12, 12, 3).astype(np.float32), y=np.arange(40) % 10)
    proc = run(["compress", "--teacher", f"{tiny_teacher}:build", "--data", str(tmp_path / "rgb.npz"),
                "--output", str(tmp_path / "o")])
    assert_one_line_error(proc, "does not fit the teacher")
    assert no_model_files(tmp_path / "o")


def test_student_that_cannot_take_the_data_fails_before_training(tmp_path):
    (tmp_path / "mlp.py").write_text("import torch\ndef build():\n    return torch.nn.Linear(16, 3)\n"
                                     "def conv():\n    return torch.nn.Conv2d(1, 3, 3)\n")
    np.savez(tmp_path / "tab.npz", x=np.random.rand(60, 16).astype(np.float32), y=np.arange(60) % 3)
    base = ["compress", "--teacher", "mlp.py:build", "--data", "tab.npz", "--output", "o"]
    proc = run(base, cwd=tmp_path)  # the default student, a built-in CNN
    assert_one_line_error(proc, "is a built-in image CNN but 'tab' holds feature vectors")
    proc = run(base + ["--student", "mlp.py:conv"], cwd=tmp_path)
    assert_one_line_error(proc, "does not fit the student")
    assert "distilling" not in proc.stderr + proc.stdout
    assert no_model_files(tmp_path / "o")


def test_unwritable_output_dir(tmp_path, tiny_teacher):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = run(["compress", "--teacher", f"{tiny_teacher}:build", "--data", "digits", "--output", str(blocker / "run")])
    assert_one_line_error(proc, "not writable")


def test_bad_option_value_is_usage_error(tmp_path):
    proc = run(["compress", "--epochs", "0", "--output", str(tmp_path / "o")])
    assert proc.returncode == 2


def test_bad_normalize_is_one_line_error(tmp_path, tiny_teacher):
    proc = run(["compress", "--teacher", f"{tiny_teacher}:build", "--data", "digits", "--normalize", "imagenet",
                "--output", str(tmp_path / "o")])
    assert_one_line_error(proc, "has 1 channel")
    assert no_model_files(tmp_path / "o")
