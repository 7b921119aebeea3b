"""Model sources: registry, entrypoints, checkpoints (weights_only), portable pruned checkpoints."""

import pytest
import torch

from edgekd.errors import EdgeKDError
from edgekd.models import count_macs_params, create_model, list_models, load_model


def test_registry_students_shapes_and_sizes():
    assert {"cnn-s", "mobilenet-s"} <= set(list_models())
    m = create_model("cnn-s", in_channels=3, num_classes=5)
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    macs_xs, _ = count_macs_params(create_model("cnn-xs"), (1, 28, 28))
    macs_m, _ = count_macs_params(create_model("cnn-m"), (1, 28, 28))
    assert macs_m > 10 * macs_xs


def test_unknown_model_lists_choices():
    with pytest.raises(EdgeKDError, match="cnn-s"):
        create_model("resnet9000")


def test_entrypoint_file_and_weights(tmp_path):
    src = tmp_path / "net.py"
    src.write_text("import torch\ndef build():\n    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))\n")
    m = load_model(f"{src}:build")
    torch.save(m.state_dict(), tmp_path / "w.pt")
    m2 = load_model(f"{src}:build", tmp_path / "w.pt")
    x = torch.randn(3, 1, 2, 2)
    assert torch.equal(m(x), m2(x))


@pytest.mark.parametrize("spec, message", [
    ("nosuchpkg.mod:build", "cannot be imported"),
    ("os:no_such_factory", "has no attribute"),
    ("/nope/net.py:build", "does not exist"),
    ("justaname", "not a built-in model.*cnn-s"),
    ("cnn_s", "did you mean 'cnn-s'"),  # a bare word is a mistyped built-in name, not a malformed entrypoint
    ("net.py", "name its factory too"),
    ("os:sep", "not callable"),
])
def test_bad_entrypoints(spec, message):
    with pytest.raises(EdgeKDError, match=message):
        load_model(spec)


def test_bad_checkpoints(tmp_path):
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage")
    with pytest.raises(EdgeKDError, match="not a readable PyTorch checkpoint"):
        load_model("cnn-s", tmp_path / "corrupt.pt")
    with pytest.raises(EdgeKDError, match="does not exist"):
        load_model("cnn-s", tmp_path / "missing.pt")
    torch.save(create_model("cnn-m").state_dict(), tmp_path / "other.pt")
    with pytest.raises(EdgeKDError, match="does not match"):
        load_model("cnn-s", tmp_path / "other.pt")


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(EdgeKDError, match="not a plain state_dict checkpoint"):
        load_model("cnn-s", tmp_path / "evil.pt")


def test_portable_checkpoint_restores_pruned_widths(tmp_path):
    import torch_pruning as tp

    from edgekd.models.checkpoint import load_portable, save_portable

    m = create_model("mobilenet-xs")
    x = torch.randn(2, 1, 28, 28)
    tp.pruner.MetaPruner(m, x, importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=0.5,
                         ignored_layers=[m.classifier]).step()
    m.eval()
    save_portable(m, tmp_path / "p.pt")
    restored = load_portable(create_model("mobilenet-xs"), tmp_path / "p.pt")
    assert torch.allclose(restored(x), m(x))
    assert sum(p.numel() for p in restored.parameters()) == sum(p.numel() for p in m.parameters())


