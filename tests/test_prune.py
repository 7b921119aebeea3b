"""prune(): iterative structured pruning with KD recovery, unstructured sparsity, export parity, CLI."""

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.errors import EdgeKDError
from edgekd.prune.structured import prune

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    from edgekd.data import load_data

    b = load_data("digits", seed=0)
    return dataclasses.replace(b, train=b.train.subset(256, 0), val=b.val.subset(64, 0), test=b.test.subset(64, 0))


@pytest.fixture(scope="module")
def student(data):
    """A cnn-m trained a little on digits (plain CE through the distill engine)."""
    from edgekd.distill import distill
    from edgekd.models import create_model

    torch.manual_seed(0)
    m = create_model("cnn-m", in_channels=1, num_classes=10)
    distill(copy.deepcopy(m), m, data, recipe={"loss": [{"type": "ce"}]}, epochs=2, batch_size=64, progress=False)
    m.requires_grad_(True)
    return m.eval()


def _convs(m):
    return [x for x in m.modules() if isinstance(x, nn.Conv2d)]


def test_structured_prune_without_recovery_removes_channels(student, data):
    before = copy.deepcopy(student.state_dict())
    r = prune(student, None, data, ratio=0.5, steps=2, recover_epochs=0, scope="uniform", measure_latency=False)
    assert r.recovery == "none" and len(r.history) == 2
    assert r.macs_after < 0.5 * r.macs_before and r.params_after < r.params_before
    assert [h["cumulative_ratio"] for h in r.history] == [0.25, 0.5]
    assert all(c.out_channels % 8 == 0 for c in _convs(r.model))
    for k, v in student.state_dict().items():  # input model untouched
        assert torch.equal(v, before[k])
    # no training happened: every kept first-layer filter is an original filter
    orig = _convs(student)[0].weight
    assert all(any(torch.equal(f, g) for g in orig) for f in _convs(r.model)[0].weight)
    assert r.model(torch.from_numpy(data.test.x[:3])).shape == (3, 10)


def test_prune_with_kd_recovery_trains_each_step(student, data, tmp_path):
    t = copy.deepcopy(student)
    r = prune(student, t, data, ratio=0.4, steps=2, recover_epochs=1, recover_steps=4, batch_size=32,
              importance="taylor", scope="global", output_dir=tmp_path, threads=1)
    assert r.recovery == "kd" and [h["recovery_steps"] for h in r.history] == [4, 4]
    assert r.accuracy_after is not None and r.test_accuracy_after is not None
    assert (tmp_path / "step1" / "last.pt").is_file()
    assert r.latency_after["kind"] == "measured" and r.latency_before["runtime"] == "pytorch-eager"
    orig = _convs(student)[0].weight  # recovery changed the kept weights
    assert not all(any(torch.equal(f, g) for g in orig) for f in _convs(r.model)[0].weight)


def test_unstructured_reports_sparsity_and_dense_note(student, data):
    r = prune(student, None, data, ratio=0.6, steps=2, recover_epochs=1, recover_steps=3, batch_size=32,
              unstructured=True, measure_latency=False)
    assert r.sparsity["weight_sparsity"] == pytest.approx(0.6, abs=0.01)
    assert r.macs_after == r.macs_before  # zeros are still multiplied by dense runtimes
    assert any("do not get faster" in n for n in r.notes)
    assert not any(hasattr(m, "weight_orig") for m in r.model.modules())  # masks made permanent


@pytest.mark.slow
def test_pruned_model_exports_to_onnx_with_parity(student, data, tmp_path):
    from edgekd.export import export_onnx
    from edgekd.runtime import load_runner

    r = prune(student, None, data, ratio=0.5, steps=1, recover_epochs=0, measure_latency=False)
    rep = export_onnx(r.model, data.test.x[:16], tmp_path / "p.onnx")
    assert rep.passed
    got = load_runner(tmp_path / "p.onnx").predict(data.test.x[:16])
    want = r.model(torch.from_numpy(data.test.x[:16])).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kw,msg", [
    ({"ratio": 0.0}, "ratio"), ({"ratio": 1.0}, "ratio"), ({"ratio": "x"}, "ratio"),
    ({"ratio": 0.5, "scope": "local"}, "scope"), ({"ratio": 0.5, "importance": "vibes"}, "importance"),
    ({"ratio": 0.5, "steps": 0}, "steps"), ({"ratio": 0.5, "recovery": "magic"}, "recovery"),
    ({"ratio": 0.5, "unstructured": True, "importance": "taylor"}, "magnitude"),
])
def test_bad_arguments(student, data, kw, msg):
    with pytest.raises(EdgeKDError, match=msg):
        prune(student, None, data, measure_latency=False, recover_epochs=0, **kw)


def test_cli_derive_and_prune(tmp_path, student):
    import typer
    from typer.testing import CliRunner

    from edgekd.commands.prune import derive_cmd, prune_cmd
    from edgekd.models import create_model
    from edgekd.models.checkpoint import load_portable

    app = typer.Typer()
    app.command("derive")(derive_cmd)
    app.command("prune")(prune_cmd)
    run = CliRunner()
    out = tmp_path / "d.pt"
    res = run.invoke(app, ["derive", "--teacher", "mobilenet-s", "--ratio", "0.3", "--input-shape", "1,16,16",
                           "--output", str(out), "--threads", "1", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["achieved_ratio"] <= 0.3 * 1.05 and out.is_file()
    m = load_portable(create_model("mobilenet-s"), out)
    assert m(torch.randn(1, 1, 16, 16)).shape == (1, 10)
    # bad input: one EdgeKDError, no file written
    bad = run.invoke(app, ["derive", "--teacher", "mobilenet-s", "--ratio", "2", "--input-shape", "1,16,16",
                           "--output", str(tmp_path / "bad.pt")])
    assert isinstance(bad.exception, EdgeKDError) and not (tmp_path / "bad.pt").exists()
    # feature-vector models: --input-shape F
    (tmp_path / "mlp.py").write_text("import torch\ndef build():\n    return torch.nn.Sequential(torch.nn.Linear(20, 64),"
                                     " torch.nn.ReLU(), torch.nn.Linear(64, 5))\n")
    res = run.invoke(app, ["derive", "--teacher", f"{tmp_path / 'mlp.py'}:build", "--ratio", "0.5", "--input-shape", "20",
                           "--output", str(tmp_path / "mlp_d.pt"), "--threads", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["achieved_ratio"] <= 0.5 * 1.05
    torch.save(student.state_dict(), tmp_path / "s.pt")
    res = run.invoke(app, ["prune", "--model", "cnn-m", "--model-weights", str(tmp_path / "s.pt"), "--data", "digits",
                           "--ratio", "0.5", "--steps", "1", "--recover-epochs", "0", "--output", str(tmp_path / "p.pt"),
                           "--threads", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["macs_ratio"] < 0.5
    p = load_portable(create_model("cnn-m"), tmp_path / "p.pt")
    assert p(torch.randn(1, 1, 8, 8)).shape == (1, 10)
