"""The decoder modality: a local causal language model (hf:DIR with GPT-2 / Llama / Qwen2 / Phi / GPT-NeoX
weights, or gguf:FILE) and the user's texts.

teacher -> student keeping a subset of its layers (teacher-initialised, first and last kept, tied embeddings
and tokenizer kept) -> token-level KD over the vocabulary + next-token CE on packed token blocks -> student/
(HF dir) -> onnx/ (optimum, KV cache; ORTModelForCausalLM loads and generates) -> onnx-int8/, onnx-int4/
(MatMulNBits weight-only) -> genai/ (onnxruntime-genai's model builder: genai_config.json, og.Generator) -> held-out perplexity, top-1 agreement and KL to the teacher, parity (logits and
greedy tokens) -> prefill time, decode tokens/s, peak memory. The order, shipping and report are
edgekd.pipeline's; the text modality's setup and stage helper are reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekd.core import Artifact
from edgekd.modalities.text import TextConfig, TextModality, _teacher_key


@dataclass
class DecoderConfig(TextConfig):
    intermediate_size: int | None = None  # narrower MLP (the most active neurons on the training text kept)
    temperature: float = 2.0
    weights: dict[str, float] = field(default_factory=dict)  # soft (KD), hard (next-token CE), cos; {"soft": 0}: CE only
    layer_loss: bool = False  # hidden-state cosine on mapped layers (optional for decoders)
    freeze_embeddings: bool = False  # tied embeddings are also the LM head: train them
    prompt_len: int = 32  # prefill length timed, and the prompts of the greedy continuations
    new_tokens: int = 16  # decode steps timed, and the length of each greedy continuation
    continuations: int = 3
    block_size: int = 32  # MatMulNBits quantization block
    # the tied LM head in the int4 file: its own int8 copy (default: the lower perplexity) or "shared", one int4 table
    # read by the embedding and the head (the smaller file; benchmarks/results/decoder_int4_options.json)
    int4_head: str = "int8"
    # the int4 body: "gptq" (asymmetric blocks, GPTQ on 16 x 128 training tokens: on SmolLM2's 10-layer student
    # 1.04x the fp32 file's perplexity with a shared int4 table where round to nearest gave 1.30x) or "rtn" (round to
    # nearest, symmetric: no calibration pass); benchmarks/results/decoder_int4_options.json
    int4_algo: str = "gptq"
    genai: str = "int4"  # onnxruntime-genai folder precision (int4 | fp32; "" for none)
    batch_size: int = 8


INT4_ALGOS = ("gptq", "rtn")


def decoder_key(teacher_path, gguf_file) -> dict[str, str]:
    from edgekd.core import sha256_file

    return {gguf_file: sha256_file(teacher_path / gguf_file)[:16]} if gguf_file else _teacher_key(teacher_path)


class DecoderModality(TextModality):
    kind = "decoder"

    def __init__(self, cfg: DecoderConfig):
        from edgekd.hf.export import HEADS

        if cfg.int4_head not in HEADS:  # before any training: the int4 stage comes last
            from edgekd.errors import UsageError

            raise UsageError(f"int4 head {cfg.int4_head!r}: want one of {', '.join(HEADS)}")
        if cfg.int4_algo not in INT4_ALGOS:
            from edgekd.errors import UsageError

            raise UsageError(f"int4 algorithm {cfg.int4_algo!r}: want one of {', '.join(INT4_ALGOS)}")
        super().__init__(cfg)

    def prepare(self, run, log) -> None:
        from edgekd.hf.gguf import gguf_note
        from edgekd.hf.teacher import load_hf_teacher
        from edgekd.hf.text_data import load_texts
        from edgekd.modalities.text import _data_key

        c = self.cfg
        self.run, self.say = run, log
        t = self.teacher = load_hf_teacher(c.teacher, max_length=c.max_length)
        if t.kind != "causal-lm":
            from edgekd.errors import EdgeKDError

            raise EdgeKDError(f"{c.teacher}: not a causal language model (detected {t.kind})")
        self.texts = load_texts(c.data, column=c.text_column, seed=c.seed, limit=c.train_limit)
        self.t_key = decoder_key(t.path, t.gguf_file)
        if t.gguf_file:
            self.notes.append(gguf_note(t.gguf_file))
        run.record_input("teacher", {"spec": str(c.teacher), "kind": t.kind, "files": self.t_key})
        run.record_input("data", {**self.texts.describe(), "key": _data_key(c.data)})
        self.test = self.texts.test.texts[:c.eval_samples]

    def distill(self):
        import transformers as tf

        from edgekd.modalities.decoder.distill import distill_stage

        self.d_res = distill_stage(self)
        self.student_key = self.d_res.artifacts[0].sha256
        return tf.AutoModelForCausalLM.from_pretrained(self.run.path("student"), local_files_only=True,
                                                       attn_implementation="eager").eval()

    def export(self, student) -> list[Artifact]:
        from edgekd.modalities.decoder.files import export_files

        return export_files(self, student)

    def evaluate(self, student, files: list[Artifact]) -> list[Artifact]:
        from edgekd.modalities.decoder.evaluate import evaluate_files

        return evaluate_files(self, student, files)

    def profile(self, rows: list[Artifact]) -> list[Artifact]:
        from edgekd.modalities.decoder.latency import latency_stage

        return latency_stage(self, rows)

    def stand_in(self, fmt: str, precision: str):
        if fmt == "tflite" and precision == "int8":
            return "fp32", ("The target asks for int8 TFLite; this decoder path ships the float fixed-window TFLite file "
                            "(no KV cache); onnx-int8/ and onnx-int4/ hold the weight-only quantized KV-cache models.")
        if fmt == "onnx" and precision == "int8":
            return "int8-weight-only", ("The target asks for int8 ONNX; decoders ship the int8 weight-only file "
                                        "(MatMulNBits: weights int8 in blocks, activations fp32).")
        return None

    def missing(self, fmt: str, precision: str) -> str:
        if fmt == "tflite":
            from edgekd.modalities.decoder.files import TFLITE_BLOCKER

            return f"No TFLite file was made for this decoder: {TFLITE_BLOCKER} onnx/, onnx-int8/ and onnx-int4/ hold the models."
        return f"No {precision} {fmt.upper()} file was made: nothing in {self.target.name}'s format is shipped."

    def describe(self, student, rows: list[Artifact]) -> dict[str, Any]:
        from edgekd.modalities.decoder.evaluate import describe

        return describe(self, rows)

    def title(self, report: dict[str, Any]) -> str:
        return f"# edgekd compress (decoder LM) — target `{report['target']['name']}`"

    def header_lines(self, report: dict[str, Any]) -> list[str]:
        t, s, d, p = report["teacher"], report["student"], report["data"], report["perplexity"]
        return [f"- teacher: `{t['spec']}` ({t['layers']} layers, {t['params']:,} params)" + (" — GGUF, dequantised" if t.get("gguf") else ""),
                f"- student: layers {s['layers']}, {s['params']:,} params ({s['params_ratio']}x fewer)",
                f"- data: {d['name']} ({d['train']} train / {d['test']} test texts)",
                "- held-out perplexity: " + ", ".join(f"{k} {v:.2f}" for k, v in p.items()),
                f"- accuracy column: {report['accuracy_metric']}"]