def test_a_checkpoint_is_read_once_by_load_model(tmp_path, monkeypatch):
    """Portable (with dropped blocks) or plain, load_model reads the weights file one time."""
    import edgekd.core.inputs as inputs
    from edgekd.models.checkpoint import save_portable
    from edgekd.models.surgery import drop_blocks

    reads = []
    real = inputs.load_torch_file
    monkeypatch.setattr(inputs, "load_torch_file", lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    small = drop_blocks(create_model("mobilenet-xs"), {"features.3"}).eval()
    save_portable(small, tmp_path / "p.pt", dropped_blocks=["features.3"])
    torch.save(create_model("cnn-xs").state_dict(), tmp_path / "plain.pt")
    x = torch.randn(1, 1, 16, 16)
    assert torch.allclose(load_model("mobilenet-xs", tmp_path / "p.pt")(x), small(x))
    load_model("cnn-xs", tmp_path / "plain.pt")
    assert [str(p) for p in reads] == [str(tmp_path / "p.pt"), str(tmp_path / "plain.pt")]


def test_torch_export_program_as_a_teacher(tmp_path):
    """A .pt2 exported at batch 1 (the usual example input): .eval() works, whole batches run, derive says why not."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    torch.export.save(torch.export.export(net, (torch.randn(1, 1, 8, 8),)), str(tmp_path / "t.pt2"))
    m = load_model(str(tmp_path / "t.pt2"))
    assert m.eval() is m and not m.training
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(m(x), net(x), atol=1e-5)
    from edgekd.prune import derive

    with pytest.raises(EdgeKDError, match="holds no nn.Conv/nn.Linear layers to prune"):
        derive(m, ratio=0.5, example_input=x[:1])


def test_hf_spec_outside_the_hf_commands_says_where_it_goes():
    with pytest.raises(EdgeKDError, match="is a Hugging Face model: it goes through `edgekd hf-compress`"):
        load_model("hf:/some/model_dir")


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_model_file_as_a_black_box_teacher(tmp_path, fmt):
    """A teacher given only as .onnx/.tflite: runs through its runtime, copies cleanly, and distils (logits only)."""
    import copy

    from edgekd.data import load_data
    from edgekd.distill import distill
    from edgekd.export import export_onnx, export_tflite

    data = load_data("digits")
    torch.manual_seed(0)
    net = create_model("cnn-xs", in_channels=1, num_classes=10).eval()
    path = tmp_path / f"t.{fmt}"
    (export_onnx if fmt == "onnx" else export_tflite)(net, data.test.x[:8], path)
    t = load_model(str(path))
    x = torch.from_numpy(data.test.x[:5])
    with torch.no_grad():
        assert torch.allclose(t(x), net(x), atol=1e-4)
        assert torch.allclose(copy.deepcopy(t)(x), t(x))  # Torch-Pruning's counter deep-copies teachers
    assert "file_sha256" in t.state_dict()  # run manifests fingerprint teachers by their state
    res = distill(t, create_model("cnn-xs", in_channels=1, num_classes=10), data, recipe="hinton", epochs=1,
                  max_steps=3, progress=False)
    assert res.metrics["steps"] == 3
    with pytest.raises(EdgeKDError, match="holds its own weights"):
        load_model(str(path), weights=str(path))


def test_dict_and_model_output_classifiers_are_understood():
    """Teachers that return {'logits': ...} or a transformers ModelOutput run through every consumer of outputs."""
    from transformers.modeling_outputs import SequenceClassifierOutput

    from edgekd.data import load_data
    from edgekd.distill import distill
    from edgekd.modalities.classifier.checks import check_fits
    from edgekd.runtime import accuracy, load_runner

    class Wrap(torch.nn.Module):
        def __init__(self, kind):
            super().__init__()
            self.kind, self.net = kind, create_model("cnn-xs", in_channels=1, num_classes=10)

        def forward(self, x):
            y = self.net(x)
            return {"logits": y, "aux": y.sum()} if self.kind == "dict" else SequenceClassifierOutput(logits=y)

    data = load_data("digits")
    for kind in ("dict", "hf"):
        t = Wrap(kind).eval()
        check_fits(t, data, "teacher")
        assert 0.0 <= accuracy(load_runner(t), data.test.x[:50], data.test.y[:50]) <= 100.0
        res = distill(t, create_model("cnn-xs", in_channels=1, num_classes=10), data, recipe="hinton", epochs=1,
                      max_steps=2, progress=False)
        assert res.metrics["steps"] == 2
    with pytest.raises(EdgeKDError, match="cannot find logits in a model output of type str"):
        check_fits(type("S", (torch.nn.Module,), {"forward": lambda self, x: "oops"})(), data, "teacher")
