"""`edgekd compress`: teacher -> distilled student -> ONNX / TFLite (fp32 + what the target ships) ->
accuracy of every file on the real test set -> profile on the target -> report.md / report.json.

Every stage goes through RunDir.run_stage, so a rerun with the same --output skips what is unchanged.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from edgekd.core import RunDir
from edgekd.errors import EdgeKDError, UsageError
from edgekd.models.outputs import logits_of
from edgekd.pipeline.report import write_reports
from edgekd.pipeline.sources import ModelSource, resolve_student, resolve_teacher


@dataclass
class CompressConfig:
    teacher: str | None = None  # None: the built-in Fashion-MNIST example
    teacher_weights: str | None = None
    student: str = "cnn-s"  # built-in name, entrypoint, or auto:<ratio>
    data: str | None = None  # None/auto: Fashion-MNIST if installed, else digits
    image_size: str | None = None  # resize images to N or HxW
    normalize: str = "dataset"  # see edgekd.data.loaders.NORMALIZE_HELP
    target: str = "android"
    output: str = "runs/compress"
    epochs: int = 3
    seed: int = 0
    recipe: str = "auto"  # a probe picks LR and loss mix (edgekd.distill.auto), or a built-in / .toml recipe
    baseline: str = "none"  # "scratch": also train the student on labels only and report the gain
    batch_size: int = 128
    prune: float | None = None
    chain: str = "none"
    calib_samples: int = 256
    max_drop: float | None = None
    allow_drop: bool = False
    runs: int | None = None
    threads: int | None = None
    eval_samples: int | None = None
    force: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _log(msg: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold cyan]edgekd[/] {msg}")


def state_hash(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def compress(cfg: CompressConfig, log: Callable[[str], None] = _log) -> dict[str, Any]:
    import numpy as np
    import torch

    from edgekd.data import load_data
    from edgekd.models.registry import is_registered
    from edgekd.targets import load_target

    t_start = time.perf_counter()
    if cfg.baseline not in ("none", "scratch"):
        raise UsageError(f"--baseline must be none or scratch, got {cfg.baseline!r}")
    target = load_target(cfg.target)
    run = RunDir(cfg.output, pipeline="compress")
    data = load_data(cfg.data, seed=cfg.seed, image_size=cfg.image_size, normalize=cfg.normalize)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)

    teacher_src: ModelSource = resolve_teacher(cfg.teacher, cfg.teacher_weights, data)
    teacher = teacher_src.build()
    check_fits(teacher, data, "teacher")
    notes = [n for n in [teacher_sanity(teacher, data)] if n]
    if data.source.get("skipped_unreadable"):
        bad = data.source["skipped_unreadable"]
        notes.append(f"{len(bad)} unreadable file(s) in {data.source['path']} were skipped, e.g. {bad[0]} "
                     "(all listed in report.json, data.skipped_unreadable)")
    for n in notes:
        log(f"[yellow]warning:[/] {n}")
    teacher_key = state_hash(teacher)
    if data.layout == "NF" and is_registered(cfg.student):
        raise EdgeKDError(f"--student {cfg.student} is a built-in image CNN but '{data.name}' holds feature vectors: "
                          "give --student auto:<ratio> (derived from the teacher) or your own 'module:factory'")
    student_src: ModelSource = resolve_student(cfg.student, teacher, data, seed=cfg.seed)
    check_fits(student_src.build(), data, "student")
    run.record_input("teacher", {"spec": teacher_src.spec, "weights": teacher_src.weights, "state_sha": teacher_key})
    run.record_input("data", data.describe())
    run.record_input("target", {"name": target.name, "file": target.source})
    run.record_input("config", asdict(cfg))
    log(f"target [bold]{target.name}[/], data {data.name} ({len(data.train)} train / {len(data.test)} test), "
        f"teacher {teacher_src.spec}, student {student_src.spec}")

    from edgekd.pipeline import stages

    ctx = stages.Context(cfg=cfg, run=run, data=data, target=target, teacher=teacher, teacher_key=teacher_key,
                         teacher_src=teacher_src, student_src=student_src, log=log, notes=notes)
    student, student_key = stages.distill_stage(ctx)
    stages.baseline_stage(ctx, student, student_key)
    if cfg.prune:
        student, student_key = stages.prune_stage(ctx, student, student_key)
    artifacts = stages.export_stage(ctx, student, student_key)
    artifacts = stages.evaluate_stage(ctx, student, artifacts)
    artifacts = stages.profile_stage(ctx, artifacts)
    report = stages.build_report(ctx, student, artifacts, seconds=time.perf_counter() - t_start)
    if run.reused:
        log(f"resumed: skipped {len(run.reused)} unchanged stage(s): {', '.join(run.reused)}")
    report = write_reports(run, report, artifacts)
    run.manifest["report"] = {"json": "report.json", "md": "report.md"}
    run.save()
    return report


def teacher_sanity(teacher, data, n: int = 256) -> str | None:
    """A warning when the teacher is near chance on the test data: distilling it would teach the student
    nothing, and the usual cause is preprocessing (normalisation, size) or class order unlike its training."""
    from edgekd.runtime import accuracy, load_runner

    x, y = data.test.x[:n], data.test.y[:n]
    if len(x) < 20:  # too few test samples to tell a working teacher from chance
        return None
    acc = accuracy(load_runner(teacher), x, y) / 100.0
    chance = 1.0 / max(2, data.num_classes)
    # near chance: within 5 points, or within two standard errors of chance on this many images
    if acc >= chance + max(0.05, 2 * (chance * (1 - chance) / len(x)) ** 0.5):
        return None
    images = data.layout != "NF"
    return (f"the teacher scores {100 * acc:.1f} % on {len(x)} test {data.noun} of '{data.name}' "
            f"(chance {100 * chance:.1f} %): check that --normalize (now {data.source.get('normalize', 'dataset')})"
            f"{' and --image-size match' if images else ' matches'} how it was trained, and that the class order "
            "matches its outputs")


def check_fits(model, data, who: str) -> None:
    """Fail early, in one line, when the data does not fit the model."""
    import torch

    x = torch.from_numpy(data.test.x[:2])
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as exc:
        msg = " ".join(str(exc).split())[:200]
        raise EdgeKDError(f"data {data.where} of shape {tuple(data.input_shape)} does not fit the {who} (wrong channel "
                          f"count or size?): {msg}") from None
    try:
        out = logits_of(out)
    except TypeError as exc:
        raise EdgeKDError(f"the {who}: {exc}") from None
    if out.ndim != 2 or out.shape[1] < data.num_classes:
        raise EdgeKDError(f"the {who} outputs shape {tuple(out.shape)} but data {data.where} has {data.num_classes} "
                          "classes")
