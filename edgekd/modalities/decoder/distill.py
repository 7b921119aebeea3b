"""The decoder modality's distillation stage: derive the student, train it with token-level KD + next-token CE
on packed token blocks of the texts (edgekd.hf.train, the text path's trainer), score it before and after."""

from __future__ import annotations

from edgekd.core import Artifact, StageResult

DEFAULT_LAYERS = "influence"  # half the teacher's layers, the most influential (first and last kept)


def val_scores(m, student) -> dict:
    from edgekd.hf.lm_eval import lm_batches, score_lms, torch_logits

    c = m.cfg
    if not hasattr(m, "_val"):
        m._val = lm_batches(m.teacher.tokenizer, m.texts.val.texts[:c.eval_samples], max_length=c.max_length,
                            batch_size=c.batch_size, limit=c.eval_samples)
    return score_lms({"student": torch_logits(student)}, torch_logits(m.teacher.model), m._val)


def distill_stage(m):
    from edgekd.hf.export import save_student_dir
    from edgekd.hf.student import derive_hf_student, layer_targets
    from edgekd.hf.train import TrainConfig, distill_hf
    from edgekd.modalities.text import _data_key

    c, teacher, run, say = m.cfg, m.teacher, m.run, m.say
    cfg = TrainConfig(epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, max_length=c.max_length, seed=c.seed,
                      time_budget_s=c.time_budget_s, freeze_embeddings=c.freeze_embeddings, pack=True,
                      temperature=c.temperature, weights=dict(c.weights))
    # a decoder's layers differ widely in how much they change the residual stream: by default keep the ones that
    # change it most (edgekd.hf.layer_influence), not an even spread
    layers = DEFAULT_LAYERS if c.layers is None else c.layers
    settings = {"teacher": m.t_key, "data": _data_key(c.data), "layers": str(layers), "layer_loss": c.layer_loss,
                "intermediate_size": c.intermediate_size, "train": {**cfg.__dict__}, "limit": c.train_limit}

    def run_distill() -> StageResult:
        student, info = derive_hf_student(teacher, layers=layers, intermediate_size=c.intermediate_size, seed=c.seed,
                                          texts=m.texts.train.texts, max_length=c.max_length)
        say(f"student: layers {info['layers']} of {info['teacher_layers']} ({info['layer_choice']}), {info['params']:,} params "
            f"(teacher {info['teacher_params']:,})")
        before = val_scores(m, student)
        say(f"untrained student val perplexity {before['student']['perplexity']:.2f} (teacher "
            f"{before['teacher']['perplexity']:.2f}); training on {len(m.texts.train)} texts")
        if c.layer_loss:
            cfg.layer_targets = layer_targets(info["layers"], teacher.num_layers)
        hist = distill_hf(teacher, student, m.texts.train.texts, cfg=cfg, log=say)
        after = val_scores(m, student)
        say(f"distilled student val perplexity {after['student']['perplexity']:.2f} after {hist['steps']} steps, "
            f"{hist['seconds']} s")
        save_student_dir(student, teacher, run.path("student"))
        return StageResult([Artifact("student", "student/model.safetensors", "pytorch", "fp32", extra={"hf_dir": "student"})],
                           {"student": info, "train": hist, "val_before": before, "val_after": after})

    res, _ = run.run_stage("decoder-distill", settings, run_distill, force=c.force)
    return res
