"""What `edgekd compress --target T` shows per artifact: every figure, labelled measured / simulated /
estimated with where; the compress profile stage for an offline NPU target; emulate="auto"."""

import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgekd.core import Artifact, RunDir, sha256_file
from edgekd.errors import EdgeKDError
from edgekd.pipeline.report import artifact_rows, budget_lines, latency_label, result_summary, write_reports
from edgekd.profile import profile
from edgekd.targets import load_target

FIX = Path(__file__).parent / "fixtures" / "profile"
HAVE_VELA = (Path(sys.executable).parent / "vela").exists() or shutil.which("vela") is not None

HTP = {"kind": "simulated", "backend": "qnn-htp", "target": "qualcomm-htp", "runtime": "onnxruntime-qnn", "threads": 1,
       "p50_ms": None, "where": "Qualcomm HTP v75 simulator ...", "cycles_total": 172896.0, "compute_nodes_on_htp": 8,
       "compute_nodes_on_cpu": 1, "agreement": {"vs_cpu_same_qdq_model": {"max_abs_diff": 0.046, "top1_agreement": 1.0}, "inputs": "8 sample"},
       "context_binary_bytes": 83456}
VELA = {"kind": "estimated", "backend": "vela", "target": "ethos-u55-128", "delegates": ["ethos-u55-128"],
        "p50_ms": 0.0531, "where": "Vela ...", "cycles_total": 26536.0, "npu_ops": 9, "cpu_ops": 0, "sram_used_bytes": 410}
FALLBACK = {"kind": "measured", "backend": "host-fallback", "target": "android", "runtime": "ai-edge-litert",
            "threads": 2, "runs": 50, "p50_ms": 0.006, "p99_ms": 0.008, "init_ms": 16.1, "peak_rss_mb": 47.1,
            "where": "host x86_64 ...; no android device reachable, measured on this host, NOT the device (adb ...)"}
QEMU = {"kind": "estimated", "backend": "qemu-emulation", "target": "android", "qemu_cpu": "cortex-a76",
        "p50_ms": 0.005, "emulated_instructions": 18800, "where": "estimated from emulated instructions ..."}


def test_each_result_says_kind_where_and_its_own_figures():
    assert result_summary(HTP) == ("simulated, QNN HTP simulator: 172,896 cycles, 8/9 compute nodes on the HTP, "
                                   "top-1 agreement with CPU 100% on 8 inputs (max diff 0.046), context binary 81.5 KiB")
    assert result_summary(VELA).startswith("estimated, Vela model of ethos-u55-128: p50 0.053 ms, 26,536 cycles, "
                                           "9 NPU / 0 CPU ops, SRAM 0.4 KiB")
    fb = result_summary(FALLBACK)
    assert fb.startswith("measured, this host, NOT the android device (none reachable), ai-edge-litert 2 thr")
    assert "p99 0.008 ms" in fb and "peak RSS 47.1 MB" in fb
    assert result_summary(QEMU) == ("estimated, qemu cortex-a76 instruction count: p50 0.005 ms, "
                                    "18,800 aarch64 instructions/inference")
    assert "unavailable: no OpenCL" in result_summary({"kind": "measured", "backend": "adb-gpu", "available": False,
                                                        "error": "no OpenCL", "target": "android"})
    assert latency_label(HTP).endswith("— 172,896 cycles, 8/9 compute nodes on the HTP, top-1 agreement with CPU "
                                       "100% on 8 inputs (max diff 0.046), context binary 81.5 KiB")


