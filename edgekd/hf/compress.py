"""`compress_hf`: DistilBERT-style compression of a local Hugging Face model into one run directory.

teacher dir -> layer-selected (or narrower) student, distilled on the user's text -> student/ (HF dir)
-> onnx/ (optimum ORTModel-loadable) -> onnx-int8/ (ONNX Runtime dynamic int8) -> student.tflite
(litert-torch, where it converts) -> agreement with the teacher + parity + latency -> report.json/md.
Every stage is recorded in manifest.json and skipped on a rerun when nothing it depends on changed.
"""

from __future__ import annotations

import json as _json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from edgekd.core import Artifact, RunDir, StageResult, atomic_write_text, sha256_file
from edgekd.errors import EdgeKDError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json")


def _teacher_key(path: Path) -> dict[str, str]:
    return {f: sha256_file(path / f)[:16] for f in WEIGHT_FILES if (path / f).is_file()}


def _data_key(data: str) -> str:
    p = Path(data)
    return sha256_file(p)[:16] if p.is_file() else str(data)


DEFAULT_DATA = "fortunes"  # Debian `fortunes`: ~15 000 real English quotations, installed, never downloaded


def compress_hf(teacher_dir: str | Path, *, data: str | Path | None = None, target: str = "android", output: str | Path = "runs/hf",
                epochs: int = 1, seed: int = 0, layers: str | int | Sequence[int] | None = None,
                hidden_size: int | None = None, text_column: str = "text", label_column: str | None = None,
                max_length: int = 128, seq_len: int = 128, batch_size: int = 32, lr: float = 5e-4,
                time_budget_s: float | None = None, train_limit: int | None = None, eval_samples: int = 256,
                extra_text: str | Path | None = None, layer_loss: bool = True, freeze_embeddings: bool = True,
                augment: float = 0.0,
                tflite: bool = True, compare_teacher: bool = True, threads: int | None = None, runs: int = 20,
                force: bool = False, json: bool = False, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Distil, export and measure; returns the report dict (also written to OUTPUT/report.json).

    Progress goes to stderr, and so does what converters print (litert-torch writes its progress to
    stdout), keeping stdout clean for `--json`.
    """
    import contextlib

    args = {k: v for k, v in locals().items() if k not in ("teacher_dir", "contextlib")}
    with contextlib.redirect_stdout(sys.stderr):
        return _compress_hf(teacher_dir, **args)


def _compress_hf(teacher_dir, *, data, target, output, epochs, seed, layers, hidden_size, text_column, label_column,
                 max_length, seq_len, batch_size, lr, time_budget_s, train_limit, eval_samples, extra_text,
                 layer_loss, freeze_embeddings, augment, tflite,
                 compare_teacher, threads, runs, force, json, log) -> dict[str, Any]:
    import torch

    from edgekd.hf import evaluate as ev
    from edgekd.hf.export import export_optimum, export_tflite, quantize_onnx_int8, save_student_dir
    from edgekd.hf.student import derive_hf_student, layer_targets
    from edgekd.hf.teacher import load_hf_teacher, parse_hf_spec
    from edgekd.hf.text_data import load_texts, read_texts
    from edgekd.hf.train import TrainConfig, distill_hf
    from edgekd.targets import load_target

    t_start = time.perf_counter()
    data = str(data) if data else DEFAULT_DATA
    say = log or (lambda m: print(f"[edgekd hf] {m}", file=sys.stderr, flush=True))
    if epochs < 1 or batch_size < 1 or eval_samples < 2 or seq_len < 8 or max_length < 8:
        raise EdgeKDError("need epochs >= 1, batch_size >= 1, eval_samples >= 2, seq_len and max_length >= 8")
    tgt = load_target(target)
    threads = threads or max(1, min(tgt.threads, os.cpu_count() or 1))
    torch.set_num_threads(threads)
    teacher_path = parse_hf_spec(teacher_dir)
    run = RunDir(output, pipeline="hf-compress")
    teacher = load_hf_teacher(teacher_path, max_length=max_length)
    label_names = None
    if teacher.kind == "classification" and label_column:
        id2label = getattr(teacher.config, "id2label", None) or {}
        label_names = [str(id2label[i]) for i in sorted(id2label)] or None
    td = load_texts(data, column=text_column, label_column=label_column, seed=seed, limit=train_limit,
                    label_names=label_names)
    t_key = _teacher_key(teacher_path)
    run.record_input("teacher", {"spec": f"hf:{teacher_path}", "kind": teacher.kind, "files": t_key})
    run.record_input("data", {**td.describe(), "key": _data_key(str(data))})
    if not extra_text:
        run.record_input("extra_text", None)  # drop one left by an earlier run of this directory
    test = td.test.texts[:eval_samples]
    test_labels = td.test.labels[:eval_samples] if td.test.labels else None
    val = td.val.texts[:eval_samples]
    kw = {"pooling": teacher.pooling, "normalize": teacher.normalize}
    notes: list[str] = []

    # ---- distill
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length, seed=seed,
                      time_budget_s=time_budget_s, freeze_embeddings=freeze_embeddings, augment=augment)
    d_settings = {"teacher": t_key, "data": _data_key(str(data)), "column": text_column, "labels": label_column,
                  "extra_text": _data_key(str(extra_text)) if extra_text else None, "layer_loss": layer_loss,
                  "layers": str(layers), "hidden_size": hidden_size, "train": {**cfg.__dict__}, "limit": train_limit}

    def run_distill() -> StageResult:
        student, info = derive_hf_student(teacher, layers=layers, hidden_size=hidden_size, seed=seed)
        say(f"student: layers {info['layers']} of {info['teacher_layers']}, hidden {info['hidden_size']}, "
            f"{info['params']:,} params (teacher {info['teacher_params']:,})")
        vb = ev.eval_batches(teacher, val, max_length=max_length, seed=seed)
        t_val = ev.collect(ev.torch_encoder(teacher.model, teacher.kind, **kw), vb, teacher.kind)
        before = ev.agreement(teacher.kind, ev.collect(ev.torch_encoder(student, teacher.kind, **kw), vb, teacher.kind), t_val)
        say(f"untrained student val agreement {before['agreement']:.4f} ({before['metric']}); training on "
            f"{len(td.train)} texts, {epochs} epoch(s)" + (f", budget {time_budget_s:.0f} s" if time_budget_s else ""))
        # unlabeled text for distillation only (the teacher labels it); held-out scoring stays on `data`.
        # Read here, not up front: a rerun that reuses this stage never needs it
        extra = read_texts(extra_text, column=text_column)[0] if extra_text else []
        if extra_text:
            run.record_input("extra_text", {"spec": str(extra_text), "texts": len(extra),
                                            "key": _data_key(str(extra_text))})
        if layer_loss and hidden_size in (None, teacher.hidden_size):  # narrower students have no layer map
            cfg.layer_targets = layer_targets(info["layers"], teacher.num_layers)
        labels = td.train.labels + [None] * len(extra) if td.train.labels is not None else None
        hist = distill_hf(teacher, student, td.train.texts + extra, labels=labels, cfg=cfg, log=say)
        after = ev.agreement(teacher.kind, ev.collect(ev.torch_encoder(student, teacher.kind, **kw), vb, teacher.kind), t_val)
        say(f"distilled student val agreement {after['agreement']:.4f} after {hist['steps']} steps, {hist['seconds']} s")
        save_student_dir(student, teacher, run.path("student"))
        return StageResult([Artifact("student", "student/model.safetensors", "pytorch", "fp32", extra={"hf_dir": "student"})],
                           {"student": info, "train": hist, "val_before": before, "val_after": after})

    d_res, _ = run.run_stage("hf-distill", d_settings, run_distill, force=force)
    student_key = d_res.artifacts[0].sha256
    student = type(teacher.model).from_pretrained(run.path("student"), local_files_only=True,
                                                  attn_implementation="eager").eval()

    # ---- exports
    artifacts: list[Artifact] = []

    def stage(name: str, settings: dict, fn: Callable[[], Artifact]) -> Artifact | None:
        try:
            res, _ = run.run_stage(name, settings, lambda: StageResult([fn()]), force=force)
            return res.artifacts[0]
        except EdgeKDError as exc:
            if name == "hf-export-tflite":  # TFLite is shipped "where it converts": say why not, go on
                notes.append(f"TFLite export skipped: {exc}")
                run.manifest["stages"][name]["status"] = "failed"
                run.save()
                return None
            raise

    task = teacher.export_task
    onnx = stage("hf-export-onnx", {"student": student_key, "task": task}, lambda: Artifact(
        "student-onnx", str(export_optimum(run.path("student"), run.path("onnx"), task)), "onnx", "fp32",
        extra={"optimum_dir": "onnx", "loader": "optimum.onnxruntime.ORTModel*.from_pretrained(dir)"}))
    artifacts.append(onnx)
    artifacts.append(stage("hf-quantize-int8", {"onnx": onnx.sha256}, lambda: Artifact(
        "student-onnx-int8", str(quantize_onnx_int8(run.path("onnx"), run.path("onnx-int8"))), "onnx", "dynamic-int8",
        extra={"optimum_dir": "onnx-int8", "scheme": "onnxruntime quantize_dynamic, int8 weights per channel, MatMul/Gemm"})))
    if tflite:
        tfl = stage("hf-export-tflite", {"student": student_key, "seq_len": seq_len}, lambda: Artifact(
            "student-tflite", str(export_tflite(student, teacher, run.path("student.tflite"), seq_len=seq_len)),
            "tflite", "fp32", extra={"input": f"int32 input_ids + attention_mask, shape (1, {seq_len})",
                                     "output": "sentence embedding" if teacher.kind == "embedding" else "logits"}))
        if tfl is not None:
            artifacts.append(tfl)
    teacher_onnx = None
    if compare_teacher:
        teacher_onnx = stage("hf-teacher-onnx", {"teacher": t_key, "task": task}, lambda: Artifact(
            "teacher-onnx", str(export_optimum(teacher_path, run.path("teacher-onnx"), task)), "onnx", "fp32",
            extra={"optimum_dir": "teacher-onnx", "reference": True}))

    # ---- agreement + parity
    e_settings = {"files": {a.name: a.sha256 for a in artifacts}, "student": student_key, "teacher": t_key,
                  "n": len(test), "seed": seed, "max_length": max_length}

    def run_eval() -> StageResult:
        say(f"agreement with the teacher on {len(test)} held-out texts")
        tb = ev.eval_batches(teacher, test, max_length=max_length, seed=seed)
        t_out = ev.collect(ev.torch_encoder(teacher.model, teacher.kind, **kw), tb, teacher.kind)
        s_out = ev.collect(ev.torch_encoder(student, teacher.kind, **kw), tb, teacher.kind)
        res = {"teacher": ev.agreement(teacher.kind, t_out, t_out, test_labels),
               "student": ev.agreement(teacher.kind, s_out, t_out, test_labels)}
        from edgekd.hf.runtime import ort_encoder, tflite_encoder

        for a in artifacts:
            if a.format == "onnx":
                out = ev.collect(ort_encoder(run.path(a.path), teacher.kind, threads=threads, **kw), tb, teacher.kind)
                res[a.name] = {**ev.agreement(teacher.kind, out, t_out, test_labels), "parity": _parity(teacher.kind, out, s_out)}
            else:  # fixed-shape file: padded batches, parity on the first 16 against torch on the same input
                pb = ev.eval_batches(teacher, test, max_length=max_length, seed=seed, pad_to=seq_len)
                if teacher.kind == "mlm":  # masks differ from the dynamic batches: teacher on the same inputs
                    t_ref = ev.collect(ev.torch_encoder(teacher.model, teacher.kind, **kw), pb, teacher.kind)
                else:
                    t_ref = t_out
                out = ev.collect(tflite_encoder(run.path(a.path), threads=threads), pb, teacher.kind)
                ref = ev.collect(ev.torch_encoder(student, teacher.kind, **kw), pb[:16], teacher.kind)
                res[a.name] = {**ev.agreement(teacher.kind, out, t_ref, test_labels),
                               "parity": _parity(teacher.kind, out[:len(ref)], ref)}
        return StageResult([], {"agreement": res})

    e_res, _ = run.run_stage("hf-evaluate", e_settings, run_eval, force=force)
    agree = e_res.metrics["agreement"]

    # ---- latency: ONNX files interleaved (teacher vs students, ratio meaningful), TFLite on its own
    from edgekd.hf.runtime import interleaved, latency_inputs, ort_call, where_host

    l_settings = {"files": {a.name: a.sha256 for a in artifacts}, "teacher": teacher_onnx.sha256 if teacher_onnx else None,
                  "seq_len": seq_len, "threads": threads, "runs": runs}

    def run_latency() -> StageResult:
        import onnxruntime

        inputs = latency_inputs(teacher.tokenizer, test[0], seq_len)
        onnx_rows = [a for a in artifacts if a.format == "onnx"] + ([teacher_onnx] if teacher_onnx else [])
        say(f"timing {len(onnx_rows)} ONNX files interleaved (batch 1, seq {seq_len}, {threads} threads)")
        rt = f"onnxruntime {onnxruntime.__version__} CPU EP"
        stats = interleaved({a.name: ort_call(run.path(a.path), inputs, threads) for a in onnx_rows}, runs=runs,
                            warmup=3, max_seconds=120)
        lat = {k: {**v, "warmup": 3, "threads": threads, "runtime": rt, "kind": "measured", "batch": 1,
                   "seq_len": seq_len, "where": where_host(rt, threads, seq_len) + ", interleaved with the other ONNX files"}
               for k, v in stats.items()}
        for a in artifacts:
            if a.format == "tflite":
                lat[a.name] = _tflite_latency(run.path(a.path), tgt, runs, threads)
        return StageResult([], {"latency": lat})

    l_res, _ = run.run_stage("hf-latency", l_settings, run_latency, force=force)
    lat = l_res.metrics["latency"]

    # ---- report
    rows = [Artifact("teacher", f"hf:{teacher_path}", "pytorch", "fp32"),
            Artifact("student", d_res.artifacts[0].path, "pytorch", "fp32", size_bytes=d_res.artifacts[0].size_bytes,
                     sha256=student_key, extra={"hf_dir": "student"})]
    rows += artifacts + ([teacher_onnx] if teacher_onnx else [])
    ships = {(s.format, s.precision) for s in tgt.ships}
    for a in rows:
        g = agree.get(a.name) or (agree["teacher"] if a.name == "teacher-onnx" else None)
        if g:
            a.accuracy = round(g["agreement"] * 100, 2)
            a.extra.update({"accuracy_metric": g["metric"] + " (x100)", "agreement": g["agreement"],
                            **({"parity_vs_student": g["parity"]} if "parity" in g else {}),
                            **({"label_accuracy": g["label_accuracy"]} if "label_accuracy" in g else {})})
        if a.name in lat:
            a.latency = lat[a.name]
        fmt_ok = any(f == a.format for f, _ in ships)
        a.extra["shipped"] = a.format in ("onnx", "tflite") and fmt_ok and a.name != "teacher-onnx" and (
            (a.format, a.precision) in ships or a.format == "tflite" or a.precision == "dynamic-int8")
    shipped = [a for a in rows if a.extra.get("shipped")]
    wants_tflite = any(f == "tflite" for f, _ in ships)
    if wants_tflite and not any(a.format == "tflite" for a in rows):
        notes.append(f"No TFLite file was made (--no-tflite, or the conversion failed): nothing in {tgt.name}'s "
                     "format is shipped; onnx/ and onnx-int8/ hold the ONNX models.")
    elif any(f == "tflite" and p == "int8" for f, p in ships):
        notes.append("The target asks for int8 TFLite; this HF path ships the float TFLite file (static int8 "
                     "of transformer activations loses agreement); onnx-int8/ holds the dynamic-int8 ONNX model.")
    t_lat = (lat.get("teacher-onnx") or {}).get("p50_ms")
    speed = {a.name: round(t_lat / a.latency["p50_ms"], 3) for a in rows
             if t_lat and a.latency and a.format == "onnx" and a.name != "teacher-onnx"}
    if tgt.connection.kind in ("adb", "ssh") and any("NOT the" in str((a.latency or {}).get("where", "")) for a in shipped):
        notes.append(f"No {tgt.name} device was reachable: its latencies are host measurements, labelled so.")
    m = d_res.metrics
    report = {
        "schema": 1, "tool": "edgekd", "kind": "hf",
        "target": {"name": tgt.name, "description": tgt.description, "source": tgt.source},
        "data": td.describe(),
        "teacher": {"spec": f"hf:{teacher_path}", "kind": teacher.kind, "layers": teacher.num_layers,
                    "params": m["student"]["teacher_params"], "pooling": teacher.pooling},
        "student": {**m["student"], "params_ratio": round(m["student"]["teacher_params"] / m["student"]["params"], 3)},
        "distill": {"epochs": epochs, "seed": seed, **{k: m["train"][k] for k in ("steps", "seconds", "stopped", "weights")},
                    "val_agreement_before": m["val_before"]["agreement"], "val_agreement_after": m["val_after"]["agreement"],
                    "metric": m["val_after"]["metric"]},
        "accuracy_metric": ev.METRIC[teacher.kind] + " on held-out texts, x100 (agreement with the teacher, not task accuracy)",
        "speedup_vs_teacher_onnx": speed,
        "shipped": [a.path for a in shipped],
        "host": {"machine": platform.machine(), "processor": platform.processor() or platform.machine()},
        "seconds": round(time.perf_counter() - t_start, 1),
        "notes": notes,
        "artifacts": [a.to_dict() for a in rows],
    }
    atomic_write_text(run.path("report.json"), _json.dumps(report, indent=2, default=str) + "\n")
    _write_md(run, report, rows)
    report["output"] = str(run.root)
    return report


def _parity(kind: str, out, ref) -> dict[str, float]:
    from edgekd.hf.evaluate import parity

    if kind == "mlm":  # argmax ids at masked positions
        return {"top1_match": float((out == ref).mean())}
    return parity(out, ref)


def _tflite_latency(path: Path, tgt, runs: int, threads: int) -> dict[str, Any]:
    """The target's own profiler (adb/ssh device, or a host measurement labelled so); the fixed-shape
    file's inputs are all-ones token ids, valid for any vocabulary."""
    from edgekd.profile import profile

    try:
        rep = profile(path, tgt, runs=runs, threads=threads)
    except EdgeKDError as exc:
        return {"kind": "failed", "where": str(exc)}
    return rep.primary


def _write_md(run: RunDir, report: dict[str, Any], rows: list[Artifact]) -> None:
    from edgekd.pipeline.report import latency_label

    lines = [f"# edgekd compress (Hugging Face) — target `{report['target']['name']}`", "",
             f"- teacher: `{report['teacher']['spec']}` ({report['teacher']['kind']}, {report['teacher']['layers']} layers, "
             f"{report['teacher']['params']:,} params)",
             f"- student: layers {report['student']['layers']}, hidden {report['student']['hidden_size']}, "
             f"{report['student']['params']:,} params",
             f"- data: {report['data']['name']} ({report['data']['train']} train / {report['data']['test']} test texts)",
             f"- accuracy column: {report['accuracy_metric']}", "",
             "| artifact | format | precision | agreement x100 | size KiB | p50 ms | p90 ms | latency is |",
             "|---|---|---|---|---|---|---|---|"]
    for a in rows:
        lat = a.latency or {}
        f = (lambda v, s=".2f": "—" if v is None else format(v, s))
        lines.append(f"| {a.name} | {a.format} | {a.precision} | {f(a.accuracy)} | {f(a.size_bytes / 1024 if a.size_bytes else None, '.1f')} "
                     f"| {f(lat.get('p50_ms'), '.3f')} | {f(lat.get('p90_ms'), '.3f')} | {lat.get('kind', '—')} |")
    lines += ["", "## How each latency was obtained", ""]
    lines += [f"- **{a.name}**: {latency_label(a.latency)}" for a in rows if a.latency]
    if report["speedup_vs_teacher_onnx"]:
        lines += ["", "Speed-up vs the teacher's ONNX file (p50, interleaved): " +
                  ", ".join(f"{k} {v}x" for k, v in report["speedup_vs_teacher_onnx"].items())]
    if report["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    atomic_write_text(run.path("report.md"), "\n".join(lines) + "\n")
