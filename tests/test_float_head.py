"""The float head rule of static int8 (edgekd/quantize/float_head.py): the layer producing the logits gives float
logits by default in ONNX QDQ and TFLite full-int8 with float I/O (int8 weights; fp32 weights when asked), goes
int8 with --int8-head, and the report says which."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.quantize import quantize  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny random CNN classifier (conv, pool, linear head) on 1x8x8 inputs, as ONNX and TFLite float files."""
    from edgekd.export import export_onnx, export_tflite

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(8, 10)).eval()
    x = np.random.default_rng(0).normal(size=(16, 1, 8, 8)).astype(np.float32)
    d = tmp_path_factory.mktemp("head")
    export_onnx(m, x, d / "f.onnx")
    export_tflite(m, x, d / "f.tflite", converters=("litert-torch",))
    return d / "f.onnx", d / "f.tflite"


@pytest.fixture(scope="module")
def calib():
    return np.random.default_rng(1).normal(size=(32, 1, 8, 8)).astype(np.float32)


def _onnx_gemm(path):
    """(weight input is a float initializer, output is requantized) of the Gemm in a QDQ file."""
    import onnx

    g = onnx.load(str(path)).graph
    gemm = next(n for n in g.node if n.op_type == "Gemm")
    float_w = gemm.input[1] in {t.name for t in g.initializer if t.data_type == onnx.TensorProto.FLOAT}
    requant = any(n.op_type == "QuantizeLinear" and gemm.output[0] in n.input for n in g.node)
    return float_w, requant


def _tflite_fc(path):
    """(weight dtype, output dtype) of the FULLY_CONNECTED op."""
    from edgekd.export import execute

    it = execute.tflite_interpreter(path)
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    fc = next(op for op in it._get_ops_details() if op["op_name"] == "FULLY_CONNECTED")
    return tensors[fc["inputs"][1]]["dtype"], tensors[fc["outputs"][0]]["dtype"]


def test_onnx_head_gives_float_logits_by_default_and_goes_int8_when_asked(files, calib, tmp_path):
    rep = quantize(files[0], tmp_path / "q.onnx", calib=calib, eval_data=(calib, None))
    fh = rep.float_head
    assert fh["applied"] and len(fh["layers"]) == 1 and fh["weights"] == "int8" and "logits" in fh["why"]
    assert any(n.startswith("float head: ") and "float logits" in n for n in rep.notes), rep.notes
    assert _onnx_gemm(tmp_path / "q.onnx") == (False, False)  # int8 weights, output not requantized
    assert rep.ops["Conv"] == 1 and rep.ops["QuantizeLinear"] >= 1  # the body is still int8
    assert rep.agreement["top1"] >= 90.0 and rep.agreement["cosine_mean"] > 0.99

    f32 = quantize(files[0], tmp_path / "f.onnx", calib=calib, float_head_weights="float")
    assert f32.float_head["weights"] == "float" and _onnx_gemm(tmp_path / "f.onnx") == (True, False)

    off = quantize(files[0], tmp_path / "i.onnx", calib=calib, float_head=False)
    assert not off.float_head["applied"] and off.float_head["layers"] == [] and off.float_head["weights"] is None
    assert "--int8-head" in off.float_head["why"]
    assert _onnx_gemm(tmp_path / "i.onnx") == (False, True)
    assert not any(n.startswith("float head") for n in off.notes)


