"""The classifier modality: image classifiers and feature-vector models over a DataBundle.

Supplies what edgekd.pipeline.sequence asks of a modality; the stages themselves are in `stages.py`.
"""

from __future__ import annotations

from typing import Any, Callable

from edgekd.errors import EdgeKDError, UsageError


def state_hash(model) -> str:
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class ClassifierModality:
    kind = "classifier"
    pipeline = "compress"

    def __init__(self, cfg):
        self.cfg = cfg
        self.notes: list[str] = []
        self.target = None
        self.ctx = None

    def check(self) -> None:
        from edgekd.targets import load_target

        if self.cfg.baseline not in ("none", "scratch"):
            raise UsageError(f"--baseline must be none or scratch, got {self.cfg.baseline!r}")
        if getattr(self.cfg, "time_budget", None) and self.cfg.chain not in (None, "none"):
            raise UsageError("--time-budget applies to one distillation run, not to a --chain of them")
        self.target = load_target(self.cfg.target)
        self._check_overrides()
        self.budget_ms = self._latency_budget()

    def _latency_budget(self) -> float | None:
        """--student auto: the budget to search for (--latency-budget, else the target file's)."""
        from edgekd.modalities.classifier.student_search import parse_budget

        budget = parse_budget(self.cfg.latency_budget)
        if self.cfg.student != "auto":
            if budget is not None:
                raise UsageError("--latency-budget applies to --student auto (a search over derived students)")
            return None
        budget = budget if budget is not None else self.target.budgets.latency_ms
        if budget is None:
            raise UsageError(f"--student auto needs --latency-budget (e.g. 1.5ms) or a [budgets] latency_ms in the "
                             f"target file ({self.target.name} has none); or give auto:<MACs ratio>")
        return budget

    def _check_overrides(self) -> None:
        """--set names recipe fields: checked on the recipe before any data is read, so a typo costs nothing.
        With auto the recipe is chosen by the probe, so only training fields (train.*) can be set."""
        if not self.cfg.overrides:
            return
        if self.cfg.chain and self.cfg.chain != "none":
            raise UsageError("--set does not apply with --chain (each link uses the chain's own recipe)")
        from edgekd.distill import load_recipe

        overrides = self.cfg.overrides
        if self.cfg.recipe == "auto":
            from edgekd.distill.auto import probe_share

            overrides = probe_share(overrides)[0]  # auto.share is auto's own setting, checked there
            loss_keys = [k for k in overrides if not k.startswith("train.") and "." in k]
            if loss_keys:
                raise UsageError(f"--set {loss_keys[0]}: with --recipe auto only train.* fields and auto.share can be "
                                 "set (the probe chooses the losses); name a --recipe (e.g. hinton) to set its loss fields")
        load_recipe("hinton" if self.cfg.recipe == "auto" else self.cfg.recipe, overrides)

    def prepare(self, run, log: Callable[[str], None]) -> None:
        import numpy as np
        import torch

        from edgekd.data import load_data
        from edgekd.models.factory import is_registered
        from edgekd.modalities.classifier import stages
        from edgekd.modalities.classifier.checks import check_fits, teacher_sanity
        from edgekd.modalities.classifier.sources import resolve_student, resolve_teacher

        cfg, target = self.cfg, self.target
        # unlabeled images are accepted: the student then learns from the teacher alone (unlabeled.py)
        data = load_data(cfg.data, seed=cfg.seed, image_size=cfg.image_size, normalize=cfg.normalize,
                         need_labels=False)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        teacher_src = resolve_teacher(cfg.teacher, cfg.teacher_weights, data)
        teacher = teacher_src.build()
        teacher_classes = check_fits(teacher, data, "teacher")
        notes = []
        if data.labelled:
            notes += [n for n in [teacher_sanity(teacher, data)] if n]
        else:
            from edgekd.modalities.classifier.unlabeled import check_options, prepare_unlabeled, views_by_default

            check_options(cfg)
            data, what = prepare_unlabeled(data, teacher)
            self.cfg = cfg = views_by_default(cfg, data)
        if skipped := data.skipped_note():
            notes.append(f"{skipped} (all listed in report.json, data.skipped_unreadable)")
        for n in notes:
            log(f"[yellow]warning:[/] {n}")
        if not data.labelled:
            log(what)
            notes.append(what)
        teacher_key = state_hash(teacher)
        if data.layout == "NF" and is_registered(cfg.student):
            raise EdgeKDError(f"--student {cfg.student} is a built-in image CNN but '{data.name}' holds feature vectors: "
                              "give --student auto:<ratio> (derived from the teacher) or your own 'module:factory'")
        spec = cfg.student
        self.ctx = stages.Context(cfg=cfg, run=run, data=data, target=target, teacher=teacher, teacher_key=teacher_key,
                                  teacher_src=teacher_src, student_src=None, log=log, notes=notes)
        if spec == "auto":
            spec = f"auto:{stages.student_search_stage(self.ctx, self.budget_ms)['chosen']}"
        student_src = resolve_student(spec, teacher, data, seed=cfg.seed, teacher_classes=teacher_classes)
        check_fits(student_src.build(), data, "student")
        for w in (student_src.info or {}).get("warnings") or []:  # auto:<ratio> far above the asked size
            log(f"[yellow]warning:[/] {w}")
            notes.append(f"warning: {w}")
        run.record_input("teacher", {"spec": teacher_src.spec, "weights": teacher_src.weights, "state_sha": teacher_key})
        run.record_input("data", data.describe())
        run.record_input("target", {"name": target.name, "file": target.source})
        run.record_input("config", _config_dict(cfg))
        log(f"target [bold]{target.name}[/], data {data.name} ({len(data.train)} train / {len(data.test)} test), "
            f"teacher {teacher_src.spec}, student {student_src.spec}")
        self.notes = notes  # the stages add theirs to the same list
        self.ctx.student_src = student_src

    def distill(self):
        from edgekd.modalities.classifier import stages

        self._student, self._key = stages.distill_stage(self.ctx)
        return self._student

    def refine(self, student):
        """--baseline scratch, then --prune (each a stage of its own)."""
        from edgekd.modalities.classifier import stages

        student, self._key, _ = stages.baseline_stage(self.ctx, student, self._key)
        if self.cfg.prune:
            student, self._key = stages.prune_stage(self.ctx, student, self._key)
        return student

    def export(self, student) -> list:
        from edgekd.modalities.classifier import stages

        return stages.export_stage(self.ctx, student, self._key)

    def evaluate(self, student, files: list) -> list:
        from edgekd.modalities.classifier import stages

        return stages.evaluate_stage(self.ctx, student, files)

    def profile(self, rows: list) -> list:
        from edgekd.modalities.classifier import stages

        return stages.profile_stage(self.ctx, rows)

    def stand_in(self, fmt: str, precision: str):
        return None  # every (format, precision) a target ships is made exactly

    missing = None  # the pipeline's own sentence

    def describe(self, student, rows: list) -> dict[str, Any]:
        from edgekd.modalities.classifier import stages

        return stages.describe(self.ctx, student, rows)

    def title(self, report: dict[str, Any]) -> str:
        from edgekd.modalities.classifier.report import title

        return title(report)

    def header_lines(self, report: dict[str, Any]) -> list[str]:
        from edgekd.modalities.classifier.report import header_lines

        return header_lines(report)


def _config_dict(cfg) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(cfg)
