"""The decoder modality's files: optimum ONNX with KV cache, int8 and int4 weight-only ONNX (MatMulNBits), an
onnxruntime-genai model folder (genai.py), and the teacher's ONNX (the decode speed-up's reference; a GGUF teacher
is saved as an HF directory first)."""

from __future__ import annotations

from edgekd.core import Artifact
from edgekd.errors import EdgeKDError

GENAI_STAGE = "decoder-export-genai"

LOADER = "optimum.onnxruntime.ORTModelForCausalLM.from_pretrained(dir)"
TFLITE_BLOCKER = ("litert-torch 0.10's KV-cache exporter for Hugging Face decoders (litert_torch.generative.export_hf) "
                  "needs a newer transformers than this stack's 4.57 (it imports transformers.cache_utils."
                  "LinearAttentionCacheLayerMixin), and optimum-onnx 0.1 needs transformers < 4.58, so the TFLite file is "
                  "a fixed window without KV cache (litert_torch.convert): every generated token reruns the window.")
TFLITE_NOTE = "student.tflite is a fixed-window decoder (float, no KV cache): " + TFLITE_BLOCKER.split(", so ")[0] + "."


def _quantized(m, bits: int, onnx: Artifact) -> Artifact:
    c = m.cfg
    head = c.int4_head if bits == 4 else "int8"
    gptq = bits == 4 and c.int4_algo == "gptq"
    key = {"onnx": onnx.sha256, "block": c.block_size, "head": head} | ({"algo": "gptq"} if gptq else {})
    return m.stage(f"decoder-quantize-int{bits}", key, lambda: _weight_only(m, bits, head, gptq))


GPTQ_BLOCKS, GPTQ_LENGTH = 16, 128  # 2 048 training tokens for GPTQ's Hessians


def _calibration(m):
    """GPTQ's prefills of training text: full 128-token blocks, else full blocks of the run's max_length; None when
    the training text cannot fill one (the int4 file then rounds to nearest, and its scheme says so)."""
    from edgekd.hf.gptq import PrefillCalibration, calibration_blocks

    tok, texts = m.teacher.tokenizer, m.texts.train.texts
    blocks = (calibration_blocks(tok, texts, GPTQ_BLOCKS, GPTQ_LENGTH)
              or calibration_blocks(tok, texts, GPTQ_BLOCKS, m.cfg.max_length))
    return PrefillCalibration(m.run.path("onnx") / "model.onnx", blocks) if blocks else None


def _weight_only(m, bits: int, head: str, gptq: bool) -> Artifact:
    from edgekd.hf.export import quantize_onnx_weight_only

    c, run = m.cfg, m.run
    calib = _calibration(m) if gptq else None

    def quantize(cal):
        return quantize_onnx_weight_only(run.path("onnx"), run.path(f"onnx-int{bits}"), bits=bits, head=head,
                                         block_size=c.block_size, symmetric=cal is None,
                                         algo="gptq" if cal else "default", calibration=cal)

    fallback = ""
    try:
        path = quantize(calib)
    except EdgeKDError as exc:  # e.g. ORT's GPTQ packing needs an even number of blocks per weight row
        if calib is None:
            raise
        fallback, calib = f" (GPTQ failed: {exc}; rounded to nearest instead)", None
        m.notes.append(f"int{bits} file: GPTQ failed ({exc}), so its weights were rounded to nearest.")
        path = quantize(None)
    how = (f"GPTQ on {len(calib.blocks)} blocks of training text, asymmetric" if calib else "symmetric") + \
        f" blocks of {c.block_size}{fallback}"
    tied = {"int8": "given its own int8 MatMulNBits weight", "shared": "sharing the table's int4 weight (one copy)",
            "separate": "given its own int4 MatMulNBits weight"}.get(head, head)
    return Artifact(f"student-onnx-int{bits}", str(path), "onnx", f"int{bits}-weight-only",
                    extra={"optimum_dir": f"onnx-int{bits}", "loader": LOADER,
                           "scheme": f"onnxruntime MatMulNBits, int{bits} weights, {how}, activations fp32"
                                     + (", embedding table GatherBlockQuantized int4, a tied LM head read through a "
                                        f"Transpose of the table {tied}" if bits == 4 else "")})


