"""Issue 22's standards: a failed quantization check is never silent, unlabeled data calibrates and is scored
by agreement with the float file, and every figure says what it was measured on (test split, sample count)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from edgekd.core import Artifact  # noqa: E402
from edgekd.data import load_data  # noqa: E402
from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.quantize import quantize  # noqa: E402
from edgekd.quantize.evaluation import MIN_EVAL_SAMPLES, agreement  # noqa: E402

try:  # the trained digits CNN and its broken twin are test_quantize's fixtures
    from test_quantize import data, float_files, outlier_onnx, trained  # noqa: F401
except ImportError:
    from tests.test_quantize import data, float_files, outlier_onnx, trained  # noqa: F401


def _app(cmd):
    app = typer.Typer()
    app.command()(cmd)
    return app


def _invoke(cmd, args):
    try:
        return CliRunner(mix_stderr=False).invoke(_app(cmd), args)
    except TypeError:  # click >= 8.2 always keeps stderr apart
        return CliRunner().invoke(_app(cmd), args)


def _digits_npz(path, data, *, labels=True, test=None):
    arrays = {"x": data.train.x[:300]}
    if labels:
        arrays["y"] = data.train.y[:300]
    if test is not None:
        arrays["x_test"] = data.test.x[:test]
        if labels:
            arrays["y_test"] = data.test.y[:test]
    np.savez(path, **arrays)
    return path


def test_failed_parity_without_budget_warns_on_stderr_and_in_the_report(outlier_onnx, tmp_path):
    from edgekd.commands.quantize import quantize_cmd

    out = tmp_path / "q.onnx"
    res = _invoke(quantize_cmd, [str(outlier_onnx), "-o", str(out), "--data", "digits", "--calib-samples", "64",
                                 "--json"])
    assert res.exit_code == 0 and out.is_file()  # no budget: the file is written, but never silently
    rep = json.loads(res.stdout)
    assert rep["check"] == {"passed": False, "what": "parity against the float file", "allowed": False}
    assert rep["parity"]["passed"] is False and any("failed its parity check" in w for w in rep["warnings"])
    assert "warning: the int8 file failed its parity check" in res.stderr


def test_failed_budget_is_an_error_and_writes_nothing(outlier_onnx, tmp_path):
    from edgekd.commands.quantize import quantize_cmd

    out = tmp_path / "q.onnx"
    # dynamic int8: no layer kept in float repairs this model, so the budget cannot be met
    res = _invoke(quantize_cmd, [str(outlier_onnx), "-o", str(out), "--data", "digits", "--mode", "dynamic",
                                 "--max-drop", "1"])
    assert res.exit_code != 0 and isinstance(res.exception, EdgeKDError) and not out.exists()
    assert "over the --max-drop 1.0 budget" in str(res.exception)


def test_unlabeled_npz_and_image_folder_calibrate(tmp_path, data):
    from PIL import Image

    npz = _digits_npz(tmp_path / "x_only.npz", data, labels=False, test=120)
    with pytest.raises(EdgeKDError, match="must hold arrays 'x' and 'y'"):
        load_data(str(npz))  # training still needs labels
    b = load_data(str(npz), need_labels=False)
    assert not b.labelled and b.num_classes == 0 and b.test.y is None and len(b.test) == 120
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(10):
        Image.fromarray((data.train.x[i, 0] * 40 + 128).clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    with pytest.raises(EdgeKDError, match="no class sub-folders"):
        load_data(str(folder))
    f = load_data(str(folder), need_labels=False)
    assert not f.labelled and len(f.train) + len(f.val) + len(f.test) == 10 and f.source["classes"] == []


def test_unlabeled_evaluation_measures_agreement_and_says_so(float_files, tmp_path, data):
    from edgekd.commands.quantize import quantize_cmd

    npz = _digits_npz(tmp_path / "x_only.npz", data, labels=False, test=150)
    out = tmp_path / "q.onnx"
    res = _invoke(quantize_cmd, [str(float_files[0]), "-o", str(out), "--data", str(npz), "--normalize", "none",
                                 "--max-drop", "10", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    ev = rep["evaluation"]
    assert ev["measure"] == "agreement" and ev["samples"] == 150 and "test split" in ev["on"]
    assert "agreement with the float file" in ev["why"]
    assert rep["accuracy"] is None and rep["accuracy_float"] is None
    assert rep["agreement"]["top1"] >= 90 and rep["drop_points"] == pytest.approx(100 - rep["agreement"]["top1"])
    assert rep["budget_met"] and rep["check"]["passed"]


def test_labelled_npz_with_x_test_is_scored_on_the_test_split(float_files, tmp_path, data):
    from edgekd.commands.quantize import quantize_cmd

    npz = _digits_npz(tmp_path / "d.npz", data, test=40)
    out = tmp_path / "q.onnx"
    res = _invoke(quantize_cmd, [str(float_files[0]), "-o", str(out), "--data", str(npz), "--normalize", "none",
                                 "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["evaluation"]["samples"] == 40 and "test split" in rep["evaluation"]["on"]
    assert rep["evaluation"]["measure"] == "accuracy" and rep["accuracy"] is not None
    # 40 < MIN_EVAL_SAMPLES: warned, and a budget finer than one sample (2.5 points) is refused
    assert any(f"fewer than {MIN_EVAL_SAMPLES}" in w for w in rep["warnings"]) and "only 40 held-out" in res.stderr
    bad = _invoke(quantize_cmd, [str(float_files[0]), "-o", str(tmp_path / "b.onnx"), "--data", str(npz),
                                 "--normalize", "none", "--max-drop", "1"])
    assert bad.exit_code != 0 and "finer than this evaluation can measure" in str(bad.exception)
    assert not (tmp_path / "b.onnx").exists()


def test_agreement_figures():
    ref = np.array([[3.0, 1.0, 0.0], [0.0, 1.0, 3.0]])
    same = agreement(ref, ref)
    assert same["top1"] == 100 and same["cosine_mean"] == pytest.approx(1) and same["kl_mean"] == pytest.approx(0)
    flipped = agreement(ref, ref[:, ::-1])
    assert flipped["top1"] == 0 and flipped["kl_mean"] > 0.5


def test_export_samples_uses_n_or_says_why_not(tmp_path, data):
    from edgekd.commands.export import export_cmd

    npz = _digits_npz(tmp_path / "d.npz", data, test=40)
    args = ["cnn-xs", "--data", str(npz), "--normalize", "none", "--json"]
    many = _invoke(export_cmd, [*args, "-o", str(tmp_path / "a.onnx"), "--samples", "120"])
    assert many.exit_code == 0, many.output
    assert json.loads(many.stdout)["parity"]["samples"] == 40  # all the test split holds, and said so
    assert "--samples 120" in many.stderr and "holds only 40" in many.stderr
    some = _invoke(export_cmd, [*args, "-o", str(tmp_path / "b.onnx"), "--samples", "36"])
    assert json.loads(some.stdout)["parity"]["samples"] == 36 and not some.stderr.strip()


def _files(check_passed: bool, allowed: bool = False):
    check = {"passed": check_passed, "what": "parity against the float file", "allowed": allowed}
    return [Artifact("student tflite fp32", "student_fp32.tflite", "tflite", "fp32"),
            Artifact("student tflite int8", "student_int8.tflite", "tflite", "int8", extra={"check": check})]


def test_a_file_that_failed_its_check_does_not_ship_unless_allowed():
    from edgekd.pipeline.shipping import mark_shipped
    from edgekd.targets import load_target

    android = load_target("android")
    assert any(s.precision == "int8" and s.format == "tflite" for s in android.ships)
    files = _files(False)
    notes = mark_shipped(android, files)
    assert [a.path for a in files if a.extra["shipped"]] == ["student_fp32.tflite"]
    assert any("student_int8.tflite failed its check" in n and "student_fp32.tflite ships instead" in n for n in notes)
    allowed = _files(False, allowed=True)
    mark_shipped(android, allowed)
    assert [a.path for a in allowed if a.extra["shipped"]] == ["student_int8.tflite"]
    ok = _files(True)
    assert not mark_shipped(android, ok) and ok[1].extra["shipped"] and not ok[0].extra["shipped"]


def test_quantize_api_with_unlabeled_eval_and_budget(float_files, data, tmp_path):
    rep = quantize(float_files[0], tmp_path / "q.onnx", calib=data.calibration(64), eval_data=(data.test.x, None),
                   max_drop=5.0, eval_split="digits test")
    assert rep.evaluation["measure"] == "agreement" and rep.budget_met and rep.check["passed"]
    assert rep.parity["on"] == "digits test" and not rep.warnings
    with pytest.raises(EdgeKDError, match="evaluation labels"):
        quantize(float_files[0], tmp_path / "r.onnx", calib=data.calibration(8), eval_data=(data.test.x, "labels"))


def test_tflite_calibration_keeps_the_widest_sample_in_range(float_files, data):
    """ai-edge-quantizer's own calibrate() keeps a moving average of the ranges (the widest sample, seen first, is
    forgotten); edgekd's min/max merge keeps the global range, whatever the order (issue 22's 25-point loss)."""
    from ai_edge_quantizer import quantizer, recipe

    from edgekd.quantize import tflite_quant

    calib = data.calibration(24).copy()
    calib[0] *= 3  # the widest sample first
    q = quantizer.Quantizer(str(float_files[1]))
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    feed = tflite_quant._calibration_feed(float_files[1], calib)

    def input_max(qsvs):
        return max(float(np.max(v["max"])) for v in qsvs.values() if v and "max" in v and np.size(v["max"]) == 1
                   and float(np.max(v["max"])) <= calib.max() + 1e-5)

    assert input_max(tflite_quant._calibrate_min_max(q, feed)) == pytest.approx(float(calib.max()), rel=1e-5)
    assert input_max(q.calibrate(feed, num_threads=1)) < 0.9 * float(calib.max())  # the library's default forgets it


def test_float_fallback_search_never_keeps_every_layer_float(tmp_path):
    """An unreachable budget: the search stops at all layers but one float (with every layer float the file is the
    float file, and ai-edge-quantizer refuses to quantize it: no activation left to calibrate)."""
    from types import SimpleNamespace

    from edgekd.quantize.api import _search
    from edgekd.quantize.report import QuantReport

    tried = []
    ranked = [{"name": f"op{i}", "op": "CONV_2D", "sqnr_db": 10.0, "loss_db": 1.0} for i in range(5)]
    backend = SimpleNamespace(fmt="tflite", rank=lambda first, x: ranked,
                              make=lambda dest, keep: tried.append(list(keep)) or dest)
    scorer = SimpleNamespace(reference=100.0, score=lambda path: 50.0)  # never within the budget
    report = QuantReport(path="q.tflite", format="tflite", mode="int8")
    _, acc, keep = _search(backend, tmp_path / "q0.tflite", 40.0, report, np.zeros((8, 1)), scorer, 1.0, tmp_path)
    assert [len(k) for k in tried] == [1, 2, 4]  # doubling, capped at 5 - 1
    assert acc == 50.0 and len(keep) == 1  # the first candidate that did best


def test_float_fallback_search_warns_when_the_file_is_mostly_float(tmp_path):
    """A budget met only with most layers float is met, and the report says the file is mostly float."""
    from types import SimpleNamespace

    from edgekd.quantize.api import _search
    from edgekd.quantize.report import QuantReport

    ranked = [{"name": f"op{i}", "op": "CONV_2D", "sqnr_db": 10.0, "loss_db": 1.0} for i in range(5)]
    backend = SimpleNamespace(fmt="tflite", rank=lambda first, x: ranked, make=lambda dest, keep: (dest, len(keep)))
    scorer = SimpleNamespace(reference=100.0, score=lambda made: 100.0 if made[1] >= 4 else 90.0)
    report = QuantReport(path="q.tflite", format="tflite", mode="int8")
    _, acc, keep = _search(backend, tmp_path / "q0.tflite", 90.0, report, np.zeros((8, 1)), scorer, 1.0, tmp_path)
    assert acc == 100.0 and len(keep) == 4
    assert any("4 of 5 layers kept float" in w for w in report.warnings)
