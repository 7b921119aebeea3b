"""Quantization on real digits: ONNX QDQ / dynamic, TFLite int8 / fp16, and the accuracy budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.quantize import QuantReport, quantize  # noqa: E402


@pytest.fixture(scope="module")
def data():
    from edgekd.data import load_data

    torch.set_num_threads(1)
    return load_data("digits", seed=0)


@pytest.fixture(scope="module")
def trained(data):
    """A small CNN trained for a few seconds on real digits (~90 % held-out accuracy)."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    for _ in range(8):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x[i : i + 64]), y[i : i + 64]).backward()
            opt.step()
    return m.eval()


@pytest.fixture(scope="module")
def float_files(trained, data, tmp_path_factory):
    from edgekd.export import export_onnx, export_tflite

    d = tmp_path_factory.mktemp("float")
    export_onnx(trained, data.test.x[:16], d / "f.onnx")
    export_tflite(trained, data.test.x[:16], d / "f.tflite", converters=("litert-torch",))
    return d / "f.onnx", d / "f.tflite"


@pytest.fixture(scope="module")
def outlier_onnx(trained, data, tmp_path_factory):
    """The same function with one channel scaled x1000 between two convs: per-tensor int8 activations
    lose every other channel, a known int8 failure that keeping layers in float repairs."""
    import copy

    from edgekd.export import export_onnx

    m = copy.deepcopy(trained)
    with torch.no_grad():
        m[0].weight[0] *= 1000
        m[0].bias[0] *= 1000
        m[2].weight[:, 0] /= 1000
    path = tmp_path_factory.mktemp("outlier") / "f.onnx"
    export_onnx(m, data.test.x[:16], path)
    return path


def _held(data):
    return data.val.x, data.val.y


def test_onnx_static_int8_qdq_keeps_accuracy(float_files, data, tmp_path):
    out = tmp_path / "q.onnx"
    rep = quantize(float_files[0], out, mode="int8", calib=data.calibration(64), eval_data=_held(data), max_drop=3.0)
    assert isinstance(rep, QuantReport) and out.is_file()
    assert rep.ops.get("QuantizeLinear", 0) > 0 and rep.ops.get("DequantizeLinear", 0) > 0
    assert rep.precision == "int8" and rep.calib_samples == 64 and rep.method == "minmax"
    assert rep.accuracy_float > 80 and rep.budget_met and rep.drop_points <= 3.0
    assert rep.kept_float == [] and rep.parity["top1_agreement"] >= 0.9
    json.dumps(rep.to_dict())  # JSON-able for report.json


def test_tflite_int8_float_io_and_int8_io(float_files, data, tmp_path):
    from edgekd.inspect import model_info

    calib = data.calibration(32)
    a = quantize(float_files[1], tmp_path / "q.tflite", calib=calib, eval_data=_held(data))
    b = quantize(float_files[1], tmp_path / "qio.tflite", calib=calib, eval_data=_held(data), int8_io=True)
    ia, ib = model_info(tmp_path / "q.tflite"), model_info(tmp_path / "qio.tflite")
    assert ia["inputs"][0]["dtype"] == "float32" and ib["inputs"][0]["dtype"] == "int8"
    assert ib["outputs"][0]["dtype"] == "int8" and a.ops.get("QUANTIZE") == 1
    assert abs(a.accuracy - a.accuracy_float) < 5 and abs(b.accuracy - b.accuracy_float) < 5


def test_tflite_fp16_and_onnx_dynamic(float_files, data, tmp_path):
    f = quantize(float_files[1], tmp_path / "h.tflite", mode="fp16", eval_data=_held(data))
    assert f.precision == "fp16" and f.ops.get("DEQUANTIZE", 0) >= 2 and f.drop_points == 0
    assert f.parity["cosine"] > 0.999
    d = quantize(float_files[0], tmp_path / "d.onnx", mode="dynamic", eval_data=_held(data), calib=data.calibration(8))
    assert d.precision == "dynamic-int8" and d.ops.get("DynamicQuantizeLinear", 0) > 0
    assert abs(d.drop_points) < 3
    r = quantize(float_files[1], tmp_path / "dr.tflite", mode="dynamic", eval_data=_held(data))
    assert r.precision == "dynamic-int8" and r.size_bytes < 0.5 * r.float_size_bytes and abs(r.drop_points) < 3
    assert r.parity["cosine"] > 0.99


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_onnx_calibration_methods(float_files, data, tmp_path, method):
    rep = quantize(float_files[0], tmp_path / "q.onnx", calib=data.calibration(32), method=method, eval_data=_held(data))
    assert rep.method == method and rep.accuracy > rep.accuracy_float - 5


def test_budget_keeps_sensitive_layers_in_float(outlier_onnx, data, tmp_path):
    out = tmp_path / "q.onnx"
    rep = quantize(outlier_onnx, out, calib=data.calibration(64), eval_data=_held(data), max_drop=2.0)
    first = rep.search[0]["accuracy"]
    assert rep.accuracy_float - first > 20  # plain int8 really breaks on this model
    assert rep.budget_met and rep.drop_points <= 2.0 and rep.precision == "mixed"
    assert rep.kept_float and all(k.startswith("node_conv2d") for k in rep.kept_float)
    assert rep.sensitivity[0]["loss_db"] > 10  # the broken layer tops the ranking
    lat = rep.latency
    assert lat["shipped"]["kind"] == "measured" and lat["shipped"]["runs"] > 0 and lat["shipped_vs_int8_all"] > 0
    assert out.is_file()