def _teacher_dir(m):
    """The teacher as an HF directory optimum can export: as given, or the dequantised GGUF weights saved."""
    t = m.teacher
    if not t.gguf_file:
        return t.path
    from edgekd.hf.export import save_student_dir

    out = m.run.path("teacher-hf")
    if not (out / "config.json").is_file():
        save_student_dir(t.model, t, out)
    return out


def export_files(m, student) -> list[Artifact]:
    from edgekd.hf.export import export_optimum

    c, run, key, task = m.cfg, m.run, m.student_key, m.teacher.export_task
    onnx = m.stage("decoder-export-onnx", {"student": key, "task": task}, lambda: Artifact(
        "student-onnx", str(export_optimum(run.path("student"), run.path("onnx"), task)), "onnx", "fp32",
        extra={"optimum_dir": "onnx", "loader": LOADER, "kv_cache": True}))
    files = [onnx, _quantized(m, 8, onnx), _quantized(m, 4, onnx)]
    if c.compare_teacher:
        files.append(m.stage("decoder-teacher-onnx", {"teacher": m.t_key, "task": task}, lambda: Artifact(
            "teacher-onnx", str(export_optimum(_teacher_dir(m), run.path("teacher-onnx"), task)), "onnx", "fp32",
            extra={"optimum_dir": "teacher-onnx", "reference": True})))
    if c.tflite:
        from edgekd.hf.export import export_tflite
        from edgekd.modalities.text import TFLITE_STAGE

        tfl = m.stage(TFLITE_STAGE, {"student": key, "seq_len": c.seq_len}, lambda: Artifact(
            "student-tflite", str(export_tflite(student, m.teacher, run.path("student.tflite"), seq_len=c.seq_len)),
            "tflite", "fp32", extra={"input": f"int32 input_ids + attention_mask, shape (1, {c.seq_len}), right-padded",
                                     "output": "logits (1, seq_len, vocab)", "kv_cache": False}))
        if tfl is not None:
            files.insert(3, tfl)
            m.notes.append(TFLITE_NOTE)
    if c.genai:
        g = _genai(m)
        if g is not None:
            files.append(g)
    return files


def _genai(m) -> Artifact | None:
    """genai/: the student through onnxruntime-genai's model builder; a one-line note where it cannot be made."""
    from edgekd.modalities.decoder import genai

    c, run = m.cfg, m.run
    if why := genai.blocker(run.path("student")):
        m.notes.append(f"No onnxruntime-genai folder: {why}.")
        return None

    def build() -> Artifact:
        out = genai.build_genai(run.path("student"), run.path("genai"), c.genai)
        info = genai.describe_folder(out)
        level = {1: "fp32", 2: "fp16", 3: "bf16", 4: "int8"}.get(info.get("accuracy_level"), "unset")
        scheme = (f"the builder's int{info['bits']} MatMulNBits, blocks of {info.get('block_size')}, accuracy level "
                  f"{info.get('accuracy_level')} ({level} activations in the MatMul)" if info.get("bits") else "fp32")
        return Artifact("student-genai", str(out), "onnx-genai", "int4-weight-only" if c.genai == "int4" else "fp32",
                        extra={"genai_dir": "genai", "loader": genai.LOADER, "builder": genai.builder_version(),
                               "execution_provider": "cpu", "kv_cache": True, "scheme": scheme, **info})

    try:
        return m.stage(GENAI_STAGE, {"student": m.student_key, "precision": c.genai, "builder": genai.builder_version()},
                       build)
    except EdgeKDError as exc:  # an extra runtime's folder: its failure is the report's note, not the run's end
        m.notes.append(f"No onnxruntime-genai folder: {exc}")
        run.manifest["stages"][GENAI_STAGE]["status"] = "failed"
        run.save()
        return None
