"""The per-target precision rule (issue 22): the precision fastest on the target's figure of record ships."""

from __future__ import annotations

import pytest

from edgekd.core import Artifact
from edgekd.errors import EdgeKDError
from edgekd.pipeline.precision import Figure, pick, record_figure
from edgekd.pipeline.shipping import apply_precision_rule, mark_shipped
from edgekd.targets import load_target

HOST_STAND_IN = {"backend": "host-fallback", "kind": "measured", "p50_ms": 0.2}


def _emulated(n):
    return {"backend": "qemu-emulation", "kind": "estimated", "p50_ms": n / 3.6e6, "emulated_instructions": n,
            "qemu_cpu": "cortex-a76"}


def test_figure_of_record_order():
    # a host stand-in for an unreachable phone never counts; the emulated ARM count does
    assert record_figure([HOST_STAND_IN]) is None
    fig = record_figure([HOST_STAND_IN, _emulated(63e6)])
    assert fig.unit == "instructions" and fig.value == 63e6 and "cortex-a76" in fig.label
    # a measurement on the target itself beats the emulated estimate
    on_device = {"backend": "adb", "kind": "measured", "p50_ms": 9.5, "target": "android", "threads": 4}
    assert record_figure([_emulated(63e6), on_device]).unit == "ms"
    assert record_figure([{"backend": "vela", "kind": "estimated", "p50_ms": 0.06}]).unit == "ms"


def test_pick_ships_the_fastest_and_says_why():
    ms = lambda v: Figure(v, "ms", "p50 measured on host")  # noqa: E731
    assert pick("int8", {"int8": ms(0.30), "fp32": ms(0.20)})[0] == "fp32"  # x86: int8 slower, fp32 ships
    chosen, why = pick("int8", {"int8": ms(0.30), "fp32": ms(0.20)})
    assert "fp32 ships instead of int8" in why and "1.50x slower" in why
    a76 = lambda v: Figure(v, "instructions", "emulated cortex-a76 instructions")  # noqa: E731
    chosen, why = pick("int8", {"int8": a76(63e6), "fp32": a76(154e6)})
    assert chosen == "int8" and "63.00 M instructions" in why
    assert pick("int8", {"int8": ms(0.200), "fp32": ms(0.198)})[0] == "int8"  # within the tie margin
    chosen, why = pick("int8", {"int8": a76(63e6), "fp32": None})  # no figure: the declared precision, said so
    assert chosen == "int8" and "no figure for fp32" in why


def _rows(int8_results, fp32_results, check_passed=True):
    rows = [Artifact("student tflite fp32", "student_fp32.tflite", "tflite", "fp32"),
            Artifact("student tflite int8", "student_int8.tflite", "tflite", "int8",
                     extra={"check": {"passed": check_passed, "what": "parity", "allowed": False}}),
            Artifact("teacher tflite fp32", "teacher_fp32.tflite", "tflite", "fp32")]
    return rows, {"student_fp32.tflite": fp32_results, "student_int8.tflite": int8_results}


def _profile(rows, results):
    for a in rows:  # what the profile stage leaves: the primary latency and the others
        if a.extra.get("shipped") or a.extra.get("precision_candidate"):
            first, *rest = results[a.path]
            a.latency, a.extra["other_latencies"] = first, rest


def test_android_ships_int8_on_emulated_a76_figures_and_fp32_when_int8_is_slower():
    android = load_target("android")
    assert android.ships[0].candidates == ("fp32",)
    rows, res = _rows([HOST_STAND_IN, _emulated(63e6)], [{**HOST_STAND_IN, "p50_ms": 0.1}, _emulated(154e6)])
    mark_shipped(android, rows)
    assert rows[0].extra["precision_candidate"] and not rows[2].extra["precision_candidate"]  # never the teacher
    _profile(rows, res)
    notes = apply_precision_rule(android, rows)
    assert [a.path for a in rows if a.extra["shipped"]] == ["student_int8.tflite"]  # x86 says fp32; A76 says int8
    assert "int8 ships" in notes[0] and "emulated cortex-a76" in notes[0]
    rows, res = _rows([HOST_STAND_IN, _emulated(200e6)], [HOST_STAND_IN, _emulated(150e6)])
    mark_shipped(android, rows)
    _profile(rows, res)
    apply_precision_rule(android, rows)
    assert [a.path for a in rows if a.extra["shipped"]] == ["student_fp32.tflite"]


def test_a_failed_int8_is_no_candidate_and_host_targets_use_their_measurement():
    host = load_target("host")
    rows = [Artifact("student onnx fp32", "student_fp32.onnx", "onnx", "fp32"),
            Artifact("student onnx int8", "student_int8.onnx", "onnx", "int8")]
    mark_shipped(host, rows)
    _profile(rows, {"student_fp32.onnx": [{"kind": "measured", "p50_ms": 0.011, "target": "host"}],
                    "student_int8.onnx": [{"kind": "measured", "p50_ms": 0.031, "target": "host"}]})
    notes = apply_precision_rule(host, rows)
    assert rows[0].extra["shipped"] and not rows[1].extra["shipped"] and "2.82x slower" in notes[0]


def test_candidates_in_a_target_file_are_checked(tmp_path):
    text = (load_target("host").source and open(load_target("host").source).read())
    bad = tmp_path / "t.toml"
    bad.write_text(text.replace('candidates = ["fp32"]', 'candidates = ["int4"]'))
    with pytest.raises(EdgeKDError, match="candidates"):
        load_target(str(bad))
