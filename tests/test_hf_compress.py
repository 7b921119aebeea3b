"""compress_hf end to end on a tiny BERT: optimum directory, int8 ONNX, TFLite, parity, report, resume, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("optimum.exporters.onnx")

from test_hf_helpers import make_tiny_bert, random_texts  # noqa: E402

from edgekd.errors import EdgeKDError  # noqa: E402

REQUIRED = {"name", "path", "format", "precision", "accuracy", "size_bytes", "latency"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One full run (~30-40 s on a shared 2-core machine), shared by the tests below."""
    import torch

    torch.set_num_threads(1)
    from edgekd.pipeline import compress_hf

    root = tmp_path_factory.mktemp("hfrun")
    teacher = make_tiny_bert(root / "teacher", "embedding")
    data = root / "texts.txt"
    data.write_text("\n".join(random_texts(80)))
    extra = root / "unlabeled.txt"  # more text for distillation only
    extra.write_text("\n".join(random_texts(24, seed=7)))
    kw = dict(data=str(data), extra_text=str(extra), target="android", output=root / "out", layers=2, max_length=32, seq_len=32,
              eval_samples=10, runs=3, threads=1, log=lambda m: None)
    report = compress_hf(f"hf:{teacher}", **kw)
    return {"root": root, "teacher": teacher, "report": report, "kw": kw}


@pytest.mark.slow
def test_report_shape_and_artifacts(run):
    r, out = run["report"], run["root"] / "out"
    assert json.loads((out / "report.json").read_text())["artifacts"] == r["artifacts"]
    assert (out / "report.md").read_text().startswith("# edgekd compress (Hugging Face)")
    arts = {a["name"]: a for a in r["artifacts"]}
    assert {"teacher", "student", "student-onnx", "student-onnx-int8", "student-tflite", "teacher-onnx"} <= set(arts)
    for name in ("student-onnx", "student-onnx-int8", "student-tflite"):
        a = arts[name]
        assert REQUIRED <= set(a) and (out / a["path"]).is_file() and a["size_bytes"] > 0
        assert 0 <= a["accuracy"] <= 100 and "spearman" in a["extra"]["accuracy_metric"]
        lat = a["latency"]
        assert lat["kind"] == "measured" and lat["p50_ms"] > 0 and {"p90_ms", "runtime", "threads", "runs", "where"} <= set(lat)
    assert arts["student-onnx-int8"]["precision"] == "dynamic-int8"
    # parity with the PyTorch student on the same inputs
    assert arts["student-onnx"]["extra"]["parity_vs_student"]["max_abs_diff"] < 1e-4
    assert arts["student-tflite"]["extra"]["parity_vs_student"]["max_abs_diff"] < 1e-4
    assert arts["student-onnx-int8"]["extra"]["parity_vs_student"]["min_cosine"] > 0.99
    # android ships TFLite; the device is absent, so the latency says it was measured on the host
    assert r["shipped"] == ["student.tflite"] and "NOT the device" in arts["student-tflite"]["latency"]["where"]
    assert r["student"]["layers"] == [0, 3] and r["student"]["params"] < r["teacher"]["params"]
    assert set(r["speedup_vs_teacher_onnx"]) == {"student-onnx", "student-onnx-int8"}
    assert not list(out.glob(".*partial*"))  # nothing half-written left behind
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["extra_text"]["texts"] == 24
    train = manifest["stages"]["hf-distill"]["metrics"]["train"]
    assert train["train_examples"] == 64 + 24 and train["layer_targets"] == [3] and train["freeze_embeddings"]
    import os

    umask = os.umask(0)
    os.umask(umask)
    assert (out / "onnx").stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's private 0700


@pytest.mark.slow
def test_optimum_dirs_load_with_ortmodel(run):
    import torch
    from optimum.onnxruntime import ORTModelForFeatureExtraction
    from transformers import AutoModel, AutoTokenizer

    out = run["root"] / "out"
    tok = AutoTokenizer.from_pretrained(out / "onnx")
    b = tok(["the man said that the water was hot", "we can find a new way"], padding=True, return_tensors="pt")
    ref = AutoModel.from_pretrained(out / "student").eval()
    with torch.no_grad():
        want = ref(**b).last_hidden_state.numpy()
    for d, tol in (("onnx", 1e-4), ("onnx-int8", 0.1)):
        got = ORTModelForFeatureExtraction.from_pretrained(out / d)(**b).last_hidden_state
        assert np.abs(np.asarray(got) - want).max() < tol, d
    assert AutoTokenizer.from_pretrained(out / "student").vocab == tok.vocab  # the teacher's tokenizer, kept


@pytest.mark.slow
def test_rerun_skips_finished_stages(run):
    from edgekd.pipeline import compress_hf

    before = json.loads((run["root"] / "out" / "manifest.json").read_text())["stages"]
    r2 = compress_hf(f"hf:{run['teacher']}", **run["kw"])
    after = json.loads((run["root"] / "out" / "manifest.json").read_text())["stages"]
    assert after["hf-distill"]["finished"] == before["hf-distill"]["finished"]
    assert after["hf-export-onnx"]["finished"] == before["hf-export-onnx"]["finished"]
    assert r2["artifacts"] == run["report"]["artifacts"]


