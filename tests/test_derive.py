"""derive(): width (Torch-Pruning), depth (dropped residual blocks / layers) and auto on several architectures."""

import copy

import pytest
import torch
from torch import nn

from edgekd.errors import EdgeKDError
from edgekd.models.checkpoint import load_portable, save_portable
from edgekd.prune.derived import derive

torch.set_num_threads(1)


class Basic(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))


class TinyResNet(nn.Module):
    def __init__(self, w=32, k=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU())
        self.layer1 = nn.Sequential(Basic(w), Basic(w), Basic(w))
        self.layer2 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU(), Basic(2 * w), Basic(2 * w))
        self.fc = nn.Linear(2 * w, k)

    def forward(self, x):
        return self.fc(self.layer2(self.layer1(self.stem(x))).mean((2, 3)))


class TinyTransformer(nn.Module):
    def __init__(self, layers=6):
        super().__init__()
        self.emb = nn.Linear(16, 64)
        layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True, dropout=0.0)
        self.enc = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.head = nn.Linear(64, 5)

    def forward(self, x):
        return self.head(self.enc(self.emb(x)).mean(1))


def _mobilenet():
    from edgekd.models import create_model

    return create_model("mobilenet-s", in_channels=1, num_classes=10).eval()


def _plain():
    from edgekd.models import create_model

    return create_model("cnn-m", in_channels=1, num_classes=10).eval()


X = torch.randn(2, 1, 16, 16)


@pytest.mark.parametrize("factory", [TinyResNet, _mobilenet, _plain], ids=["resnet", "mobilenet", "plain"])
def test_width_hits_macs_ratio_keeps_teacher_untouched(factory):
    torch.manual_seed(0)
    t = factory().eval()
    before = copy.deepcopy(t.state_dict())
    r = derive(t, ratio=0.3, mode="width", example_input=(1, 16, 16), measure_latency=False)
    assert 0.15 <= r.achieved_ratio <= 0.3 * 1.05
    assert r.macs_after < r.macs_before and r.params_after < r.params_before
    assert r.model(X).shape == t(X).shape
    for k, v in t.state_dict().items():  # the teacher itself is not modified
        assert torch.equal(v, before[k])
    # channel counts are multiples of 8 (image input and the class outputs excepted)
    for m in r.model.modules():
        if isinstance(m, nn.Conv2d) and m.out_channels >= 8:
            assert m.out_channels % 8 == 0, m


def test_width_keeps_surviving_teacher_filters():
    torch.manual_seed(0)
    t = TinyResNet().eval()
    r = derive(t, ratio=0.4, mode="width", example_input=(1, 16, 16), measure_latency=False)
    tw, dw = t.stem[0].weight, r.model.stem[0].weight
    assert dw.shape[0] < tw.shape[0]
    for f in dw:  # every kept filter is one of the teacher's filters, unchanged
        assert any(torch.equal(f, g) for g in tw)


def test_depth_drops_every_other_residual_block():
    torch.manual_seed(0)
    t = TinyResNet().eval()
    r = derive(t, ratio=0.5, mode="depth", example_input=(1, 16, 16), measure_latency=False)
    assert set(r.dropped_blocks) <= {"layer1.1", "layer2.3"} and r.dropped_blocks
    assert r.macs_after < r.macs_before
    assert r.model(X).shape == (2, 10)
    # surviving blocks keep their names and the teacher's weights
    assert torch.equal(r.model.layer1[0].c1.weight, t.layer1[0].c1.weight)


def test_depth_transformer_takes_every_other_layer_distilbert_style():
    torch.manual_seed(0)
    t = TinyTransformer().eval()
    x = torch.randn(2, 10, 16)
    r = derive(t, ratio=0.5, mode="depth", example_input=x, measure_latency=False)
    assert r.dropped_blocks == sorted(r.dropped_blocks) or True
    assert set(r.dropped_blocks) == {"enc.layers.1", "enc.layers.3", "enc.layers.5"}
    assert len(r.model.enc.layers) == 3 and r.model.enc.num_layers == 3
    for new_i, old_i in enumerate((0, 2, 4)):
        assert torch.equal(r.model.enc.layers[new_i].linear1.weight, t.enc.layers[old_i].linear1.weight)
    assert r.model(x).shape == (2, 5)
    assert 0.45 <= r.achieved_ratio <= 0.55


def test_depth_on_plain_cnn_is_refused_and_auto_falls_back_to_width():
    t = _plain()
    with pytest.raises(EdgeKDError, match="no droppable"):
        derive(t, ratio=0.5, mode="depth", example_input=(1, 16, 16), measure_latency=False)
    r = derive(t, ratio=0.5, mode="auto", example_input=(1, 16, 16), measure_latency=False)
    assert r.achieved_ratio <= 0.5 * 1.05 and any("width only" in n for n in r.notes)


def test_auto_mixes_depth_and_width_and_measures_latency():
    torch.manual_seed(0)
    t = TinyResNet().eval()
    r = derive(t, ratio=0.1, mode="auto", example_input=(1, 16, 16), threads=1)
    assert r.dropped_blocks and r.channel_pruning_ratio > 0
    assert r.achieved_ratio <= 0.105
    assert r.latency_after["kind"] == "measured" and r.latency_after["runs"] > 0
    assert "latency_speedup" in r.to_dict()


def test_params_ratio():
    t = TinyResNet().eval()
    r = derive(t, ratio=0.25, by="params", mode="width", example_input=(1, 16, 16), measure_latency=False)
    assert r.params_after / r.params_before <= 0.25 * 1.05


def test_unreachable_ratio_is_reported_not_faked():
    t = _plain()
    r = derive(t, ratio=0.001, mode="width", example_input=(1, 16, 16), measure_latency=False)
    assert r.achieved_ratio > 0.001 and any("could not reach" in n for n in r.notes)


@pytest.mark.parametrize("kw,msg", [
    ({"ratio": 0}, "ratio"), ({"ratio": 1.5}, "ratio"), ({"ratio": "abc"}, "ratio"),
    ({"ratio": 0.5, "mode": "sideways"}, "mode"), ({"ratio": 0.5, "by": "flops"}, "macs or params"),
])
def test_bad_arguments(kw, msg):
    with pytest.raises(EdgeKDError, match=msg):
        derive(TinyResNet(), example_input=(1, 16, 16), measure_latency=False, **kw)


def test_wrong_input_shape_is_one_line_error():
    with pytest.raises(EdgeKDError, match="does not run on an input"):
        derive(TinyResNet(), ratio=0.5, example_input=(3, 16, 16), measure_latency=False)


def test_checkpoint_roundtrip_with_dropped_blocks(tmp_path):
    torch.manual_seed(0)
    t = TinyResNet().eval()
    r = derive(t, ratio=0.2, mode="auto", example_input=(1, 16, 16), measure_latency=False)
    assert r.dropped_blocks
    p = save_portable(r.model, tmp_path / "d.pt", dropped_blocks=r.dropped_blocks)
    m = load_portable(TinyResNet(), p)
    torch.testing.assert_close(m(X), r.model.eval()(X))
    blob = torch.load(p, weights_only=True)  # loads without pickled code
    assert blob["dropped_blocks"] == r.dropped_blocks


def test_package_exports_functions_not_modules():
    import edgekd.prune as P
    import edgekd.prune.derived  # noqa: F401  (a submodule import must not shadow the function)

    assert P.derive.__name__ == "derive" and callable(P.derive)
    assert P.prune.__name__ == "prune" and P.run_chain.__name__ == "run_chain"
