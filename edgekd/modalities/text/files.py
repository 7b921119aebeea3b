"""The text modality's files: optimum ONNX, dynamic-int8 ONNX, fixed-shape TFLite, and the teacher's ONNX."""

from __future__ import annotations

from edgekd.core import Artifact
from edgekd.modalities.text import TFLITE_STAGE


def export_files(m, student) -> list[Artifact]:
    """Student files first, the teacher's ONNX reference (for the speed-up) last."""
    from edgekd.hf.export import export_optimum, export_tflite, quantize_onnx_int8

    c, run, key, task = m.cfg, m.run, m.student_key, m.teacher.export_task
    onnx = m.stage("hf-export-onnx", {"student": key, "task": task}, lambda: Artifact(
        "student-onnx", str(export_optimum(run.path("student"), run.path("onnx"), task)), "onnx", "fp32",
        extra={"optimum_dir": "onnx", "loader": "optimum.onnxruntime.ORTModel*.from_pretrained(dir)"}))
    files = [onnx, m.stage("hf-quantize-int8", {"onnx": onnx.sha256}, lambda: Artifact(
        "student-onnx-int8", str(quantize_onnx_int8(run.path("onnx"), run.path("onnx-int8"))), "onnx", "dynamic-int8",
        extra={"optimum_dir": "onnx-int8", "scheme": "onnxruntime quantize_dynamic, int8 weights per channel, MatMul/Gemm"}))]
    if c.tflite:
        tfl = m.stage(TFLITE_STAGE, {"student": key, "seq_len": c.seq_len}, lambda: Artifact(
            "student-tflite", str(export_tflite(student, m.teacher, run.path("student.tflite"), seq_len=c.seq_len)),
            "tflite", "fp32", extra={"input": f"int32 input_ids + attention_mask, shape (1, {c.seq_len})",
                                     "output": "sentence embedding" if m.teacher.kind == "embedding" else "logits"}))
        files += [tfl] if tfl is not None else []
    if c.compare_teacher:
        files.append(m.stage("hf-teacher-onnx", {"teacher": m.t_key, "task": task}, lambda: Artifact(
            "teacher-onnx", str(export_optimum(m.teacher_path, run.path("teacher-onnx"), task)), "onnx", "fp32",
            extra={"optimum_dir": "teacher-onnx", "reference": True})))
    return files
