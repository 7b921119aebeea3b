"""The text modality's distillation stage: derive the student from the teacher, distil on the texts."""

from __future__ import annotations

from edgekd.core import Artifact, StageResult


def distill_stage(m):
    """Runs (or reuses) the hf-distill stage of TextModality `m`; returns its StageResult."""
    from edgekd.hf import evaluate as ev
    from edgekd.hf.student import derive_hf_student, layer_targets
    from edgekd.hf.text_data import read_texts
    from edgekd.hf.train import TrainConfig, distill_hf
    from edgekd.modalities.text import _data_key

    c, teacher, run, say, kw = m.cfg, m.teacher, m.run, m.say, m.kw
    td = m.texts
    val = td.val.texts[:c.eval_samples]
    cfg = TrainConfig(epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, max_length=c.max_length, seed=c.seed,
                      time_budget_s=c.time_budget_s, freeze_embeddings=c.freeze_embeddings, augment=c.augment)
    settings = {"teacher": m.t_key, "data": _data_key(c.data), "column": c.text_column, "labels": c.label_column,
                "extra_text": _data_key(str(c.extra_text)) if c.extra_text else None, "layer_loss": c.layer_loss,
                "layers": str(c.layers), "hidden_size": c.hidden_size, "train": {**cfg.__dict__}, "limit": c.train_limit}

    def agreement_on_val(model, vb, t_val):
        return ev.agreement(teacher.kind, ev.collect(ev.torch_encoder(model, teacher.kind, **kw), vb, teacher.kind), t_val)

    def run_distill() -> StageResult:
        student, info = derive_hf_student(teacher, layers=c.layers, hidden_size=c.hidden_size, seed=c.seed)
        say(f"student: layers {info['layers']} of {info['teacher_layers']}, hidden {info['hidden_size']}, "
            f"{info['params']:,} params (teacher {info['teacher_params']:,})")
        vb = ev.eval_batches(teacher, val, max_length=c.max_length, seed=c.seed)
        t_val = ev.collect(ev.torch_encoder(teacher.model, teacher.kind, **kw), vb, teacher.kind)
        before = agreement_on_val(student, vb, t_val)
        say(f"untrained student val agreement {before['agreement']:.4f} ({before['metric']}); training on "
            f"{len(td.train)} texts, {c.epochs} epoch(s)" + (f", budget {c.time_budget_s:.0f} s" if c.time_budget_s else ""))
        # read here, not up front: a rerun that reuses this stage never needs it
        extra = read_texts(c.extra_text, column=c.text_column)[0] if c.extra_text else []
        if c.extra_text:
            run.record_input("extra_text", {"spec": str(c.extra_text), "texts": len(extra),
                                            "key": _data_key(str(c.extra_text))})
        if c.layer_loss and c.hidden_size in (None, teacher.hidden_size):  # narrower students have no layer map
            cfg.layer_targets = layer_targets(info["layers"], teacher.num_layers)
        labels = td.train.labels + [None] * len(extra) if td.train.labels is not None else None
        hist = distill_hf(teacher, student, td.train.texts + extra, labels=labels, cfg=cfg, log=say)
        after = agreement_on_val(student, vb, t_val)
        say(f"distilled student val agreement {after['agreement']:.4f} after {hist['steps']} steps, {hist['seconds']} s")
        from edgekd.hf.export import save_student_dir

        save_student_dir(student, teacher, run.path("student"))
        return StageResult([Artifact("student", "student/model.safetensors", "pytorch", "fp32", extra={"hf_dir": "student"})],
                           {"student": info, "train": hist, "val_before": before, "val_after": after})

    res, _ = run.run_stage("hf-distill", settings, run_distill, force=c.force)
    return res