def test_budget_unreachable_fails_unless_allow_drop(outlier_onnx, data, tmp_path):
    out = tmp_path / "q.onnx"
    # dynamic int8 quantizes activations per tensor at run time: no layer choice repairs it here
    with pytest.raises(EdgeKDError, match="over the --max-drop 1.0 budget"):
        quantize(outlier_onnx, out, mode="dynamic", eval_data=_held(data), max_drop=1.0)
    assert not out.exists()
    rep = quantize(outlier_onnx, out, mode="dynamic", eval_data=_held(data), max_drop=1.0, allow_drop=True)
    assert out.is_file() and rep.budget_met is False


@pytest.mark.parametrize("kwargs, msg", [
    ({"out": "q.bin"}, r"\.onnx or \.tflite"),
    ({"mode": "fp16"}, "not available for .onnx"),
    ({"method": "magic"}, "unknown calibration method"),
    ({"calib": None}, "needs calibration samples"),
    ({"calib": np.full((4, 1, 8, 8), np.nan, np.float32)}, "finite"),
    ({"max_drop": 1.0}, "needs labelled held-out data"),
    ({"int8_io": True}, "TFLite int8 files only"),
    ({"src": "missing.onnx"}, "does not exist"),
    ({"out": "q.tflite"}, "cannot quantize f.onnx into .tflite"),
])
def test_bad_input_is_one_line_error(float_files, data, tmp_path, kwargs, msg):
    kwargs = dict(kwargs)
    out = tmp_path / kwargs.pop("out", "q.onnx")
    src = tmp_path / kwargs.pop("src") if "src" in kwargs else float_files[0]
    args = {"calib": data.calibration(8), **kwargs}
    with pytest.raises(EdgeKDError, match=msg):
        quantize(src, out, **args)
    assert not out.exists()


def test_cli_quantize_json(float_files, tmp_path):
    import typer
    from typer.testing import CliRunner

    from edgekd.commands.quantize import quantize_cmd

    app = typer.Typer()
    app.command()(quantize_cmd)
    out = tmp_path / "q.onnx"
    res = CliRunner().invoke(app, [str(float_files[0]), "--output", str(out), "--data", "digits",
                                   "--calib-samples", "32", "--eval-samples", "100", "--max-drop", "5", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output[res.output.index("{"):])
    assert rep["budget_met"] and rep["calib_samples"] == 32 and out.is_file()
    bad = CliRunner().invoke(app, [str(float_files[0]), "--output", str(tmp_path / "x.onnx"), "--data", "digits",
                                   "--mode", "fp16"])
    assert bad.exit_code != 0 and isinstance(bad.exception, EdgeKDError)


@pytest.mark.slow
def test_tflite_budget_keeps_sensitive_layers_in_float(trained, data, tmp_path):
    """The same repair on a litert-torch file: ai-edge-quantizer leaves the ranked op scopes in float."""
    import copy

    from edgekd.export import export_tflite

    m = copy.deepcopy(trained)
    with torch.no_grad():
        m[0].weight[0] *= 1000
        m[0].bias[0] *= 1000
        m[2].weight[:, 0] /= 1000
    export_tflite(m, data.test.x[:16], tmp_path / "f.tflite", converters=("litert-torch",))
    rep = quantize(tmp_path / "f.tflite", tmp_path / "q.tflite", calib=data.calibration(64), eval_data=_held(data),
                   max_drop=2.0)
    assert rep.accuracy_float - rep.search[0]["accuracy"] > 20 and rep.budget_met and rep.precision == "mixed"
    assert rep.kept_float and "Conv2d_0" in rep.sensitivity[0]["name"]
    assert rep.latency["shipped"]["kind"] == "measured"


class _LogitsAndFeatures(nn.Module):
    """Returns (logits, pooled features): the features are a model output *and* the head's input."""

    def __init__(self, body):
        super().__init__()
        self.body, self.head = body[:-1], body[-1]

    def forward(self, x):
        z = self.body(x)
        return self.head(z), z


def test_tflite_int8_of_a_model_that_returns_its_features(trained, data, tmp_path):
    from edgekd.export import export_tflite
    from edgekd.export.execute import run_file

    model = _LogitsAndFeatures(trained).eval()
    export_tflite(model, data.test.x[:16], tmp_path / "f.tflite", converters=("litert-torch",))
    rep = quantize(tmp_path / "f.tflite", tmp_path / "q.tflite", mode="int8", calib=data.calibration(64),
                   eval_data=(data.val.x, data.val.y))
    assert any("also a model output stay float" in n for n in rep.notes), rep.notes
    logits, feats = run_file(tmp_path / "q.tflite", [data.test.x[:4]])  # loads and runs, both outputs float
    assert logits.shape == (4, 10) and feats.shape == (4, 32) and feats.dtype == np.float32
    assert rep.accuracy >= rep.accuracy_float - 3.0
