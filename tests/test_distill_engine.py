"""The training engine: real distillation on digits, cache correctness, recipes, checkpoints, errors."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.data.bundle import ArrayDataset, DataBundle
from edgekd.distill import TeacherCache, distill, load_recipe
from edgekd.distill.hooks import auto_embedding, auto_pairs
from edgekd.errors import EdgeKDError
from edgekd.models import create_model, load_weights

torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import test_distill_helpers as H  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return H.digits()


@pytest.fixture(scope="module")
def teacher(digits, tmp_path_factory):
    # shared with test_distill_resume_ddp.py: trained once per session
    return H.load_teacher(H.teacher_file(digits, tmp_path_factory.getbasetemp() / "distill_teacher.pt"))


def small_bundle(d, n=256):
    return H.small_bundle(d, n)


def student(seed=0):
    torch.manual_seed(seed)
    return create_model("cnn-xs", in_channels=1, num_classes=10)


def test_hinton_distillation_learns_from_the_teacher(digits, teacher, tmp_path):
    res = distill(teacher, student(), digits, recipe="hinton", epochs=4, batch_size=64, progress=False,
                  output_dir=tmp_path)
    m = res.metrics
    assert m["teacher_val_acc"] > 0.85, m
    assert m["best_val_acc"] > 0.75  # a 10-class problem: chance is 0.1
    assert [e["epoch"] for e in m["epochs"]] == [0, 1, 2, 3]
    assert m["steps"] == 4 * int(np.ceil(len(digits.train) / 64))
    # the teacher ran once per sample; later epochs read the cache
    assert m["cache"]["misses"] == len(digits.train) and m["cache"]["hits"] == 3 * len(digits.train)
    assert not res.student.training
    # best.pt holds the returned weights, loadable by the models loader
    fresh = student(1)
    load_weights(fresh, res.best_checkpoint)
    x = torch.from_numpy(digits.val.x[:16])
    assert torch.allclose(fresh.eval()(x), res.student(x), atol=1e-6)


def test_flip_views_are_the_image_and_its_mirror():
    from edgekd.distill.cache import Augmenter

    aug = Augmenter("flip", 3, views=8, image_hw=(4, 4))
    assert aug.views == 2  # whatever `views` says: a mirror has one other view
    x = torch.arange(3 * 16, dtype=torch.float32).reshape(3, 1, 4, 4)
    idx = np.arange(3)
    assert torch.equal(aug.apply(x, idx, np.zeros(3, dtype=np.int64)), x)
    assert torch.equal(aug.apply(x, idx, np.ones(3, dtype=np.int64)), x.flip(-1))


@pytest.mark.parametrize("augment", ["crop-flip", "flip"])
def test_cache_is_exact_under_augmentation(digits, teacher, augment):
    """Cached teacher outputs (per deterministic augmented view) = running the teacher every step."""
    data = small_bundle(digits)
    ov = {"train.augment": augment, "train.views": 2}
    a = distill(teacher, student(), data, recipe="hinton", epochs=3, batch_size=64, progress=False, overrides=ov)
    b = distill(teacher, student(), data, recipe="hinton", epochs=3, batch_size=64, progress=False, overrides=ov,
                cache=False)
    assert a.metrics["cache"]["hits"] > 0 and a.metrics["cache"]["views"] == 2
    assert not b.metrics["cache"]["enabled"]
    for (k, va), vb in zip(a.student.state_dict().items(), b.student.state_dict().values()):
        assert torch.allclose(va.float(), vb.float(), atol=1e-5), k


def test_shared_cache_across_runs(digits, teacher):
    data = small_bundle(digits)
    shared = TeacherCache(len(data.train), views=1)
    distill(teacher, student(), data, recipe="hinton", epochs=1, progress=False, cache=shared)
    misses = shared.misses
    distill(teacher, student(1), data, recipe="hinton", epochs=1, seed=1, progress=False, cache=shared)
    assert misses == len(data.train) and shared.misses == misses  # second run: all hits
    other = small_bundle(digits, 128)
    with pytest.raises(EdgeKDError, match="shared teacher cache"):
        distill(teacher, student(), other, recipe="hinton", epochs=1, progress=False, cache=shared)


@pytest.mark.parametrize("name", ["fitnets", "at", "rkd", "distilbert", "default"])
def test_builtin_recipes_run(digits, teacher, name):
    res = distill(teacher, student(), small_bundle(digits), recipe=name, epochs=2, batch_size=64, progress=False)
    parts = set().union(*(e["parts"] for e in res.metrics["epochs"]))
    assert parts == {s.name for s in load_recipe(name).losses}
    assert all(np.isfinite(e["train_loss"]) for e in res.metrics["epochs"])


def test_two_stage_fitnets_schedule(digits, teacher):
    res = distill(teacher, student(), small_bundle(digits), recipe="fitnets", epochs=4, batch_size=64,
                  progress=False, overrides={"hint.end": 0.5, "kd.start": 0.5})
    ep = res.metrics["epochs"]
    assert set(ep[0]["parts"]) == {"hint"} and set(ep[1]["parts"]) == {"hint"}
    assert set(ep[2]["parts"]) == {"kd"} and set(ep[3]["parts"]) == {"kd"}


def test_auto_layer_pairs():
    ex = torch.zeros(2, 1, 28, 28)
    s = create_model("cnn-xs", in_channels=1, num_classes=10)  # maps 14, 7, 4
    t = create_model("mobilenet-s", in_channels=1, num_classes=10)  # maps 14, 14, 7, 7, 4, 4 (residual blocks)
    assert auto_pairs(s, t, ex, ex, max_pairs=2) == [("features", "features"), ("features.1", "features.3")]
    assert auto_embedding(s, ex) == "classifier:input" and auto_embedding(t, ex) == "classifier:input"


def _feature_bundle(n=240, f=12, k=3):
    rng = np.random.default_rng(0)
    y = np.arange(n) % k
    x = (rng.normal(size=(n, f)) + y[:, None]).astype(np.float32)  # separable: class shifts every feature
    ds = ArrayDataset(x, y.astype(np.int64))
    return DataBundle("tab", ds, ds, ds, k, (f,), [0.0] * f, [1.0] * f, layout="NF")


def test_feature_vector_mlps_pair_their_embeddings_and_reject_crops():
    torch.manual_seed(0)
    t = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 3))
    s = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    ex = torch.zeros(2, 12)
    assert auto_pairs(s, t, ex, ex) == [("2:input", "2:input")]  # no feature maps: FitNets on the embeddings
    res = distill(t.eval(), s, _feature_bundle(), recipe="fitnets", epochs=2, progress=False)
    assert "hint" in res.metrics["epochs"][0]["parts"]
    with pytest.raises(EdgeKDError, match="crops .and flips. images, but the data is .12,. per sample"):
        distill(t, s, _feature_bundle(), recipe="hinton", epochs=1, progress=False, overrides={"augment": "crop"})


def test_explicit_pairs_and_regressor_shapes(digits, teacher):
    recipe = {"loss": [{"type": "hint", "pairs": [["features.0", "features.1"]]}, {"type": "kd"}]}
    res = distill(teacher, student(), small_bundle(digits), recipe=recipe, epochs=1, progress=False)
    assert "hint" in res.metrics["epochs"][0]["parts"]
    bad = {"loss": [{"type": "hint", "pairs": [["features.9", "features.1"]]}]}
    with pytest.raises(EdgeKDError, match="student has no layer 'features.9'"):
        distill(teacher, student(), small_bundle(digits), recipe=bad, epochs=1, progress=False)


def test_pseudo_labels_from_unlabeled_images(digits, teacher):
    data = small_bundle(digits, 128)
    extra = digits.train.x[900:1200]
    res = distill(teacher, student(), data, recipe="hinton", epochs=1, progress=False, unlabeled=extra,
                  overrides={"pseudo_labels.threshold": 0.9})
    info = res.metrics["pseudo_labels"]["unlabeled"]
    assert info["offered"] == 300 and 0 < info["kept"] <= 300
    assert res.metrics["train_samples"] == 128 + info["kept"]
    # fully unlabeled training set: the teacher labels it
    unl = DataBundle(data.name, ArrayDataset(data.train.x, None), data.val, data.test, 10, data.input_shape,
                     data.mean, data.std)
    res = distill(teacher, student(), unl, recipe="hinton", epochs=1, progress=False)
    assert res.metrics["pseudo_labels"]["train"]["kept"] == 128


def test_resume_complete_run_is_a_noop(digits, teacher, tmp_path):
    data = small_bundle(digits)
    a = distill(teacher, student(), data, recipe="hinton", epochs=2, progress=False, output_dir=tmp_path)
    b = distill(teacher, student(5), data, recipe="hinton", epochs=2, progress=False, output_dir=tmp_path,
                resume=True)
    assert b.metrics["resumed_from_step"] == a.metrics["steps"]
    for va, vb in zip(a.student.state_dict().values(), b.student.state_dict().values()):
        assert torch.equal(va, vb)
    with pytest.raises(EdgeKDError, match="other settings"):
        distill(teacher, student(), data, recipe="hinton", epochs=3, progress=False, output_dir=tmp_path, resume=True)


def test_bad_inputs_raise_one_line_errors(digits, teacher, tmp_path):
    data = small_bundle(digits)
    with pytest.raises(EdgeKDError, match="unknown recipe 'nope'"):
        distill(teacher, student(), data, recipe="nope", progress=False)
    with pytest.raises(EdgeKDError, match="unknown key"):
        distill(teacher, student(), data, recipe={"loss": [{"type": "kd", "temprature": 2}]}, progress=False)
    with pytest.raises(EdgeKDError, match="names no recipe field"):
        distill(teacher, student(), data, recipe="hinton", overrides={"rkd.weight": 2}, progress=False)
    with pytest.raises(EdgeKDError, match="predicts 3 classes"):
        distill(teacher, create_model("cnn-xs", num_classes=3), data, recipe="hinton", progress=False)
    with pytest.raises(EdgeKDError, match="epochs"):
        distill(teacher, student(), data, epochs=0, progress=False)
    with pytest.raises(EdgeKDError, match="resume needs"):
        distill(teacher, student(), data, resume=True, progress=False)
    with pytest.raises(EdgeKDError, match="cannot run on inputs"):
        distill(nn.Linear(3, 10), student(), data, progress=False)
    (tmp_path / "bad.toml").write_text("name = [unclosed")
    with pytest.raises(EdgeKDError, match="not valid TOML"):
        load_recipe(str(tmp_path / "bad.toml"))
    # a corrupt checkpoint is refused with one line, not a traceback
    (tmp_path / "last.pt").write_bytes(b"not a zip")
    with pytest.raises(EdgeKDError, match="not a readable PyTorch checkpoint"):
        distill(teacher, student(), data, recipe="hinton", progress=False, output_dir=tmp_path, resume=True)


def test_default_recipe_falls_back_when_no_layers_match(digits):
    """compress uses the default recipe with any teacher: its optional cosine term is dropped, not fatal."""
    torch.manual_seed(0)
    headless = nn.Sequential(nn.Conv2d(1, 10, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())  # no nn.Linear
    res = distill(headless, student(), small_bundle(digits, 64), recipe="default", epochs=1, progress=False)
    assert set(res.metrics["epochs"][0]["parts"]) == {"kd", "ce"}
    assert res.metrics["skipped_losses"][0].startswith("cosine: teacher has no nn.Linear head")
    with pytest.raises(EdgeKDError, match="no nn.Linear head"):
        distill(headless, student(), small_bundle(digits, 64), recipe="default", epochs=1, progress=False,
                overrides={"cosine.optional": False})


def test_freeze_bn_keeps_running_statistics_and_trains_the_rest(digits, teacher):
    """train.freeze_bn: a pretrained student's BatchNorm statistics survive fine-tuning on a few images."""
    s = student()
    bns = [m for m in s.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns
    before = [m.running_mean.clone() for m in bns]
    weights = [p.detach().clone() for p in s.parameters()]
    distill(teacher, s, small_bundle(digits, 64), recipe="hinton", epochs=1, batch_size=32, progress=False,
            overrides={"train.freeze_bn": "true"}, cache=False)
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, bns))
    assert any(not torch.equal(w, p) for w, p in zip(weights, s.parameters()))
    with pytest.raises(EdgeKDError, match="freeze_bn must be true or false"):
        load_recipe("hinton", {"train.freeze_bn": "sometimes"})
    assert "freeze_bn" not in load_recipe("hinton").train  # absent unless given: older fingerprints hold


def test_time_budget_fits_the_plan_and_says_so(digits, teacher):
    res = distill(teacher, student(), digits, recipe="hinton", epochs=50, batch_size=64, progress=False,
                  time_budget_s=2.0)
    m = res.metrics
    assert m["time_budget_s"] == 2.0 and m["stopped"] == "time budget"
    assert 0 < m["steps"] < m["planned_steps"] and m["budget_used_s"] < 2.0 + 1.5