def test_artifact_row_lists_every_result_and_budget_rows(tmp_path):
    a = Artifact("student tflite int8", "student_int8.tflite", "tflite", "int8", accuracy=80.0, size_bytes=36000,
                 latency=FALLBACK, extra={"shipped": True, "other_latencies": [QEMU],
                                          "compiled_files": ["npu/x_vela.tflite"],
                                          "budgets": [{"budget": "latency_ms", "limit": 1.0, "value": 0.006,
                                                       "status": "skip", "backend": "host-fallback",
                                                       "kind": "measured", "why": "measured on the host, not the device"}]})
    row = artifact_rows([a])[0]
    assert row[3] == "0.006" and "NOT the android device" in row[5]
    assert "; also estimated, qemu cortex-a76 instruction count: p50 0.005 ms" in row[5]
    assert budget_lines({}, [a]) == ["student tflite int8: latency_ms 0.006 vs limit 1 — SKIP (skipped: measured on "
                                     "the host, not the device) (measured, host-fallback)"]
    run = RunDir(tmp_path)
    report = {"target": {"name": "android"}, "data": {"name": "digits", "test": 360},
              "teacher": {"spec": "t", "macs": 1, "params": 1}, "student": {"spec": "s", "macs": 1, "params": 1},
              "distill": {}, "budgets": []}
    write_reports(run, report, [a])
    md = (tmp_path / "report.md").read_text()
    assert "also p50 0.005 ms, estimated:" in md and "compiled for the target: `npu/x_vela.tflite`" in md
    assert "## Budgets" in md and "SKIP" in md


@pytest.mark.skipif(not HAVE_VELA, reason="ethos-u-vela not installed")
def test_compress_profile_stage_on_an_npu_target_keeps_compiled_file_and_host_figure(tmp_path):
    from edgekd.modalities.classifier.stages import profile_stage
    from edgekd.pipeline.shipping import mark_shipped

    run = RunDir(tmp_path / "run")
    shutil.copy(FIX / "tiny_int8.tflite", run.path("student_int8.tflite"))
    shutil.copy(FIX / "tiny_fp32.onnx", run.path("student_fp32.onnx"))
    arts = [Artifact("student tflite int8", "student_int8.tflite", "tflite", "int8",
                     sha256=sha256_file(run.path("student_int8.tflite")),
                     extra={"other_latencies": ["stale, from an earlier run for another target"]}),
            Artifact("student onnx fp32", "student_fp32.onnx", "onnx", "fp32", sha256=sha256_file(run.path("student_fp32.onnx")))]
    x = np.load(FIX / "digits_sample.npy")
    ctx = SimpleNamespace(cfg=SimpleNamespace(runs=3, threads=1, force=False), run=run, target=load_target("ethos-u55-128"),
                          data=SimpleNamespace(test=SimpleNamespace(x=x)), log=lambda m: None)
    mark_shipped(ctx.target, arts)  # the pipeline decides what ships before profiling
    out = profile_stage(ctx, arts)
    shipped, ref = out
    assert shipped.extra["shipped"] and shipped.latency["kind"] == "estimated" and shipped.latency["target"] == "ethos-u55-128"
    others = shipped.extra["other_latencies"]
    assert [o["backend"] for o in others] == ["host"] and others[0]["kind"] == "measured" and others[0]["target"] == "host"
    assert shipped.extra["compiled_files"] == ["npu/student_int8_vela.tflite"]
    assert (run.root / shipped.extra["compiled_files"][0]).is_file()
    assert not ref.extra["shipped"] and ref.latency["backend"] == "host" and "other_latencies" not in ref.extra


def test_emulate_auto_skips_quietly_and_turns_failures_into_notes(monkeypatch):
    r = profile(FIX / "tiny_int8.tflite", "host", runs=2, warmup=0, emulate="auto")  # host has no [emulation]
    assert [x["backend"] for x in r.results] == ["host"] and not r.notes
    import edgekd.emulate
    import edgekd.profile.backends.emulation as emulation

    def broken(*a, **k):
        raise EdgeKDError("ARM emulation environment not found")

    monkeypatch.setattr(emulation, "_arm_env_ready", lambda: True)
    monkeypatch.setattr(edgekd.emulate, "emulate_profile", broken)
    monkeypatch.setenv("PATH", "/nonexistent")  # no adb: the android figure is a labelled host measurement
    r = profile(FIX / "tiny_int8.tflite", "android", runs=2, warmup=0, emulate="auto")
    assert [x["backend"] for x in r.results] == ["host-fallback"]
    assert any("ARM emulation estimate skipped: ARM emulation environment not found" in n for n in r.notes)
    with pytest.raises(EdgeKDError, match="environment not found"):
        profile(FIX / "tiny_int8.tflite", "android", runs=2, warmup=0, emulate=True)
