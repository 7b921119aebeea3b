"""Core ML image inputs as an app feeds them (raw 0..255 pixels, the training normalisation folded into Core ML's
preprocessing): the fold's arithmetic, the spec coremltools writes (read back, never run: Core ML does not run on
Linux, so numerics on an Apple device are not checked here), the TensorType fall-back with its note, the CLI
option and the ios target's default."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def _cnn(c: int, seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(c, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 5)).eval()


def _folded(plan, raw: np.ndarray) -> np.ndarray:
    """What the package computes from raw pixels: Core ML's scale * pixel + bias, then the in-program factor."""
    y = plan.scale * raw + np.asarray(plan.bias, np.float32).reshape(1, -1, 1, 1)
    if plan.channel_scale:
        y = y * np.asarray(plan.channel_scale, np.float32).reshape(1, -1, 1, 1)
    return y


@pytest.mark.parametrize("c,norm,layout", [(1, ([0.2860], [0.3530]), "GRAYSCALE"),  # Fashion-MNIST's statistics
                                           (3, ([0.5], [0.5]), "RGB"), (3, IMAGENET, "RGB")])
def test_fold_turns_raw_pixels_into_the_training_normalisation(c, norm, layout):
    from edgekd.export.coreml_image import plan_input

    raw = np.random.default_rng(0).integers(0, 256, (2, c, 5, 7)).astype(np.float32)
    plan, why = plan_input((torch.zeros(2, c, 5, 7),), "image", norm, "RGB")
    assert why is None and plan.color_layout == layout and (plan.height, plan.width) == (5, 7)
    mean, std = (np.broadcast_to(np.float32(v), (c,)).reshape(1, -1, 1, 1) for v in norm)
    want = (raw / 255.0 - mean) / std  # what edgekd's loaders feed the model in training
    np.testing.assert_allclose(_folded(plan, raw), want, rtol=1e-5, atol=1e-5)  # fp32 rounding only
    # equal stds are wholly in Core ML's preprocessing; ImageNet's differ: one factor per channel stays in the program
    assert (plan.channel_scale is None) == (len(set(norm[1])) == 1)


def test_non_image_inputs_keep_tensortype_with_a_reason():
    from edgekd.errors import EdgeKDError
    from edgekd.export.coreml_image import plan_input

    for inputs, what in (((torch.zeros(4, 64),), "(64,)"), ((torch.zeros(4, 2, 8, 8),), "(2, 8, 8)"),
                         ((torch.zeros(4, 16, dtype=torch.int64),), "int64")):
        plan, why = plan_input(inputs, "image", ([0.0], [1.0]))
        assert plan is None and "TensorType" in why and what in why
    assert plan_input((torch.zeros(1, 1, 8, 8),), "tensor", None) == (None, None)
    with pytest.raises(EdgeKDError, match="needs the normalisation"):
        plan_input((torch.zeros(1, 1, 8, 8),), "image", None)
    with pytest.raises(EdgeKDError, match="image, tensor"):
        plan_input((torch.zeros(1, 1, 8, 8),), "pixels", None)


def test_ios_target_defaults_to_image_input_and_bad_values_name_the_field(tmp_path):
    from edgekd.errors import EdgeKDError
    from edgekd.targets import load_target

    assert load_target("ios").coreml.input == "image" and load_target("ios").coreml.color_layout == "RGB"
    assert load_target("host").coreml.input == "tensor"  # no [coreml] table: TensorType, as before
    p = tmp_path / "t.toml"
    p.write_text('name = "t"\n[runtime]\nname = "coreml"\n[coreml]\ninput = "picture"\n')
    with pytest.raises(EdgeKDError, match=r"coreml\.input must be one of image, tensor"):
        load_target(p)


needs_coremltools = pytest.mark.skipif(importlib.util.find_spec("coremltools") is None,
                                       reason="coremltools is not installed")


@needs_coremltools
@pytest.mark.parametrize("c,norm,precision", [(1, ([0.2860], [0.3530]), "fp16"), (3, IMAGENET, "int8")])
def test_package_takes_an_image_with_the_folded_scale_and_bias_in_its_spec(tmp_path, c, norm, precision):
    from edgekd.export import export_coreml
    from edgekd.export.coreml_image import plan_input
    from edgekd.inspect import model_info

    x = np.random.default_rng(0).standard_normal((8, c, 8, 6)).astype(np.float32)
    rep = export_coreml(_cnn(c), x, tmp_path / "m.mlpackage", precision=precision, input="image", normalisation=norm)
    plan, _ = plan_input((torch.from_numpy(x),), "image", norm)
    assert rep.passed is None and "not checked on an Apple device" in rep.parity["reason"]  # never run here
    info = model_info(rep.path)  # read back from the saved spec
    (inp,) = info["inputs"]
    assert inp["dtype"] == "image" and inp["color_space"] == ("GRAYSCALE" if c == 1 else "RGB")
    assert inp["shape"] == [1, c, 8, 6] and rep.input_layout.startswith("image")
    pre = info["preprocessing"][inp["name"]]
    assert pre["scale"] == pytest.approx(plan.scale, rel=1e-6) and pre["bias"] == pytest.approx(plan.bias, rel=1e-6)
    assert info["weights"] == precision and "raw 0..255 pixels" in info["input_note"]
    assert any("raw 0..255 pixels" in n for n in rep.notes)
    # the per-channel remainder of ImageNet's stds is one extra mul in the program
    assert info["ops"]["mul"] == (2 if plan.channel_scale else 1)


@needs_coremltools
def test_feature_vector_model_keeps_tensortype_and_says_so(tmp_path):
    from edgekd.export import export_coreml

    rep = export_coreml(torch.nn.Linear(6, 3).eval(), np.zeros((4, 6), np.float32), tmp_path / "v.mlpackage",
                        input="image", normalisation=([0.0], [1.0]))
    assert rep.validation["inputs"][0]["dtype"] == "float32" and rep.validation["preprocessing"] == {}
    assert any("TensorType, not an image" in n for n in rep.notes)


@needs_coremltools
def test_export_cli_writes_an_image_input_from_the_data_normalisation(tmp_path, capsys):
    import json

    from edgekd.cli import main
    from edgekd.data import load_data

    out = tmp_path / "d.mlpackage"
    with pytest.raises(SystemExit) as exc:
        main(["export", "cnn-xs", "--data", "digits", "--format", "coreml", "--coreml-input", "image",
              "--samples", "4", "-o", str(out), "--json"])
    assert exc.value.code in (0, None)
    rep = json.loads(capsys.readouterr().out)
    bundle = load_data("digits", need_labels=False)
    pre = next(iter(rep["validation"]["preprocessing"].values()))
    r = bundle.std[0]
    assert pre["scale"] == pytest.approx(1 / (255 * r), rel=1e-6) and pre["bias"] == pytest.approx([-bundle.mean[0] / r], rel=1e-6)
    assert not any("parity checked on" in n for n in rep["notes"])  # Core ML runs nothing here
    with pytest.raises(SystemExit) as exc:
        main(["export", "cnn-xs", "--data", "digits", "--format", "onnx", "--coreml-input", "image",
              "-o", str(tmp_path / "x.onnx")])
    assert exc.value.code not in (0, None) and "apply to --format coreml" in capsys.readouterr().err
