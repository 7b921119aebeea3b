"""Export with parity: ONNX (torch.onnx dynamo) and TFLite (litert-torch, onnx2tf fallback) on real digits."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.export import ExportReport, export_onnx, export_tflite, parity  # noqa: E402

try:  # helpers live beside the tests; works with or without tests/__init__.py
    from tolerance_helpers import near_ties
except ImportError:
    from tests.tolerance_helpers import near_ties

# The exported file runs on other kernels than PyTorch (ONNX Runtime's MLAS, LiteRT's XNNPACK), each picking
# code for the CPU it runs on, so outputs match to FP32_MAX_ABS (asserted), not bitwise. A sample can then change
# its top-1 class only if its two top PyTorch logits are within 2 * FP32_MAX_ABS: top-1 agreement must be 1.0 on
# every other sample, whatever the CPU.
FP32_MAX_ABS = 1e-4


def min_top1_agreement(model, x) -> float:
    """The share of samples that are not near ties under FP32_MAX_ABS: the least top-1 agreement allowed."""
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    return 1.0 - float(near_ties(ref, FP32_MAX_ABS).mean())


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:16, None] / 16.0).astype(np.float32)  # real 8x8 digits, NCHW


def tiny_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()


class ExportOnlyBug(nn.Module):
    """Behaves differently while being exported: a stand-in for a converter that mistranslates a layer."""

    def forward(self, x):
        if torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export():
            return x * 2.5
        return x * 2.0


def buggy_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), ExportOnlyBug(),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()


def test_export_onnx_parity_and_report(tmp_path, digits):
    out = tmp_path / "m.onnx"
    rep = export_onnx(tiny_cnn(), digits, out)
    assert isinstance(rep, ExportReport) and out.is_file()
    assert rep.passed and rep.converter == "torch.onnx-dynamo"
    assert rep.parity["samples"] == 16 and rep.parity["top1_agreement"] >= min_top1_agreement(tiny_cnn(), digits)
    assert rep.parity["max_abs"] < FP32_MAX_ABS and rep.parity["cosine"] > 0.9999
    assert rep.ops["Conv"] == 2 and "BatchNormalization" not in rep.ops  # folded by onnxslim
    assert rep.transpose_ops == 0 and rep.size_bytes == out.stat().st_size
    d = rep.to_dict()
    assert d["attempts"][0]["converter"] == "torch.onnx-dynamo"
    # dynamic batch: the file runs a batch of 5 as well
    from edgekd.runtime import load_runner

    assert load_runner(out).predict(digits[:5]).shape == (5, 10)


def test_export_tflite_nhwc_litert(tmp_path, digits):
    out = tmp_path / "m.tflite"
    rep = export_tflite(tiny_cnn(), digits, out, converters=("litert-torch",))
    assert rep.passed and rep.converter == "litert-torch"
    assert rep.input_layout == "NHWC" and rep.input_shapes == [[1, 8, 8, 1]]
    assert rep.transpose_ops == 0  # channels-last I/O: no layout shuffles left in the graph
    assert rep.parity["top1_agreement"] >= min_top1_agreement(tiny_cnn(), digits)
    assert rep.parity["max_abs"] < FP32_MAX_ABS


def test_export_tflite_nchw_keeps_layout(tmp_path, digits):
    rep = export_tflite(tiny_cnn(), digits, tmp_path / "m.tflite", nhwc=False, converters=("litert-torch",))
    assert rep.passed and rep.input_layout == "NCHW" and rep.input_shapes == [[1, 1, 8, 8]]


def test_parity_failure_names_the_diverging_layer_and_writes_nothing(tmp_path, digits):
    out = tmp_path / "bad.onnx"
    with pytest.raises(EdgeKDError, match=r"first diverging layer: 2 \(ExportOnlyBug\)"):
        export_onnx(buggy_cnn(), digits, out, dynamic_batch=False)
    assert not out.exists() and not list(tmp_path.iterdir())  # no half-written or temporary file left


def test_parity_failure_kept_when_not_strict(tmp_path, digits):
    out = tmp_path / "bad.tflite"
    rep = export_tflite(buggy_cnn(), digits, out, converters=("litert-torch",), strict=False)
    assert out.is_file() and not rep.passed
    assert rep.diverging_layer == "2 (ExportOnlyBug)"


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((0, 1, 8, 8), np.float32), "empty"),
    (np.full((2, 1, 8, 8), np.nan, np.float32), "NaN"),
    ("not an array", "expected an array"),
])
def test_bad_samples_are_one_line_errors(tmp_path, bad, msg):
    with pytest.raises(EdgeKDError, match=msg):
        export_onnx(tiny_cnn(), bad, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_wrong_suffix_and_converter(tmp_path, digits):
    with pytest.raises(EdgeKDError, match=r"\.onnx"):
        export_onnx(tiny_cnn(), digits, tmp_path / "m.tflite")
    with pytest.raises(EdgeKDError, match="unknown TFLite converter"):
        export_tflite(tiny_cnn(), digits, tmp_path / "m.tflite", converters=("tflite-magic",))


def test_model_that_fails_on_the_sample(tmp_path):
    with pytest.raises(EdgeKDError, match="fails on the sample"):
        export_onnx(tiny_cnn(), np.zeros((2, 3, 8, 8), np.float32), tmp_path / "m.onnx")


def test_parity_compare_figures():
    ref = [np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32)]
    ok = parity.compare(ref, [ref[0] + 1e-6])
    assert ok["passed"] and ok["top1_agreement"] == 1.0
    flipped = parity.compare(ref, [ref[0][:, ::-1].copy()])
    assert not flipped["passed"] and flipped["top1_agreement"] == 0.0
    # channels-last outputs are compared in PyTorch's layout
    fmap = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    assert parity.compare([fmap], [fmap.transpose(0, 2, 3, 1)])["passed"]
    missing = parity.compare([fmap], [np.zeros((2, 7), np.float32)])
    assert not missing["passed"] and "missing" in missing["reason"]
    assert not parity.compare(ref, [np.full_like(ref[0], np.nan)])["passed"]


def test_multi_input_model_exports(tmp_path):
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 8)
            self.fc = nn.Linear(8, 4)

        def forward(self, ids, mask):
            h = self.emb(ids) * mask.unsqueeze(-1).float()
            return self.fc(h.sum(1))

    torch.manual_seed(0)
    ids = torch.randint(0, 50, (4, 6))
    mask = torch.ones(4, 6, dtype=torch.long)
    rep = export_onnx(TwoInputs().eval(), (ids, mask), tmp_path / "t.onnx")
    assert rep.passed and len(rep.input_shapes) == 2


@pytest.mark.slow
def test_onnx2tf_fallback_when_litert_fails(tmp_path, digits, monkeypatch):
    import dataclasses

    from edgekd.export import onnx2tf_backend
    from edgekd.export.converters import CONVERTERS, converters_for

    if not onnx2tf_backend.available():
        pytest.skip("onnx2tf not installed")

    def broken(*a, **k):
        raise RuntimeError("simulated litert-torch failure")

    converters_for("tflite")  # registers the built-in converters
    monkeypatch.setitem(CONVERTERS, "litert-torch", dataclasses.replace(CONVERTERS["litert-torch"], convert=broken))
    rep = export_tflite(tiny_cnn(), digits, tmp_path / "m.tflite")
    assert rep.converter == "onnx2tf" and rep.passed and rep.input_layout == "NHWC"
    assert rep.attempts[0]["ok"] is False and "simulated" in rep.attempts[0]["error"]
    # the fallback's file carries a SignatureDef, so it can be quantized like litert-torch's
    from edgekd.quantize import quantize

    q = quantize(tmp_path / "m.tflite", tmp_path / "q.tflite", calib=digits)
    assert q.precision == "int8" and q.parity["cosine"] > 0.99


def test_torchscript_fallback_when_dynamo_fails(tmp_path, digits, monkeypatch):
    import dataclasses

    from edgekd.export.converters import CONVERTERS, converters_for

    def broken(*a, **k):
        raise RuntimeError("simulated torch.export failure")

    converters_for("onnx")  # registers the built-in converters
    monkeypatch.setitem(CONVERTERS, "torch.onnx-dynamo",
                        dataclasses.replace(CONVERTERS["torch.onnx-dynamo"], convert=broken))
    rep = export_onnx(tiny_cnn(), digits, tmp_path / "m.onnx")
    assert rep.converter == "torch.onnx-torchscript" and rep.passed
    assert [a["ok"] for a in rep.attempts] == [False, False, True]
    assert "simulated" in rep.attempts[0]["error"]
    assert rep.parity["top1_agreement"] >= min_top1_agreement(tiny_cnn(), digits)


@pytest.mark.slow
def test_coverage_suite_on_a_builtin_model(tmp_path):
    """benchmarks/conversion_coverage.py on one timm-free model: every column of the table is filled."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "conversion_coverage.py"
    spec = importlib.util.spec_from_file_location("conversion_coverage", path)
    cov = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cov)
    rec = cov.run_one("edgekd:cnn-s", 32, tmp_path, latency=False, converters=("litert-torch",))
    assert rec["onnx_fp32"]["passed"] and rec["onnx_fp32"]["converter"] == "torch.onnx-dynamo"
    t = rec["tflite_fp32"]
    assert t["passed"] and t["converter"] == "litert-torch" and t["input_layout"] == "NHWC" and t["transpose_ops"] == 0
    q = rec["tflite_int8"]
    assert q["ok"] and q["precision"] == "int8" and q["size_bytes"] < t["size_bytes"] and q["parity"]["cosine"] > 0.9
    summ = cov.summarize([rec])
    assert summ["tflite_fp32_within_parity"] == 1
    md = cov.markdown([rec], {"models": 1, "summary": "s", "inputs": "i", "host": "h"})
    assert "| edgekd:cnn-s |" in md and "litert-torch" in md
