"""A target file's [quantize] weights = "per-tensor": read by the target loader, it reaches `edgekd quantize
--target` and compress's quantize stage, and the int8 ONNX file then has one weight scale per tensor."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgekd.errors import EdgeKDError
from edgekd.targets import load_target

torch = pytest.importorskip("torch")
nn = torch.nn

PER_TENSOR = 'name = "my-dsp"\n[runtime]\nname = "onnxruntime"\n[quantize]\nweights = "per-tensor"\n'


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "dsp.toml"
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def data():
    from edgekd.data import load_data

    torch.set_num_threads(1)
    return load_data("digits", seed=0)


@pytest.fixture(scope="module")
def tiny(data, tmp_path_factory):
    """A small conv net (random weights: the scale layout, not accuracy, is under test) and its float ONNX file."""
    from edgekd.export import export_onnx

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()
    path = tmp_path_factory.mktemp("float") / "student_fp32.onnx"
    export_onnx(m, data.test.x[:8], path)
    return m, path


def weight_scales(path: Path) -> list[np.ndarray]:
    """The scale of every DequantizeLinear whose input is an int8 weight initializer."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    init = {t.name: t for t in g.initializer}
    return [numpy_helper.to_array(init[n.input[1]]) for n in g.node if n.op_type == "DequantizeLinear"
            and n.input[0] in init and init[n.input[0]].data_type == onnx.TensorProto.INT8]


def test_quantize_table_is_read_and_fingerprinted_only_when_set(tmp_path):
    t = load_target(write(tmp_path, PER_TENSOR))
    assert t.quantize.weights == "per-tensor" and t.quantize.per_channel is False
    assert t.to_dict()["quantize"] == {"weights": "per-tensor"}
    assert load_target("host").quantize.per_channel and "quantize" not in load_target("host").to_dict()


@pytest.mark.parametrize("text,msg", [
    (PER_TENSOR.replace('"per-tensor"', '"per_tensor"'),
     r"field quantize\.weights must be one of per-channel, per-tensor, got 'per_tensor'"),
    (PER_TENSOR.replace('"per-tensor"', "false"), r"field quantize\.weights must be str"),
    (PER_TENSOR + "granularity = 1\n", r"field quantize\.granularity is not a known field"),
    (PER_TENSOR.replace('"onnxruntime"', '"litert"'), r"quantize\.weights = 'per-tensor' applies to int8 \.onnx"),
])
def test_bad_quantize_table_is_one_line_error(tmp_path, text, msg):
    with pytest.raises(EdgeKDError, match=msg) as e:
        load_target(write(tmp_path, text))
    assert "\n" not in str(e.value)


def test_cli_quantize_target_per_tensor_writes_scalar_weight_scales(tiny, tmp_path):
    import typer
    from typer.testing import CliRunner

    from edgekd.commands.quantize import quantize_cmd

    app = typer.Typer()
    app.command()(quantize_cmd)
    target = write(tmp_path, PER_TENSOR)
    common = ["--data", "digits", "--calib-samples", "16", "--eval-samples", "100"]
    res = CliRunner().invoke(app, [str(tiny[1]), "-o", str(tmp_path / "t.onnx"), "--target", str(target), *common])
    assert res.exit_code == 0, res.output
    scales = weight_scales(tmp_path / "t.onnx")
    assert len(scales) == 3 and all(s.ndim == 0 for s in scales)  # two convs and the linear layer
    res = CliRunner().invoke(app, [str(tiny[1]), "-o", str(tmp_path / "c.onnx"), *common])  # no target: per channel
    assert res.exit_code == 0, res.output
    assert [s.shape for s in weight_scales(tmp_path / "c.onnx")][:2] == [(8,), (16,)]
    bad = CliRunner().invoke(app, [str(tiny[1]), "-o", str(tmp_path / "x.onnx"), "--target",
                                   str(tmp_path / "none.toml"), *common])
    assert bad.exit_code != 0 and "does not exist" in str(bad.exception)


def test_compress_quantize_stage_follows_the_target(tiny, data, tmp_path):
    """compress's quantize stage (edgekd.modalities.classifier.stages) hands the target's setting to quantize."""
    import shutil

    from edgekd.core import RunDir
    from edgekd.modalities.classifier.stages import Context, _quantize_one

    run = RunDir(tmp_path / "run")
    shutil.copyfile(tiny[1], run.path("student_fp32.onnx"))
    cfg = SimpleNamespace(calib_samples=16, seed=0, max_drop=None, allow_drop=False, qat="off", qat_epochs=2,
                          force=False)
    ctx = Context(cfg=cfg, run=run, data=data, target=load_target(write(tmp_path, PER_TENSOR)), teacher=None,
                  teacher_key="t", teacher_src=None, student_src=None, log=lambda m: None)
    art = _quantize_one(ctx, tiny[0], "student-key", "onnx", "int8", data.calibration(16, seed=0))
    scales = weight_scales(run.path(art.path))
    assert len(scales) == 3 and all(s.ndim == 0 for s in scales)
    assert run.manifest["stages"]["quantize-onnx-int8"]["settings"]["weights"] == "per-tensor"
    assert any("per tensor" in n for n in art.extra["quantize"]["notes"])
