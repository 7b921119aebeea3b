"""derive() where Torch-Pruning cannot do what was asked: recurrent layers, transposed (token-mixing) layers,
and any student left far above the asked ratio. Never silent, never a raw traceback."""

import warnings

import pytest
import torch
from torch import nn

from edgekd.errors import EdgeKDError
from edgekd.prune.derived import derive

torch.set_num_threads(1)

GRU_READER = '''
import torch
from torch import nn


class RowGRU(nn.Module):  # an 8x8 image read as 8 rows of 8 pixels
    def __init__(self):
        super().__init__()
        self.gru, self.head = nn.GRU(8, 32, 2, batch_first=True), nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.gru(x.flatten(1, 2))[0][:, -1])


def build():
    return RowGRU()
'''


def _gru():
    ns: dict = {}
    exec(GRU_READER, ns)  # noqa: S102 - the same source the CLI test loads from a file
    return ns["build"]().eval()


class Mixer(nn.Module):
    """A tiny MLP-Mixer: the token MLP runs on the transposed (tokens last) tensor."""

    def __init__(self, tokens=16, d=32, depth=2):
        super().__init__()
        self.embed = nn.Conv2d(1, d, 2, 2)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(2 * depth))
        self.tok = nn.ModuleList(nn.Sequential(nn.Linear(tokens, 32), nn.GELU(), nn.Linear(32, tokens))
                                 for _ in range(depth))
        self.ch = nn.ModuleList(nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)) for _ in range(depth))
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        for i, (tok, ch) in enumerate(zip(self.tok, self.ch)):
            t = t + tok(self.norms[2 * i](t).transpose(1, 2)).transpose(1, 2)
            t = t + ch(self.norms[2 * i + 1](t))
        return self.head(t.mean(1))


def test_gru_teacher_fails_in_one_line_naming_the_layer():
    with pytest.raises(EdgeKDError, match=r"0\.1 of the teacher's MACs.*gru \(GRU.*cannot be shrunk") as e:
        derive(_gru(), ratio=0.1, example_input=(1, 8, 8), measure_latency=False)
    assert "\n" not in str(e.value)  # was: the teacher's own size back, with only a Torch-Pruning warning


def test_mixer_prunes_the_channel_mlps_and_keeps_the_transposed_group():
    torch.manual_seed(0)
    t = Mixer().eval()
    r = derive(t, ratio=0.3, mode="width", example_input=(1, 8, 8), measure_latency=False)  # was: IndexError
    assert r.achieved_ratio <= 0.3 * 1.05 and not r.warnings
    assert any("tok.0.0" in n and "another dimension" in n for n in r.notes), r.notes
    assert r.model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert r.model.tok[0][0].in_features == 16 and r.model.ch[0][0].out_features < 128


def test_far_above_the_ratio_warns_loudly_in_the_result():
    from edgekd.models import create_model

    t = create_model("cnn-m", in_channels=1, num_classes=10).eval()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = derive(t, ratio=0.001, mode="width", example_input=(1, 16, 16), measure_latency=False)
    assert r.achieved_ratio > 0.0015 and r.warnings and "x the asked size" in r.warnings[0]
    assert r.to_dict()["warnings"] == r.warnings
    assert any("x the asked size" in str(w.message) for w in seen)


def test_ignored_layers_are_kept_through_the_ratio_search():
    from edgekd.models import create_model

    t = create_model("cnn-m", in_channels=1, num_classes=10).eval()
    conv = next(m for m in t.modules() if isinstance(m, nn.Conv2d))
    r = derive(t, ratio=0.5, mode="width", example_input=(1, 16, 16), measure_latency=False, ignored_layers=[conv])
    kept = next(m for m in r.model.modules() if isinstance(m, nn.Conv2d))
    assert kept.out_channels == conv.out_channels  # was: pruned anyway (the search works on deep copies)


def test_cli_derive_on_a_gru_says_one_line(tmp_path, capsys):
    from edgekd.cli import main

    (tmp_path / "gru_teacher.py").write_text(GRU_READER)
    with pytest.raises(SystemExit) as e:
        main(["derive", "--teacher", f"{tmp_path / 'gru_teacher.py'}:build", "--ratio", "0.1",
              "--input-shape", "1,8,8", "--output", str(tmp_path / "s.pt"), "--threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 1 and err[-1].startswith("error: could not derive") and "GRU" in err[-1]
    assert not any("Traceback" in line or "internal error" in line for line in err)
    assert not (tmp_path / "s.pt").exists()
