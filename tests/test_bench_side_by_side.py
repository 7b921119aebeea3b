"""The issue-22 side-by-side summary and the labelled real-weight coverage rows (benchmarks, no conversion)."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_summary_reads_edgekd_and_each_peer_side_by_side():
    sbs = _load("real_weights_side_by_side")
    rows = {"edgekd tflite int8": {"top1": 89.1, "a76": {"instructions": 63_000_000}},
            "onnx2tf tflite int8 (integer_quant)": {"top1": 84.5, "a76": {"instructions": 62_900_000}},
            "onnxruntime quantize_static defaults": {"top1": 54.5, "a76": {"none": "ONNX file: no TFLite file"}}}
    out = sbs.summary({"lite0": {"side_by_side": {"files": rows}}, "lite9": {"files": rows}})
    assert set(out) == {"edgekd", "peers"}
    assert out["edgekd"] == {"lite0": {"int8_top1_agreement": 89.1, "android_figure": 63_000_000}}
    assert out["peers"]["onnx2tf integer_quant"]["lite0"] == {"int8_top1_agreement": 84.5, "android_figure": 62_900_000}
    ort = out["peers"]["onnxruntime quantize_static defaults"]["lite0"]
    assert ort["android_figure"] is None and "no TFLite" in ort["android_figure_none_because"]  # null never silent


def test_coverage_rows_say_which_weights_they_have():
    cov = _load("conversion_coverage")
    assert cov.weights_of("lite2-real") == "real" and cov.weights_of("resnet18") == "random"
    rows = [{"model": "resnet18"}, {"model": "lite0-real"}]
    md = cov.markdown(rows, {"models": 2, "summary": "s", "inputs": "i", "host": "h"})
    assert "| resnet18 | random |" in md and "| lite0-real | **real** |" in md