@pytest.mark.slow
def test_cli_command_json(run, capsys):
    import typer
    from typer.testing import CliRunner

    from edgekd.commands.hf import hf_compress_cmd

    app = typer.Typer()
    app.command()(hf_compress_cmd)
    kw = run["kw"]
    args = ["--teacher", f"hf:{run['teacher']}", "--data", kw["data"], "--output", str(kw["output"]), "--layers", "2",
            "--extra-text", kw["extra_text"], "--max-length", "32", "--seq-len", "32", "--eval-samples", "10", "--runs", "3", "--threads", "1", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)  # clean JSON: converter progress goes to stderr
    assert rep["kind"] == "hf" and rep["shipped"] == ["student.tflite"]


def test_bad_inputs_are_one_line_errors(tmp_path):
    from edgekd.pipeline import compress_hf

    teacher = make_tiny_bert(tmp_path / "t", "embedding", layers=2)
    with pytest.raises(EdgeKDError, match="does not exist"):
        compress_hf(f"hf:{tmp_path / 'missing'}", data="x.txt", output=tmp_path / "o")
    with pytest.raises(EdgeKDError, match="does not exist"):
        compress_hf(f"hf:{teacher}", data=str(tmp_path / "nope.txt"), output=tmp_path / "o")
    with pytest.raises(EdgeKDError, match="layers"):
        (tmp_path / "d.txt").write_text("\n".join(random_texts(20)))
        compress_hf(f"hf:{teacher}", data=str(tmp_path / "d.txt"), output=tmp_path / "o", layers="0,5", log=lambda m: None)
    assert not (tmp_path / "o" / "student").exists()


# ---- `edgekd compress --teacher hf:PATH` routes to compress_hf (fast: compress_hf is stubbed)

def _cli(argv, capsys):
    from edgekd.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr()


def test_compress_routes_hf_teacher(tmp_path, monkeypatch, capsys):
    import edgekd.pipeline

    seen = {}

    def fake(teacher, **kw):
        seen.update(kw, teacher=teacher)
        return {"kind": "hf", "artifacts": [], "shipped": []}

    monkeypatch.setattr(edgekd.pipeline, "compress_hf", fake)
    code, out = _cli(["compress", "--teacher", "hf:/some/dir", "--target", "android", "--output", str(tmp_path / "o"),
                      "--json"], capsys)
    assert code in (0, None), out.err
    assert seen["teacher"] == "hf:/some/dir" and seen["target"] == "android" and seen["data"] is None
    # batch None: the modality's default (32 for encoders, 8 for decoder LMs)
    assert seen["epochs"] == 1 and seen["batch_size"] is None and seen["layers"] is None and seen["tflite"]
    assert json.loads(out.out)["kind"] == "hf"


def test_compress_hf_errors_are_one_line(tmp_path, capsys):
    code, out = _cli(["compress", "--teacher", f"hf:{tmp_path / 'missing'}", "--output", str(tmp_path / "o")], capsys)
    assert code == 1 and out.err.count("\n") == 1 and out.err.startswith("error: ") and "does not exist" in out.err
    code, out = _cli(["compress", "--teacher", f"hf:{tmp_path}", "--prune", "0.3", "--output", str(tmp_path / "o")], capsys)
    assert code == 2 and out.err.count("\n") == 1 and "--prune" in out.err and "hf-compress" in out.err
    assert not (tmp_path / "o").exists()


def test_default_data_is_fortunes():
    import inspect

    from edgekd.modalities.text import DEFAULT_DATA
    from edgekd.pipeline import compress_hf

    assert inspect.signature(compress_hf).parameters["data"].default is None and DEFAULT_DATA == "fortunes"


@pytest.mark.slow
def test_without_tflite_the_report_says_nothing_in_the_target_format_ships(run):
    from edgekd.pipeline import compress_hf

    r = compress_hf(f"hf:{run['teacher']}", **{**run["kw"], "tflite": False})  # earlier stages are reused
    assert r["shipped"] == [] and not any(a["format"] == "tflite" for a in r["artifacts"])
    assert any("No TFLite file was made" in n for n in r["notes"])
    assert not any("ships the float TFLite" in n for n in r["notes"])


@pytest.mark.slow
def test_distilbert_teacher_with_a_relative_output_dir(tmp_path, monkeypatch):
    """A DistilBERT teacher (its BERT tokenizer makes token_type_ids the model refuses) and `--output out`
    relative to the working directory (stage outputs were once joined to it twice)."""
    from test_hf_helpers import make_tiny_encoder

    from edgekd.pipeline import compress_hf

    make_tiny_encoder(tmp_path / "teacher", "distilbert")
    (tmp_path / "texts.txt").write_text("\n".join(random_texts(60)))
    monkeypatch.chdir(tmp_path)
    r = compress_hf("hf:teacher", data="texts.txt", target="host", output="out", layers=2, max_length=32, seq_len=32,
                    eval_samples=10, runs=3, threads=1, tflite=False, log=lambda m: None)
    arts = {a["name"]: a for a in r["artifacts"]}
    assert arts["student-onnx"]["path"] == "onnx/model.onnx" and (tmp_path / "out" / "onnx" / "model.onnx").is_file()
    assert arts["student-onnx"]["extra"]["parity_vs_student"]["min_cosine"] > 0.9999
    assert arts["student-onnx-int8"]["accuracy"] > 50.0
