"""`edgekd compress` end to end through the real CLI on real data (scikit-learn digits), with a user teacher."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TEACHER = (
    "import torch\n"
    "from torch import nn\n"
    "def build():\n"
    "    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),\n"
    "        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),\n"
    "        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))\n"
)


def compress(args, cwd):
    cmd = [sys.executable, "-m", "edgekd.cli", "compress", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=900)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    (work / "tnet.py").write_text(TEACHER)
    out = work / "run"
    args = ["--teacher", "tnet.py:build", "--student", "cnn-xs", "--data", "digits", "--epochs", "1",
            "--target", "android", "--output", str(out), "--runs", "5", "--json"]
    first = compress(args, work)
    assert first.returncode == 0, first.stderr[-2000:]
    second = compress(args, work)  # same inputs: every stage is skipped
    assert second.returncode == 0, second.stderr[-2000:]
    return out, json.loads(first.stdout), second


def test_report_schema(run_dir):
    out, report, _ = run_dir
    written = json.loads((out / "report.json").read_text())  # rewritten by the (skipping) second run
    assert {k: v for k, v in report.items() if k != "seconds"} == {k: v for k, v in written.items() if k != "seconds"}
    assert report["schema"] == 1
    arts = {a["name"]: a for a in report["artifacts"]}
    assert any(a["format"] == "pytorch" and a["name"].startswith("teacher") for a in arts.values())
    formats = {(a["format"], a["precision"]) for a in arts.values()}
    assert {("pytorch", "fp32"), ("onnx", "fp32"), ("tflite", "fp32"), ("onnx", "int8"), ("tflite", "int8")} <= formats
    for a in arts.values():
        assert set(a) >= {"name", "path", "format", "precision", "accuracy", "size_bytes", "latency"}
        assert 0.0 <= a["accuracy"] <= 100.0  # percent
        if a["format"] != "pytorch" or a["name"] == "student":
            assert (out / a["path"]).is_file(), a["path"]
        lat = a["latency"]
        if a["format"] != "pytorch":
            assert lat["kind"] in {"measured", "simulated", "estimated"}
            assert lat["p50_ms"] > 0 and lat["p90_ms"] >= lat["p50_ms"]
            assert lat["runs"] >= 5 and lat["threads"] >= 1 and lat["runtime"] and lat["where"]
    # No android device here: the figures must say they were measured on this host.
    shipped = [a for a in arts.values() if a["format"] == "tflite" and a["precision"] == "int8" and a["name"].startswith("student")]
    assert shipped and "host" in shipped[0]["latency"]["where"].lower()
    # the precision rule (issue 22) ran and said which precision ships on android's figure of record, and why
    rule = [n for n in report["notes"] if n.startswith("android: ")]
    assert len(rule) == 1 and " ships" in rule[0] and len(report["shipped"]) == 1, report["notes"]


def test_manifest_records_stages_and_hashes(run_dir):
    out, _, _ = run_dir
    manifest = json.loads((out / "manifest.json").read_text())
    stages = manifest["stages"]
    for name in ("distill", "export", "quantize", "evaluate", "profile"):
        assert any(s.startswith(name) for s in stages), (name, list(stages))
    for stage in stages.values():
        assert "settings" in stage and "seconds" in stage
        for art in stage.get("artifacts", []):
            assert len(art["sha256"]) == 64


def test_rerun_skips_unchanged_stages(run_dir):
    _, _, second = run_dir
    assert "skipped" in second.stderr
    for stage in ("distill", "quantize-tflite-int8", "evaluate"):
        assert stage in second.stderr.split("skipped", 1)[1], second.stderr


def test_no_partial_files_left(run_dir):
    out, _, _ = run_dir
    assert not [p for p in out.rglob("*") if ".partial" in p.name]


MLP_TEACHER = (
    "from torch import nn\n"
    "def build():\n"
    "    return nn.Sequential(nn.Linear(64, 128), nn.LayerNorm(128), nn.GELU(), nn.Linear(128, 10))\n"
)


def test_feature_vectors_compress_end_to_end(tmp_path):
    """Not only images: (N, F) feature vectors from an .npz go through derive, distill, int8 and TFLite."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(tmp_path / "tab.npz", x=(d.data / 16).astype(np.float32), y=d.target)
    (tmp_path / "mlp.py").write_text(MLP_TEACHER)
    proc = compress(["--teacher", "mlp.py:build", "--student", "auto:0.5", "--data", "tab.npz", "--epochs", "1",
                     "--target", "android", "--output", "run", "--runs", "5", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["data"]["layout"] == "NF" and report["data"]["input_shape"] == [64]
    arts = {(a["format"], a["precision"], a["name"].split()[0]): a for a in report["artifacts"]}
    student, shipped = arts[("pytorch", "fp32", "student")], arts[("tflite", "int8", "student")]
    assert student["accuracy"] > 50.0  # 10 classes: well above chance after one epoch
    assert abs(shipped["accuracy"] - student["accuracy"]) < 5.0
    assert "vectors of 64 features" in (tmp_path / "run" / "report.md").read_text()


def test_baseline_scratch_reports_the_gain_and_ships_the_better_student(tmp_path):
    """A teacher with nothing to teach (untrained: chance accuracy) and a recipe forced to follow it (hinton, 90 %
    soft targets): the labels-only baseline wins on the validation split, so it is the student that ships."""
    (tmp_path / "tnet.py").write_text(TEACHER)
    out = tmp_path / "run"
    args = ["--teacher", "tnet.py:build", "--student", "cnn-xs", "--data", "digits", "--epochs", "1", "--recipe", "hinton",
            "--target", "host", "--output", str(out), "--runs", "3", "--baseline", "scratch", "--json"]
    proc = compress(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    base = report["baseline"]
    assert base["kind"] == "scratch" and report["distill"]["recipe"] == "hinton"
    assert abs(base["gain_points"] - (base["distilled_test_acc"] - base["scratch_test_acc"])) < 0.02  # rounding
    assert any("distillation bought nothing" in n for n in report["notes"])  # said plainly
    # the choice is made on val, beyond its noise; the exported student is the labels-only one
    assert base["scratch_val_acc"] - base["distilled_val_acc"] > base["val_noise_points"] > 0
    assert base["ships"] == "scratch" and any("labels-only student ships" in n for n in report["notes"])
    arts = {a["name"]: a for a in report["artifacts"]}
    assert arts["student"]["accuracy"] == pytest.approx(base["scratch_test_acc"], abs=0.01)
    md = (out / "report.md").read_text()
    assert "baseline (labels only, same budget)" in md and "the labels-only student ships" in md
    assert (out / "baseline" / "auto_probe.json").is_file() and (out / "student_scratch.pt").is_file()
    again = compress(args, tmp_path)  # a rerun reuses both students and ships the same one
    assert again.returncode == 0 and json.loads(again.stdout)["shipped"] == report["shipped"]


@pytest.mark.parametrize("target", ["android-executorch", "ios"])
def test_compress_ships_pte_and_coreml_for_their_targets(tmp_path, target):
    """android-executorch ships an int8 .pte (measured on this host, labelled host-only); ios ships Core ML
    packages with no latency and no accuracy (nothing here runs them), and the report says why."""
    pytest.importorskip("executorch")
    import importlib.util

    if importlib.util.find_spec("coremltools") is None:
        pytest.skip("coremltools is not installed")
    (tmp_path / "tnet.py").write_text(TEACHER)
    proc = compress(["--teacher", "tnet.py:build", "--student", "cnn-xs", "--data", "digits", "--epochs", "1",
                     "--target", target, "--output", "run", "--runs", "5", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shipped = [a for a in json.loads(proc.stdout)["artifacts"] if a["extra"].get("shipped")]
    md = (tmp_path / "run" / "report.md").read_text()
    if target == "ios":
        assert {(a["format"], a["precision"]) for a in shipped} == {("coreml", "fp16"), ("coreml", "int8")}
        assert all(a["latency"] is None and a["accuracy"] is None for a in shipped)
        assert (tmp_path / "run" / "student_fp16.mlpackage" / "Manifest.json").is_file()
        assert "not measurable here" in md and "not checked on an Apple device" in md
        # what an app feeds: a grayscale image of raw 0..255 pixels, the run's data normalisation folded in
        from edgekd.inspect import model_info

        report = json.loads(proc.stdout)
        (mean,), (std,) = report["data"]["normalisation"]["mean"], report["data"]["normalisation"]["std"]
        for a in shipped:
            info = model_info(tmp_path / "run" / a["path"])
            (inp,) = info["inputs"]
            assert inp["dtype"] == "image" and inp["color_space"] == "GRAYSCALE" and inp["shape"] == [1, 1, 8, 8]
            pre = info["preprocessing"][inp["name"]]
            assert pre["scale"] == pytest.approx(1 / (255 * std), rel=1e-5)
            assert pre["bias"] == pytest.approx([-mean / std], rel=1e-5)
        assert "Core ML packages take a GRAYSCALE image of raw 0..255 pixels" in md
        assert report["data"]["coreml_input"] == ["image GRAYSCALE"]
    else:
        (a,) = shipped
        assert (a["format"], a["precision"]) == ("pte", "int8") and a["accuracy"] > 50.0
        assert a["latency"]["kind"] == "measured" and a["latency"]["backend"] == "host-fallback"
        assert "NOT the device" in a["latency"]["where"]
        assert "ops in XNNPACK" in md
