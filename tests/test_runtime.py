"""edgekd.runtime: the one timing loop, the Latency record, layout and int8 I/O, and the runners on real files."""

import re
import time
from pathlib import Path

import numpy as np
import pytest

from edgekd.errors import EdgeKDError
from edgekd.runtime import Latency, load_runner, time_calls
from edgekd.runtime.layout import dequantize, fit_layout, quantize_input

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures" / "profile"


def _documented_keys() -> list[str]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    line = text[text.index("Every latency dict"):].split("plus whatever", 1)[0]
    return re.findall(r'"(\w+)"', line)


# ---------------------------------------------------------------- timing loop


def test_time_calls_interleaves_round_robin_and_abba():
    calls = []
    fns = {k: (lambda k=k: calls.append(k)) for k in "ABC"}
    ms = time_calls(fns, rounds=2, warmup=1)
    assert "".join(calls) == "ABC" + "ABCABC"  # warm-up round, then two timed rounds
    assert {k: len(v) for k, v in ms.items()} == {"A": 2, "B": 2, "C": 2}
    calls.clear()
    time_calls({k: fns[k] for k in "AB"}, rounds=4, abba=True)
    assert "".join(calls) == "ABBAABBA"


def test_time_calls_blocks_turns_and_per_invoke_ms():
    calls = []
    ms = time_calls({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=2, inner=3, per_turn=2)
    assert "".join(calls) == ("a" * 6 + "b" * 6) * 2  # a turn: per_turn samples of `inner` invokes each
    assert len(ms["a"]) == 4 and ms["a"].dtype == np.float64
    slow = time_calls({"s": lambda: time.sleep(0.002)}, rounds=3, inner=2)["s"]
    assert np.all(slow >= 1.9)  # per invoke, in milliseconds, not per block or in seconds


def test_time_calls_max_seconds_keeps_min_rounds():
    ms = time_calls({"s": lambda: time.sleep(0.001)}, rounds=1000, min_rounds=5, max_seconds=0.0)
    assert len(ms["s"]) == 5


# ---------------------------------------------------------------- Latency


def test_latency_to_dict_is_the_documented_format():
    keys = _documented_keys()
    assert keys == ["p50_ms", "p90_ms", "p99_ms", "mean_ms", "runs", "warmup", "threads", "runtime", "kind", "where"]
    lat = Latency.from_ms([1.0, 2.0, 3.0, 4.0], warmup=2, threads=1, runtime="onnx", kind="measured",
                          where="here", extra={"batch": 1})
    d = lat.to_dict()
    assert list(d) == keys + ["batch"]
    assert d["runs"] == 4 and d["p50_ms"] == 2.5 and d["mean_ms"] == 2.5 and d["p50_ms"] <= d["p90_ms"] <= d["p99_ms"]
    rounded = Latency.from_ms([1.23456789] * 3, digits=3, runs=30, warmup=0, threads=2, runtime="x",
                              kind="estimated", where="w").to_dict()
    assert rounded["p50_ms"] == 1.235 and rounded["runs"] == 30


def test_latency_refuses_unknown_kind_and_key_clash():
    with pytest.raises(ValueError, match="kind"):
        Latency(1, 1, 1, 1, 1, 0, 1, "r", "guessed", "w")
    with pytest.raises(ValueError, match="documented latency keys"):
        Latency(1, 1, 1, 1, 1, 0, 1, "r", "measured", "w", extra={"runs": 3})


# ---------------------------------------------------------------- layout and int8 I/O


def test_layout_round_trip_and_pass_through():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    nhwc, layout = fit_layout(x, (1, 4, 5, 3))
    assert layout == "NHWC" and nhwc.shape == (2, 4, 5, 3) and nhwc.flags.c_contiguous
    np.testing.assert_array_equal(nhwc.transpose(0, 3, 1, 2), x)
    assert fit_layout(x, (1, 3, 4, 5)) == (x, "NCHW")
    assert fit_layout(x, (-1, -1, -1, -1))[1] == "NCHW"  # dynamic dims: the file takes what it is given
    ids = np.ones((1, 16), np.int64)
    assert fit_layout(ids, (1, 16))[0] is ids
    with pytest.raises(EdgeKDError, match="does not fit"):
        fit_layout(x, (1, 7, 7, 3))


def test_int8_input_and_output_round_trip():
    x = np.linspace(-1, 1, 50, dtype=np.float32)
    q = quantize_input(x, np.int8, (1 / 127, 0))
    assert q.dtype == np.int8 and q.min() == -127 and q.max() == 127
    np.testing.assert_allclose(dequantize(q, (1 / 127, 0)), x, atol=0.5 / 127 + 1e-6)
    assert quantize_input(np.array([10.0]), np.uint8, (0.01, 128))[0] == 255  # clipped, not wrapped
    ids = np.array([[101, 2023]], np.int64)
    assert quantize_input(ids, np.int32, (0.0, 0)).dtype == np.int32  # token ids are cast, not quantized
    with pytest.raises(EdgeKDError, match="input x is integer without quantization parameters"):
        quantize_input(x, np.int8, (0.0, 0), "input x")
    y = np.arange(4, dtype=np.int32)
    assert dequantize(y, (0.0, 0)) is y


def test_runners_agree_across_formats_and_with_execute():
    from edgekd.export.execute import run_file

    x = np.load(FIX / "digits_sample.npy")
    outs = {n: load_runner(FIX / n, threads=1).predict(x) for n in ("tiny_fp32.onnx", "tiny_fp32.tflite",
                                                                   "tiny_int8.tflite")}
    np.testing.assert_allclose(outs["tiny_fp32.tflite"], outs["tiny_fp32.onnx"], atol=1e-4)
    assert (outs["tiny_int8.tflite"].argmax(1) == outs["tiny_fp32.onnx"].argmax(1)).mean() >= 0.75
    r = load_runner(FIX / "tiny_int8.tflite", threads=1)
    assert r.prepare(x[:1]).dtype == np.int8 and r.input_layout == "NHWC"
    np.testing.assert_array_equal(run_file(FIX / "tiny_int8.tflite", [x])[0], outs["tiny_int8.tflite"])


def test_load_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(EdgeKDError, match=r"ONNX Runtime cannot load bad.onnx") as e:
        load_runner(bad)
    assert "\n" not in str(e.value)
