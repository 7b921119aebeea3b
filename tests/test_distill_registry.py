"""The loss registry: a loss declared in one place (here, in a test file) is usable from a recipe dict or
TOML file, with its keys and value checks enforced when the recipe is parsed, and trains through the engine."""

import pytest
import torch
from torch import nn

from tiny_vectors import mlp, tiny_bundle

from edgekd.distill import distill, load_recipe
from edgekd.distill.registry import LOSSES, number, register_loss
from edgekd.distill.terms import build_terms, teacher_reducers
from edgekd.errors import EdgeKDError

torch.set_num_threads(1)


@pytest.fixture
def toy_losses():
    """Two toy types registered the way a new built-in would be, removed again after the test."""

    @register_loss("test-logit-l2", params={"scale": number(1.0, lo=0, lo_open=True)})
    def make_l2(p, s_tap, t_tap):
        class L2(nn.Module):
            def forward(self, s, t):
                return p["scale"] * (s - t).pow(2).mean()

        return L2()

    def halve(p):  # cache half the teacher's embedding, as AT caches its attention maps
        return "half", lambda f: f * 0.5

    @register_loss("test-embed-mse", student="embedding", teacher="features", cache_teacher=halve)
    def make_embed(p, s_tap, t_tap):
        class Projected(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(s_tap.numel, t_tap.numel, bias=False)

            def forward(self, s, t):
                return (self.proj(s) - t).pow(2).mean()

        return Projected()

    yield
    LOSSES.pop("test-logit-l2", None)
    LOSSES.pop("test-embed-mse", None)


def test_a_new_loss_type_is_one_registration(toy_losses):
    """Registering a factory is all a new recipe `type` needs (keys, checks and the engine follow)."""
    name = "test-logit-l2"
    with pytest.raises(EdgeKDError, match="scale must be > 0"):
        load_recipe({"loss": [{"type": name, "scale": -1}]})
    with pytest.raises(EdgeKDError, match="unknown key"):
        load_recipe({"loss": [{"type": name, "temperature": 2.0}]})
    res = distill(mlp(32, 0).eval(), mlp(8, 1), tiny_bundle(), recipe={"loss": [{"type": name, "scale": 2.0}]},
                  epochs=1, max_steps=2, batch_size=32, progress=False)
    assert set(res.metrics["epochs"][0]["parts"]) == {name}


def test_a_registered_layer_loss_from_a_toml_recipe(toy_losses, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\n'
                    '[[loss]]\ntype = "test-logit-l2"\nscale = 0.5\n'
                    '[[loss]]\ntype = "test-embed-mse"\nembedding = "auto"\noptional = true\nweight = 0.1\n')
    rec = load_recipe(str(path))
    assert [s.type for s in rec.losses] == ["test-logit-l2", "test-embed-mse"]
    # the embedding kind brings its own keys and checks
    with pytest.raises(EdgeKDError, match='test-embed-mse.embedding must be "auto"'):
        load_recipe({"loss": [{"type": "test-embed-mse", "embedding": "fc"}]})
    with pytest.raises(EdgeKDError, match="test-embed-mse.optional must be true or false"):
        load_recipe({"loss": [{"type": "test-embed-mse", "optional": "yes"}]})

    teacher, student = mlp(32, 0).eval(), mlp(8, 1)
    ex = torch.zeros(2, 8)
    l2, emb = build_terms(rec, student, teacher, ex)
    assert (l2.s_taps, l2.t_keys) == ([], ["logits"])
    assert (emb.s_taps, emb.t_keys) == (["2:input"], ["2:input|half"])  # the last Linear's input, reduced
    assert emb.module.proj.weight.shape == (32, 8)
    red = teacher_reducers([l2, emb])
    assert torch.equal(red["2:input|half"](torch.ones(1, 2)), torch.full((1, 2), 0.5))

    res = distill(teacher, student, tiny_bundle(), recipe=str(path), epochs=1, max_steps=2, batch_size=32,
                  progress=False)
    assert set(res.metrics["epochs"][0]["parts"]) == {"test-logit-l2", "test-embed-mse"}


def test_declarations_are_checked_when_registered():
    with pytest.raises(ValueError, match="already registered"):
        register_loss("kd")(lambda *a: None)
    with pytest.raises(ValueError, match="student must be one of"):
        register_loss("test-bad", student="hidden-states")
    with pytest.raises(ValueError, match="'features' for layer losses"):
        register_loss("test-bad", student="pairs")  # a layer loss reads the teacher's features
    with pytest.raises(ValueError, match="set by student"):
        register_loss("test-bad", student="pairs", teacher="features", params={"pairs": number(1)})
    assert "test-bad" not in LOSSES


def test_builtin_declarations():
    kd, at, cosine, ce = LOSSES["kd"], LOSSES["at"], LOSSES["cosine"], LOSSES["ce"]
    assert kd.resolve({"alpha": 1.0}) == {"temperature": 4.0, "alpha": 1.0, "label_smoothing": 0.0, "standardize": False}
    assert (ce.teacher, ce.labels, kd.labels) == (None, "required", "optional")
    assert at.keys == {"pairs", "max_pairs", "p", "optional"} and at.cache_teacher is not None
    assert cosine.keys == {"embedding", "optional"} and cosine.student == "embedding"
