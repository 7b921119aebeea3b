"""The text modality's evaluation: agreement of every file with the teacher on held-out texts, and parity
with the PyTorch student on the same inputs."""

from __future__ import annotations

from edgekd.core import Artifact, StageResult


def _parity(kind: str, out, ref) -> dict[str, float]:
    from edgekd.hf.evaluate import parity

    if kind == "mlm":  # argmax ids at masked positions
        return {"top1_match": float((out == ref).mean())}
    return parity(out, ref)


def _score_file(m, a: Artifact, tb, t_out, s_out, student) -> dict:
    from edgekd.hf import evaluate as ev
    from edgekd.hf.runtime import ort_encoder, tflite_encoder

    c, kind, kw = m.cfg, m.teacher.kind, m.kw
    if a.format == "onnx":
        out = ev.collect(ort_encoder(m.run.path(a.path), kind, threads=m.threads, **kw), tb, kind)
        return {**ev.agreement(kind, out, t_out, m.test_labels), "parity": _parity(kind, out, s_out)}
    # fixed-shape file: padded batches, parity on the first 16 against torch on the same input
    pb = ev.eval_batches(m.teacher, m.test, max_length=c.max_length, seed=c.seed, pad_to=c.seq_len)
    t_ref = t_out
    if kind == "mlm":  # masks differ from the dynamic batches: teacher on the same inputs
        t_ref = ev.collect(ev.torch_encoder(m.teacher.model, kind, **kw), pb, kind)
    out = ev.collect(tflite_encoder(m.run.path(a.path), threads=m.threads), pb, kind)
    ref = ev.collect(ev.torch_encoder(student, kind, **kw), pb[:16], kind)
    return {**ev.agreement(kind, out, t_ref, m.test_labels), "parity": _parity(kind, out[:len(ref)], ref)}


def evaluate_files(m, student, files: list[Artifact]) -> list[Artifact]:
    """Every row of the report (teacher, student, their files) with its agreement x100 as `accuracy`."""
    from edgekd.hf import evaluate as ev

    c, kind, kw = m.cfg, m.teacher.kind, m.kw
    scored = [a for a in files if a.name != "teacher-onnx"]  # the teacher's file is scored as the teacher
    settings = {"files": {a.name: a.sha256 for a in scored}, "student": m.student_key, "teacher": m.t_key,
                "n": len(m.test), "seed": c.seed, "max_length": c.max_length}

    def run_eval() -> StageResult:
        m.say(f"agreement with the teacher on {len(m.test)} held-out texts")
        tb = ev.eval_batches(m.teacher, m.test, max_length=c.max_length, seed=c.seed)
        t_out = ev.collect(ev.torch_encoder(m.teacher.model, kind, **kw), tb, kind)
        s_out = ev.collect(ev.torch_encoder(student, kind, **kw), tb, kind)
        res = {"teacher": ev.agreement(kind, t_out, t_out, m.test_labels),
               "student": ev.agreement(kind, s_out, t_out, m.test_labels)}
        for a in scored:
            res[a.name] = _score_file(m, a, tb, t_out, s_out, student)
        return StageResult([], {"agreement": res})

    res, _ = m.run.run_stage("hf-evaluate", settings, run_eval, force=c.force)
    agree = res.metrics["agreement"]
    d = m.d_res.artifacts[0]
    rows = [Artifact("teacher", f"hf:{m.teacher_path}", "pytorch", "fp32"),
            Artifact("student", d.path, "pytorch", "fp32", size_bytes=d.size_bytes, sha256=m.student_key,
                     extra={"hf_dir": "student"})] + files
    for a in rows:
        g = agree.get(a.name) or (agree["teacher"] if a.name == "teacher-onnx" else None)
        if g:
            a.accuracy = round(g["agreement"] * 100, 2)
            a.extra.update({"accuracy_metric": g["metric"] + " (x100)", "agreement": g["agreement"],
                            **({"parity_vs_student": g["parity"]} if "parity" in g else {}),
                            **({"label_accuracy": g["label_accuracy"]} if "label_accuracy" in g else {})})
    return rows
