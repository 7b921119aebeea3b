"""The text modality: a local Hugging Face model (hf:PATH) and the user's texts.

teacher dir -> layer-selected (or narrower) student, distilled on the texts -> student/ (HF dir) -> onnx/
(optimum ORTModel-loadable) -> onnx-int8/ (ONNX Runtime dynamic int8) -> student.tflite (litert-torch, where it
converts) -> agreement with the teacher + parity -> latency. The order, what ships and the report are
edgekd.pipeline's; this module supplies each step, built from the parts in edgekd.hf.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from edgekd.core import Artifact, StageResult, sha256_file
from edgekd.errors import EdgeKDError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json")
DEFAULT_DATA = "fortunes"  # Debian `fortunes`: ~15 000 real English quotations, installed, never downloaded
TFLITE_STAGE = "hf-export-tflite"


@dataclass
class TextConfig:
    teacher: str | Path
    data: str | Path | None = None
    target: str = "android"
    output: str | Path = "runs/hf"
    epochs: int = 1
    seed: int = 0
    layers: str | int | Sequence[int] | None = None
    hidden_size: int | None = None
    text_column: str = "text"
    label_column: str | None = None
    max_length: int = 128
    seq_len: int = 128
    batch_size: int = 32
    lr: float = 5e-4
    time_budget_s: float | None = None
    train_limit: int | None = None
    eval_samples: int = 256
    extra_text: str | Path | None = None  # unlabeled text for distillation only (the teacher labels it)
    layer_loss: bool = True
    freeze_embeddings: bool = True
    augment: float = 0.0
    tflite: bool = True
    compare_teacher: bool = True
    threads: int | None = None
    runs: int = 20
    force: bool = False


def _teacher_key(path: Path) -> dict[str, str]:
    return {f: sha256_file(path / f)[:16] for f in WEIGHT_FILES if (path / f).is_file()}


def _data_key(data: str) -> str:
    p = Path(data)
    return sha256_file(p)[:16] if p.is_file() else str(data)


class TextModality:
    kind = "hf"
    pipeline = "hf-compress"

    def __init__(self, cfg: TextConfig):
        self.cfg = cfg
        self.cfg.data = str(cfg.data) if cfg.data else DEFAULT_DATA
        self.notes: list[str] = []

    # ---- setup
    def check(self) -> None:
        import torch

        from edgekd.hf.teacher import parse_hf_spec
        from edgekd.targets import load_target

        c = self.cfg
        if c.epochs < 1 or c.batch_size < 1 or c.eval_samples < 2 or c.seq_len < 8 or c.max_length < 8:
            raise EdgeKDError("need epochs >= 1, batch_size >= 1, eval_samples >= 2, seq_len and max_length >= 8")
        self.target = load_target(c.target)
        self.threads = c.threads or max(1, min(self.target.threads, os.cpu_count() or 1))
        torch.set_num_threads(self.threads)
        self.teacher_path = parse_hf_spec(c.teacher)

    def prepare(self, run, log: Callable[[str], None]) -> None:
        from edgekd.hf.teacher import load_hf_teacher
        from edgekd.hf.text_data import load_texts

        c = self.cfg
        self.run, self.say = run, log
        teacher = self.teacher = load_hf_teacher(self.teacher_path, max_length=c.max_length)
        label_names = None
        if teacher.kind == "classification" and c.label_column:
            id2label = getattr(teacher.config, "id2label", None) or {}
            label_names = [str(id2label[i]) for i in sorted(id2label)] or None
        self.texts = load_texts(c.data, column=c.text_column, label_column=c.label_column, seed=c.seed,
                                limit=c.train_limit, label_names=label_names)
        self.t_key = _teacher_key(self.teacher_path)
        run.record_input("teacher", {"spec": f"hf:{self.teacher_path}", "kind": teacher.kind, "files": self.t_key})
        run.record_input("data", {**self.texts.describe(), "key": _data_key(c.data)})
        if not c.extra_text:
            run.record_input("extra_text", None)  # drop one left by an earlier run of this directory
        self.test = self.texts.test.texts[:c.eval_samples]
        self.test_labels = self.texts.test.labels[:c.eval_samples] if self.texts.test.labels else None
        self.kw = {"pooling": teacher.pooling, "normalize": teacher.normalize}

    # ---- stages
    def distill(self):
        from edgekd.modalities.text.distill import distill_stage

        self.d_res = distill_stage(self)
        self.student_key = self.d_res.artifacts[0].sha256
        return type(self.teacher.model).from_pretrained(self.run.path("student"), local_files_only=True,
                                                        attn_implementation="eager").eval()

    def refine(self, student):
        return student  # no pruning stage for text models yet

    def export(self, student) -> list[Artifact]:
        from edgekd.modalities.text.files import export_files

        return export_files(self, student)

    def evaluate(self, student, files: list[Artifact]) -> list[Artifact]:
        from edgekd.modalities.text.evaluate import evaluate_files

        return evaluate_files(self, student, files)

    def profile(self, rows: list[Artifact]) -> list[Artifact]:
        from edgekd.modalities.text.latency import latency_stage

        return latency_stage(self, rows)

    # ---- shipping and report
    def stand_in(self, fmt: str, precision: str):
        """Static int8 of transformer activations loses agreement: int8 TFLite becomes the float file and int8
        ONNX the dynamic-int8 one (weights int8, activations float)."""
        if precision != "int8":
            return None
        if fmt == "tflite":
            return "fp32", ("The target asks for int8 TFLite; this HF path ships the float TFLite file (static int8 "
                            "of transformer activations loses agreement); onnx-int8/ holds the dynamic-int8 ONNX model.")
        return "dynamic-int8", None

    def missing(self, fmt: str, precision: str) -> str:
        if fmt == "tflite":
            return (f"No TFLite file was made (--no-tflite, or the conversion failed): nothing in {self.target.name}'s "
                    "format is shipped; onnx/ and onnx-int8/ hold the ONNX models.")
        return f"No {precision} {fmt.upper()} file was made: nothing in {self.target.name}'s format is shipped."

    def describe(self, student, rows: list[Artifact]) -> dict[str, Any]:
        from edgekd.hf import evaluate as ev

        m, c, t = self.d_res.metrics, self.cfg, self.teacher
        t_lat = next((a.latency or {} for a in rows if a.name == "teacher-onnx"), {}).get("p50_ms")
        speed = {a.name: round(t_lat / a.latency["p50_ms"], 3) for a in rows
                 if t_lat and a.latency and a.format == "onnx" and a.name != "teacher-onnx"}
        return {
            "data": self.texts.describe(),
            "teacher": {"spec": f"hf:{self.teacher_path}", "kind": t.kind, "layers": t.num_layers,
                        "params": m["student"]["teacher_params"], "pooling": t.pooling},
            "student": {**m["student"], "params_ratio": round(m["student"]["teacher_params"] / m["student"]["params"], 3)},
            "distill": {"epochs": c.epochs, "seed": c.seed,
                        **{k: m["train"][k] for k in ("steps", "seconds", "stopped", "weights")},
                        "val_agreement_before": m["val_before"]["agreement"],
                        "val_agreement_after": m["val_after"]["agreement"], "metric": m["val_after"]["metric"]},
            "accuracy_metric": ev.METRIC[t.kind] + " on held-out texts, x100 (agreement with the teacher, not task accuracy)",
            "accuracy_column": "agreement x100",
            "speedup_vs_teacher_onnx": speed,
        }

    def title(self, report: dict[str, Any]) -> str:
        return f"# edgekd compress (Hugging Face) — target `{report['target']['name']}`"

    def header_lines(self, report: dict[str, Any]) -> list[str]:
        t, s, d = report["teacher"], report["student"], report["data"]
        return [f"- teacher: `{t['spec']}` ({t['kind']}, {t['layers']} layers, {t['params']:,} params)",
                f"- student: layers {s['layers']}, hidden {s['hidden_size']}, {s['params']:,} params",
                f"- data: {d['name']} ({d['train']} train / {d['test']} test texts)",
                f"- accuracy column: {report['accuracy_metric']}"]

    # ---- shared by the stage modules
    def stage(self, name: str, settings: dict, fn: Callable[[], Artifact]) -> Artifact | None:
        """One file-making stage; TFLite is shipped "where it converts": its failure becomes a note."""
        try:
            res, _ = self.run.run_stage(name, settings, lambda: StageResult([fn()]), force=self.cfg.force)
            return res.artifacts[0]
        except EdgeKDError as exc:
            if name != TFLITE_STAGE:
                raise
            self.notes.append(f"TFLite export skipped: {exc}")
            self.run.manifest["stages"][name]["status"] = "failed"
            self.run.save()
            return None
