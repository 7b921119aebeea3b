"""The converter registry: a converter declared in one place (here, in a test file) joins the one export
loop for its format, in its order, with the same parity check, attempt records and errors as the built-ins."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.export import export_onnx, export_tflite  # noqa: E402
from edgekd.export.converters import CONVERTERS, converters_for, pick, register_converter  # noqa: E402


def tiny_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


SAMPLE = np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32)


@pytest.fixture
def toy_converters(tmp_path):
    """'test-copy' writes a file made by the built-in dynamo exporter (so parity passes); 'test-broken'
    always raises; 'test-missing' is never installed. All are removed again after the test."""
    good = tmp_path / "good.onnx"
    export_onnx(tiny_mlp(), SAMPLE, good, dynamic_batch=False)
    calls = []

    @register_converter("test-copy", produces="onnx", order=5, tries=lambda job: [{"variant": 1}, {"variant": 2}])
    def copy(job, dest, variant):
        calls.append(variant)
        if variant == 1:
            raise RuntimeError("variant 1 is not supported")
        shutil.copy(good, dest)

    @register_converter("test-broken", produces="onnx", order=1)
    def broken(job, dest):
        raise RuntimeError("always fails")

    register_converter("test-missing", produces="onnx", order=2, available=lambda: False,
                       missing="not installed (pip install test)")(broken)
    yield calls
    for name in ("test-copy", "test-broken", "test-missing"):
        CONVERTERS.pop(name, None)


def test_registered_converters_are_tried_by_order(toy_converters, tmp_path):
    names = [c.name for c in converters_for("onnx")]
    assert names[:3] == ["test-broken", "test-missing", "test-copy"]
    assert names[3:] == ["torch.onnx-dynamo", "torch.onnx-torchscript"]
    assert [c.name for c in converters_for("tflite")] == ["litert-torch", "onnx2tf"]

    rep = export_onnx(tiny_mlp(), SAMPLE, tmp_path / "m.onnx")
    assert rep.passed and rep.converter == "test-copy"
    assert toy_converters == [1, 2]  # each of its tries, stopping at the first file within parity
    a = rep.attempts
    assert [x["converter"] for x in a] == ["test-broken", "test-missing", "test-copy", "test-copy"]
    assert a[0]["ok"] is False and a[0]["error"] == "RuntimeError: always fails"
    assert a[1] == {"converter": "test-missing", "ok": False, "error": "not installed (pip install test)"}
    assert a[2]["variant"] == 1 and "not supported" in a[2]["error"]
    assert a[3]["variant"] == 2 and a[3]["ok"] and a[3]["parity"]["passed"] and a[3]["seconds"] >= 0
    assert rep.format == "onnx" and rep.input_shapes == [[6]] and rep.opset and rep.num_ops > 0


def test_the_caller_picks_converters_and_errors_name_every_attempt(toy_converters, tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(EdgeKDError, match=r"ONNX export failed: test-broken: RuntimeError: always fails \| "
                                          r"test-missing: not installed"):
        export_onnx(tiny_mlp(), SAMPLE, out, converters=("test-broken", "test-missing"))
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["good.onnx"]  # no candidate left behind
    with pytest.raises(EdgeKDError, match=r"unknown ONNX converter\(s\) \['litert-torch'\]"):
        pick("onnx", "ONNX", ("litert-torch",))  # a TFLite converter does not write ONNX
    assert [c.name for c in pick("onnx", "ONNX", ("test-copy", "test-broken"))] == ["test-copy", "test-broken"]


def test_a_name_is_registered_once():
    converters_for("onnx")
    with pytest.raises(ValueError, match="already registered"):
        register_converter("litert-torch", produces="tflite", order=1)(lambda job, dest: None)


def test_a_converter_from_another_format_gets_that_file_made_first(tmp_path):
    seen = []

    @register_converter("test-from-onnx", produces="tflite", order=99, via="onnx")
    def from_onnx(job, dest, source):
        seen.append((source.suffix, source.is_file()))
        raise RuntimeError("no TFLite writer here")

    try:
        with pytest.raises(EdgeKDError, match=r"TFLite export failed: test-from-onnx: RuntimeError: no TFLite writer"):
            export_tflite(tiny_mlp(), SAMPLE, tmp_path / "m.tflite", converters=("test-from-onnx",))
    finally:
        CONVERTERS.pop("test-from-onnx", None)
    assert seen == [(".onnx", True)] and not list(tmp_path.iterdir())
