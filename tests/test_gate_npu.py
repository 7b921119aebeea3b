"""NPU placement checks through edgekd.profile's Vela backend, and the A/B on TFLite files."""

import shutil
from pathlib import Path

import pytest

from edgekd.gate import TimingSettings, gate

try:  # helpers live beside the tests; works with or without tests/__init__.py
    from test_gate_models import onnx_matmul_chain
except ImportError:
    from tests.test_gate_models import onnx_matmul_chain

FIX = Path(__file__).parent / "fixtures" / "profile"  # tiny real converted models (profile engineer's fixtures)
INT8, FP32 = FIX / "tiny_int8.tflite", FIX / "tiny_fp32.tflite"

def _vela_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ethosu") is not None or shutil.which("vela") is not None


needs = pytest.mark.skipif(not (INT8.is_file() and FP32.is_file() and _vela_installed()), reason="fixtures or vela missing")


@needs
def test_float_candidate_falls_off_the_ethos_npu():
    r = gate(FP32, INT8, "ethos-u55-128", measure=False)
    share, fb = r.check("npu.share"), r.check("npu.fallback_ops")
    assert share.status == "fail" and share.baseline == 1.0 and share.candidate == 0.0
    assert fb.status == "fail" and "FULLY_CONNECTED" in fb.details["new"]
    assert r.check("io").status == "warn"  # int8 -> float32 I/O changes the app contract
    assert r.exit_code == 1


@needs
def test_same_int8_model_passes_npu_and_tflite_ab():
    r = gate(INT8, INT8, "ethos-u55-128", timing=TimingSettings(warmup=5, min_pairs=30, max_pairs=300, budget_s=0.5))
    assert r.passed, r.summary()
    assert r.check("npu.share").candidate == 1.0
    assert r.check("npu.cycles").status == "pass"  # Vela's static estimate repeats exactly
    assert r.check("npu.cycles").baseline == r.check("npu.cycles").candidate
    assert r.check("latency.ab").status in ("pass", "warn")
    assert "ai-edge-litert" in r.candidate["latency"]["runtime"]
    assert any("proxy for ethos-u55-128" in n for n in r.notes)


@needs
def test_npu_skipped_with_reason_for_onnx_on_vela(tmp_path):
    onnx_file = FIX / "tiny_fp32.onnx"
    r = gate(onnx_file, onnx_file, "ethos-u55-128", measure=False)
    skip = r.check("npu.placement")
    assert skip.status == "skip" and "not a .tflite" in skip.message


@pytest.mark.slow
def test_op_falling_off_the_qualcomm_htp_fails(tmp_path):
    """onnxruntime-qnn's HTP simulator places MatMul/Relu on the NPU but not Erf (~10 s per model here)."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime_qnn") is None:
        pytest.skip("onnxruntime-qnn not installed")
    base = onnx_matmul_chain(tmp_path / "base.onnx", dim=16, layers=1)
    cand = onnx_matmul_chain(tmp_path / "cand.onnx", dim=16, layers=1, tail_op="Erf")
    r = gate(cand, base, "qualcomm-htp", measure=False)
    share, fb = r.check("npu.share"), r.check("npu.fallback_ops")
    if share is None:  # the analysis could not run here: it says why instead
        pytest.skip(r.check("npu.placement").message)
    assert share.status == "fail" and share.baseline == 1.0 and share.candidate < 1.0 and share.kind == "simulated"
    assert fb.status == "fail" and fb.details["new"] == {"Erf": 1}
    assert r.exit_code == 1
