"""Run directory, manifest and atomic writes."""

import json

import pytest

from edgekd.core import Artifact, RunDir, StageResult, atomic_path
from edgekd.errors import EdgeKDError


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "model.tflite"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("converter crashed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_renames_on_success(tmp_path):
    final = tmp_path / "sub" / "model.onnx"
    with atomic_path(final) as tmp:
        assert tmp.suffix == ".onnx" and tmp != final
        tmp.write_bytes(b"data")
    assert final.read_bytes() == b"data"
    assert [p.name for p in final.parent.iterdir()] == ["model.onnx"]


def test_atomic_path_refuses_empty_output(tmp_path):
    with pytest.raises(EdgeKDError, match="no data"):
        with atomic_path(tmp_path / "m.onnx"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_refuses_a_directory_in_the_way(tmp_path):
    (tmp_path / "m.onnx").mkdir()
    with pytest.raises(EdgeKDError, match="existing directory"):
        with atomic_path(tmp_path / "m.onnx") as tmp:
            tmp.write_bytes(b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"] and not any((tmp_path / "m.onnx").iterdir())


def test_atomic_path_refuses_a_parent_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(EdgeKDError, match="is a file"):
        with atomic_path(tmp_path / "f" / "sub" / "m.onnx"):
            pass


def test_atomic_path_refuses_a_read_only_directory(tmp_path, monkeypatch):
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode & os.W_OK else real(p, mode))  # root ignores modes
    with pytest.raises(EdgeKDError, match="not writable"):
        with atomic_path(tmp_path / "m.onnx"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_check_output_file_refuses_an_input(tmp_path):
    from edgekd.core import check_output_file

    src = tmp_path / "model.onnx"
    src.write_bytes(b"x")
    with pytest.raises(EdgeKDError, match="input file"):
        check_output_file(tmp_path / "." / "model.onnx", "--output", reads=[None, src])
    assert check_output_file(tmp_path / "other.onnx", reads=[src]) == tmp_path / "other.onnx"


def test_stage_skipped_when_unchanged_and_rerun_when_changed(tmp_path):
    calls = []

    def stage():
        calls.append(1)
        (tmp_path / "out.bin").write_bytes(b"x" * 10)
        return StageResult([Artifact("out", str(tmp_path / "out.bin"), "onnx")], {"acc": 0.9})

    run = RunDir(tmp_path)
    res, skipped = run.run_stage("s", {"a": 1}, stage)
    assert not skipped and res.artifacts[0].path == "out.bin" and res.artifacts[0].size_bytes == 10
    # A new RunDir on the same folder (a rerun) reuses the recorded result.
    res2, skipped2 = RunDir(tmp_path).run_stage("s", {"a": 1}, stage)
    assert skipped2 and res2.metrics == {"acc": 0.9} and len(calls) == 1
    # Changed settings, or a tampered output, run the stage again.
    RunDir(tmp_path).run_stage("s", {"a": 2}, stage)
    assert len(calls) == 2
    (tmp_path / "out.bin").write_bytes(b"tampered")
    _, skipped3 = RunDir(tmp_path).run_stage("s", {"a": 2}, stage)
    assert not skipped3 and len(calls) == 3
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["stages"]["s"]["status"] == "done"
    assert manifest["stages"]["s"]["artifacts"][0]["sha256"]


def test_failed_stage_is_not_reused(tmp_path):
    def boom():
        raise EdgeKDError("bad")

    run = RunDir(tmp_path)
    with pytest.raises(EdgeKDError):
        run.run_stage("s", {}, boom)
    assert RunDir(tmp_path).stage_record("s")["status"] == "running"
    _, skipped = RunDir(tmp_path).run_stage("s", {}, lambda: StageResult())
    assert not skipped


def test_unwritable_output_dir_is_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(EdgeKDError, match="not writable"):
        RunDir(blocker / "run")


def test_run_dir_refuses_another_pipelines_run(tmp_path):
    run = RunDir(tmp_path / "r", pipeline="hf-compress")
    (tmp_path / "r" / "a.txt").write_text("x")
    run.run_stage("hf-distill", {}, lambda: StageResult([Artifact("a", "a.txt", "txt", "fp32")]))
    assert RunDir(tmp_path / "r", pipeline="hf-compress").manifest["pipeline"] == "hf-compress"  # resuming is fine
    with pytest.raises(EdgeKDError, match="holds an `edgekd hf-compress` run; give `edgekd compress` another --output"):
        RunDir(tmp_path / "r", pipeline="compress")
    old = RunDir(tmp_path / "legacy")  # written before runs recorded their pipeline: told apart by stage names
    old.run_stage("distill", {}, lambda: StageResult([]))
    with pytest.raises(EdgeKDError, match="holds an `edgekd compress` run"):
        RunDir(tmp_path / "legacy", pipeline="hf-compress")