def test_tflite_head_gives_float_logits_by_default_and_goes_int8_when_asked(files, calib, tmp_path):
    rep = quantize(files[1], tmp_path / "q.tflite", calib=calib, eval_data=(calib, None))
    assert rep.float_head["applied"] and len(rep.float_head["layers"]) == 1 and "dynamic-range" in rep.float_head["how"]
    assert _tflite_fc(tmp_path / "q.tflite") == (np.int8, np.float32)  # int8 weights, float logits
    assert rep.ops.get("QUANTIZE", 0) >= 1 and rep.ops.get("DEQUANTIZE", 0) >= 1  # int8 body, float head
    assert rep.agreement["top1"] >= 90.0 and rep.agreement["cosine_mean"] > 0.99

    quantize(files[1], tmp_path / "f.tflite", calib=calib, float_head_weights="float")
    assert _tflite_fc(tmp_path / "f.tflite") == (np.float32, np.float32)

    off = quantize(files[1], tmp_path / "i.tflite", calib=calib, float_head=False)
    assert not off.float_head["applied"] and "--int8-head" in off.float_head["why"]
    assert _tflite_fc(tmp_path / "i.tflite") == (np.int8, np.int8)


def test_head_is_int8_with_int8_io_and_float_head_with_int8_io_is_refused(files, calib, tmp_path):
    rep = quantize(files[1], tmp_path / "io.tflite", calib=calib, int8_io=True)
    assert not rep.float_head["applied"] and "int8 I/O" in rep.float_head["why"]
    assert _tflite_fc(tmp_path / "io.tflite") == (np.int8, np.int8)
    with pytest.raises(EdgeKDError, match="--float-head needs float I/O"):
        quantize(files[1], tmp_path / "x.tflite", calib=calib, int8_io=True, float_head=True)
    assert not (tmp_path / "x.tflite").exists()


def test_no_head_layer_found_is_said(tmp_path, calib):
    """A conv classifier (no Gemm at the output): nothing is kept float, and the report says why."""
    from edgekd.export import export_onnx

    m = nn.Sequential(nn.Conv2d(1, 10, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    export_onnx(m, calib[:4], tmp_path / "c.onnx")
    rep = quantize(tmp_path / "c.onnx", tmp_path / "q.onnx", calib=calib)
    assert not rep.float_head["applied"] and "no Gemm" in rep.float_head["why"]


def test_cli_int8_head_flag(files, tmp_path):
    import typer
    from typer.testing import CliRunner

    from edgekd.commands.quantize import quantize_cmd

    app = typer.Typer()
    app.command()(quantize_cmd)
    x = np.random.default_rng(2).normal(size=(120, 1, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    for flag, applied in (([], True), (["--int8-head"], False)):
        res = CliRunner().invoke(app, [str(files[0]), "-o", str(tmp_path / f"q{applied}.onnx"), "--data",
                                       str(tmp_path / "x.npz"), "--calib-samples", "32", "--json", *flag])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output[res.output.index("{"):])["float_head"]["applied"] is applied


def test_report_claims_float_logits_only_when_the_file_has_them(files, calib, tmp_path, monkeypatch):
    """If the head's output is requantized anyway, the report says so instead of claiming float logits."""
    from edgekd.quantize import onnx_quant

    monkeypatch.setattr(onnx_quant, "_drop_output_qdq", lambda path, nodes: None)
    rep = quantize(files[0], tmp_path / "q.onnx", calib=calib)
    assert not rep.float_head["applied"] and "requantized the output" in rep.float_head["why"]
    assert _onnx_gemm(tmp_path / "q.onnx") == (False, True)


@pytest.mark.parametrize("target, float_head, int8_io", [("android", True, False), ("host", True, False),
                                                         ("ethos-u55-128", False, True), ("qualcomm-htp", False, False)])
def test_npu_targets_get_full_integer_heads(target, float_head, int8_io, monkeypatch, tmp_path):
    """compress's candidate files: float logits on CPU targets, an int8 head on NPUs (full-integer graphs)."""
    import edgekd.quantize
    from edgekd.modalities.classifier.student_search import _shipped_file
    from edgekd.targets import load_target

    seen = {}
    monkeypatch.setattr(edgekd.quantize, "quantize", lambda *a, **kw: seen.update(kw))
    t = load_target(target)
    if t.ships[0].precision != "int8":
        pytest.skip(f"{target} ships {t.ships[0].precision}")
    _shipped_file(None, None, t, tmp_path, None)
    assert seen["float_head"] is float_head and seen["int8_io"] is int8_io
