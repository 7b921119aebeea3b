"""Host profiling (ONNX Runtime and LiteRT/XNNPACK), the one result format, and the error paths."""

import json
from pathlib import Path

import numpy as np
import pytest

from edgekd.errors import EdgeKDError, UsageError
from edgekd.profile import ProfileReport, profile
from edgekd.profile.report import LATENCY_KEYS

FIX = Path(__file__).parent / "fixtures" / "profile"
SAMPLE = FIX / "digits_sample.npy"


def check_common(r, kind, runs=None):
    for k in LATENCY_KEYS:
        assert k in r, k
    assert r["kind"] == kind and r["where"]
    if runs is not None:
        assert r["runs"] == runs
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
        assert r["min_ms"] <= r["p50_ms"] <= r["max_ms"]


@pytest.mark.parametrize("name,runtime", [("tiny_fp32.onnx", "onnxruntime"), ("tiny_int8.tflite", "ai-edge-litert")])
def test_host_measures_onnx_and_tflite_in_one_format(name, runtime):
    rep = profile(FIX / name, "host", runs=15, warmup=2, threads=1)
    assert isinstance(rep, ProfileReport) and len(rep.results) == 1
    r = rep.primary
    check_common(r, "measured", runs=15)
    assert r["runtime"] == runtime and r["threads"] == 1 and r["warmup"] == 2
    assert r["where"].startswith("host ") and "1 thread" in r["where"]
    assert r["file_size_bytes"] == (FIX / name).stat().st_size
    assert r["init_ms"] > 0 and r["peak_rss_mb"] > 1
    # a fresh subprocess: its peak RSS is the runtime + model, far below a torch-loaded process
    assert r["peak_rss_mb"] < 600
    if name.endswith(".onnx"):  # per-op breakdown from ORT's profiler (separate session, not the timed one)
        types = {t["type"]: t["count"] for t in r["op_types"]}
        # ORT rewrites the graph for the CPU it runs on: where MLAS has NCHWc kernels (every x86-64, block 8 or 16
        # with AVX-512F) Conv+Relu become NCHWc "Conv" nodes plus ReorderOutput; without them (e.g. ARM64 hosts)
        # they fuse into "FusedConv". Either way the file's 2 convolutions and 1 Gemm are each one timed node.
        assert types.get("Conv", 0) + types.get("FusedConv", 0) == 2 and types["Gemm"] == 1
        assert abs(sum(o["percent"] for o in r["ops"]) - 100) < 1e-6
    json.dumps(rep.to_dict())  # JSON-able as is


def test_tflite_runs_xnnpack_and_int8_io_gets_a_quantized_real_sample():
    r = profile(FIX / "tiny_int8.tflite", "host", runs=5, warmup=1, sample=SAMPLE).primary
    assert r["delegates"] == ["XNNPACK"]
    assert r["input_source"] == "sample"
    assert [(i["shape"], i["dtype"]) for i in r["inputs"]] == [([1, 8, 8, 1], "int8")]  # NCHW float sample -> NHWC int8


def test_sample_as_array_and_wrong_shape():
    x = np.load(SAMPLE)
    assert profile(FIX / "tiny_fp32.onnx", "host", runs=3, warmup=0, sample=x).primary["input_source"] == "sample"
    with pytest.raises(EdgeKDError, match="does not fit model input"):
        profile(FIX / "tiny_fp32.onnx", "host", runs=3, sample=np.zeros((1, 3, 5, 5), np.float32))


def test_bad_inputs_raise_one_line_errors(tmp_path):
    with pytest.raises(EdgeKDError, match="does not exist"):
        profile(tmp_path / "nope.onnx", "host")
    txt = tmp_path / "model.txt"
    txt.write_text("x")
    with pytest.raises(EdgeKDError, match="want a .onnx, .tflite, .pte or .mlpackage"):
        profile(txt, "host")
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(EdgeKDError) as ei:
        profile(bad, "host", runs=2)
    assert "broken.tflite" in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(UsageError):
        profile(FIX / "tiny_fp32.onnx", "host", runs=0)


def test_android_without_device_is_measured_on_host_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no adb anywhere
    rep = profile(FIX / "tiny_int8.tflite", "android", runs=3, warmup=1)
    r = rep.primary
    assert r["kind"] == "measured" and r["backend"] == "host-fallback"
    assert r["where"].startswith("host ") and "no android device reachable" in r["where"] and "NOT the device" in r["where"]
    assert "adb" in r["fallback_reason"] and rep.notes
    with pytest.raises(EdgeKDError, match="adb is not installed"):
        profile(FIX / "tiny_int8.tflite", "android", runs=3, require_device=True)


def test_emulate_needs_an_emulation_table():
    with pytest.raises(EdgeKDError):
        profile(FIX / "tiny_fp32.onnx", "host", runs=2, emulate=True)


def test_remote_runner_stands_alone():
    """It is copied to boards that have numpy + a runtime but no edgekd."""
    from edgekd.profile.host import RUNNER

    import re

    assert not re.search(r"^\s*(from|import)\s+edgekd", RUNNER.read_text(), re.M)


def test_dynamic_sequence_length_needs_an_input_shape(tmp_path):
    """Token ids [batch, seq]: timing at seq 1 would mean nothing, so the shape must be given and is reported."""
    import onnx
    from onnx import TensorProto, helper

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq"])
    graph = helper.make_graph([helper.make_node("Cast", ["input_ids"], ["y"], to=TensorProto.FLOAT)], "g", [ids], [out])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "tok.onnx")
    with pytest.raises(EdgeKDError, match=r"dynamic dims \['batch', 'seq'\]: pass --input-shape"):
        profile(tmp_path / "tok.onnx", "host", runs=3, warmup=1, threads=1)
    rep = profile(tmp_path / "tok.onnx", "host", runs=3, warmup=1, threads=1, input_shape=(1, 128))
    assert rep.results[0]["inputs"] == [{"name": "input_ids", "shape": [1, 128], "dtype": "int64"}]
    with pytest.raises(EdgeKDError, match="does not fit input input_ids"):
        profile(tmp_path / "tok.onnx", "host", runs=3, warmup=1, threads=1, input_shape=(1, 3, 8))
