"""The classifier modality's stages (images and feature vectors). Each reads what earlier stages wrote, goes
through RunDir.run_stage (skipped on rerun when its fingerprint is unchanged) and returns Artifacts; the
order they run in, what ships and the report belong to edgekd.pipeline."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from edgekd.core import Artifact, RunDir, StageResult
from edgekd.models.file_teacher import FileTeacher

PARITY_SAMPLES = 64


@dataclass
class Context:
    cfg: Any
    run: RunDir
    data: Any
    target: Any
    teacher: Any
    teacher_key: str
    teacher_src: Any
    student_src: Any
    log: Callable[[str], None]
    notes: list[str] = field(default_factory=list)  # warnings found before the stages ran, shown in the report


def _load_student(ctx: Context, rel: str):
    from edgekd.models.checkpoint import load_portable

    return load_portable(ctx.student_src.build(), ctx.run.path(rel))


def distill_stage(ctx: Context):
    """Teacher -> student (the default recipe unless --recipe), saved as student.pt."""
    import torch

    from edgekd.distill import distill, load_recipe
    from edgekd.models.checkpoint import save_portable

    from edgekd.distill.auto import auto_settings

    cfg = ctx.cfg
    # the resolved recipe (not just its name): editing a recipe file or default.toml re-runs the stage
    settings = {"teacher": ctx.teacher_key, "data": ctx.data.describe(), "student": ctx.student_src.spec, "recipe": cfg.recipe,
                "recipe_config": auto_settings() if cfg.recipe == "auto" else load_recipe(cfg.recipe, cfg.overrides).to_dict(),
                "epochs": cfg.epochs, "seed": cfg.seed, "batch_size": cfg.batch_size, "chain": cfg.chain}
    if cfg.overrides:  # only when given: runs from before --set existed keep their fingerprint
        settings["overrides"] = {k: str(v) for k, v in cfg.overrides.items()}
    budget = getattr(cfg, "time_budget", None)
    if budget:
        settings["time_budget_s"] = budget

    def run() -> StageResult:
        torch.manual_seed(cfg.seed)
        student = ctx.student_src.build().train()
        if cfg.chain and cfg.chain != "none":
            from edgekd.prune.chain import run_chain, split_guidance

            ctx.log(f"distilling through a teacher-assistant chain ({cfg.chain})")
            guidance, chain = split_guidance(cfg.chain)
            # auto:<ratio>: the student is derived from the last trained assistant (it inherits what the chain
            # learned), with the depth plan announced by derive(teacher, ratio) so student.pt loads the same way.
            auto = ctx.student_src.spec.startswith("auto:")
            info = ctx.student_src.info
            res = run_chain(ctx.teacher, None if auto else student, ctx.data, chain=chain, guidance=guidance, recipe=cfg.recipe,
                            epochs=cfg.epochs, seed=cfg.seed, batch_size=cfg.batch_size, run=ctx.run,
                            output_dir=ctx.run.path("chain"), student_ratio=info["target_ratio"] if auto else None,
                            student_blocks=list(info.get("dropped_blocks") or []) if auto else None,
                            round_to=int(info.get("round_to") or 8) if auto else 8, progress=True)
            ctx.log(f"chain: {res.plan.reason}")
        else:
            ctx.log(f"distilling with recipe '{cfg.recipe}': " + (f"a {budget:g} s time budget (at most {cfg.epochs} "
                    "epochs)" if budget else f"{cfg.epochs} epochs") + f" on {len(ctx.data.train)} training "
                    f"{ctx.data.noun}, batch {cfg.batch_size}")
            # resume="auto": a rerun after a kill continues from distill/last.pt when its settings match
            res = distill(ctx.teacher, student, ctx.data, recipe=cfg.recipe, epochs=cfg.epochs, seed=cfg.seed,
                          batch_size=cfg.batch_size, output_dir=ctx.run.path("distill"), progress=True,
                          resume=False if cfg.force else "auto", overrides=cfg.overrides or None,
                          time_budget_s=budget)
            m = res.metrics
            ctx.log(f"distilled: {m.get('steps')} steps ({len(m.get('epochs') or [])} epochs of {m.get('train_samples')} "
                    f"{ctx.data.noun} x {m.get('views', 1)} views) in {m.get('seconds', 0):.0f} s"
                    + (f" of a {budget:g} s budget ({m.get('stopped', 'epochs done')})" if budget else "")
                    + f"; best val {m.get('val_metric', 'labels').replace('labels', 'accuracy')} {m.get('best_val_acc', 0):.4f}")
        save_portable(res.student, ctx.run.path("student.pt"))
        metrics = {k: v for k, v in res.metrics.items() if isinstance(v, (int, float, str, list, dict))}
        return StageResult([Artifact("student", "student.pt", "pytorch", "fp32")], metrics)

    result, skipped = ctx.run.run_stage("distill", settings, run, force=cfg.force)
    if skipped:
        ctx.log("distill: unchanged, reusing student.pt")
    return _load_student(ctx, "student.pt"), result.artifacts[0].sha256


def student_search_stage(ctx: Context, budget_ms: float) -> dict[str, Any]:
    """--student auto: search derived students for the latency budget (a stage: a rerun reuses its choice)."""
    from edgekd.modalities.classifier.student_search import PROBE_RECIPE, RATIOS, search

    settings = {"teacher": ctx.teacher_key, "data": ctx.data.describe(), "target": ctx.target.to_dict(),
                "budget_ms": budget_ms, "ratios": list(RATIOS), "recipe": PROBE_RECIPE, "seed": ctx.cfg.seed,
                "batch_size": ctx.cfg.batch_size, "runs": ctx.cfg.runs}

    def run() -> StageResult:
        ctx.log(f"searching derived students for a {budget_ms:g} ms budget on {ctx.target.name}")
        return StageResult([], search(ctx, budget_ms))

    result, _ = ctx.run.run_stage("student-search", settings, run, force=ctx.cfg.force)
    found = dict(result.metrics)
    ctx.log(f"student search: chose auto:{found['chosen']}")
    return found


def baseline_stage(ctx: Context, student, student_key: str):
    """--baseline scratch: the same student on labels only, with the same budget and the same LR probe as
    auto, so the report can say what distillation bought (or that it bought nothing). The student that goes on
    to export is the better of the two on the validation split (never the test set, which only reports): when
    labels only beats distillation there by more than the split's noise, the labels-only student ships.
    Returns (student, its key, the stage's metrics), or the inputs and None without a baseline."""
    import torch

    from edgekd.distill.auto import auto_settings, distill_auto, noise_margin
    from edgekd.models.checkpoint import save_portable
    from edgekd.runtime import accuracy, load_runner

    cfg = ctx.cfg
    if cfg.baseline == "none":
        return student, student_key, None
    settings = {"student_key": student_key, "data": ctx.data.describe(), "student": ctx.student_src.spec,
                "epochs": cfg.epochs, "seed": cfg.seed, "batch_size": cfg.batch_size, **auto_settings()}

    def run() -> StageResult:
        ctx.log(f"baseline: training the same student on labels only ({cfg.epochs} epochs, same LR probe)")
        torch.manual_seed(cfg.seed)
        res = distill_auto(ctx.teacher, ctx.student_src.build().train(), ctx.data, epochs=cfg.epochs,
                           max_steps=None, batch_size=cfg.batch_size, seed=cfg.seed, overrides=None,
                           output_dir=ctx.run.path("baseline"), resume=False if cfg.force else "auto",
                           progress=True, labels_only=True)
        save_portable(res.student, ctx.run.path("student_scratch.pt"))
        scratch_r, distilled_r = load_runner(res.student), load_runner(student)
        (x, y), (vx, vy) = (ctx.data.test.x, ctx.data.test.y), (ctx.data.val.x, ctx.data.val.y)
        scratch, distilled = accuracy(scratch_r, x, y), accuracy(distilled_r, x, y)
        s_val, d_val = accuracy(scratch_r, vx, vy), accuracy(distilled_r, vx, vy)
        margin = 100 * noise_margin(d_val / 100, len(vy))
        return StageResult([Artifact("student-scratch", "student_scratch.pt", "pytorch", "fp32")],
                           {"kind": "scratch", "scratch_test_acc": round(scratch, 2),
                            "distilled_test_acc": round(distilled, 2), "gain_points": round(distilled - scratch, 2),
                            "scratch_val_acc": round(s_val, 2), "distilled_val_acc": round(d_val, 2),
                            "val_noise_points": round(margin, 2), "ships": "scratch" if s_val - d_val > margin
                            else "distilled", "scratch_lr": res.metrics["auto"]["lr"],
                            "seconds": res.metrics.get("seconds")})

    result, skipped = ctx.run.run_stage("baseline", settings, run, force=cfg.force)
    m = dict(result.metrics)
    how = (f"({m['distilled_test_acc']:.2f} % vs {m['scratch_test_acc']:.2f} %, same budget, test set)")
    verdict = (f"distillation bought {m['gain_points']:+.2f} points over the same student trained on labels only {how}"
               if m["gain_points"] > 0 else f"distillation bought nothing here: {m['gain_points']:+.2f} points against "
               f"the same student trained on labels only {how}")
    ctx.log(verdict)
    ctx.notes.append(verdict)
    if m.get("ships") == "scratch":
        note = (f"the labels-only student ships: it beat the distilled one on the validation split "
                f"({m['scratch_val_acc']:.2f} % vs {m['distilled_val_acc']:.2f} %, more than its noise of "
                f"{m['val_noise_points']:.2f} points); try another --recipe or a longer --epochs for distillation")
        ctx.log(note)
        ctx.notes.append(note)
        return _load_student(ctx, "student_scratch.pt"), result.artifacts[0].sha256, m
    return student, student_key, m


def prune_stage(ctx: Context, student, student_key: str):
    """Structured pruning of the distilled student, each step recovered by distillation."""
    from edgekd.models.checkpoint import save_portable
    from edgekd.prune import prune

    cfg = ctx.cfg
    # Global magnitude ranking, 3 steps, one KD-recovery epoch after each (edgekd prune's defaults).
    opts = {"ratio": cfg.prune, "importance": "magnitude", "scope": "global", "steps": 3, "recover_epochs": 1,
            "recovery": "kd", "recipe": "hinton", "batch_size": cfg.batch_size, "seed": cfg.seed}
    settings = {"student": student_key, "teacher": ctx.teacher_key, "data": ctx.data.describe(), **opts}

    def run() -> StageResult:
        ctx.log(f"pruning {cfg.prune:.0%} of the student's channels in {opts['steps']} steps, each recovered by "
                f"distillation from the teacher")
        res = prune(student, ctx.teacher, ctx.data, output_dir=ctx.run.path("prune"), progress=True, **opts)
        save_portable(res.model, ctx.run.path("student_pruned.pt"))
        ctx.log(f"pruned: MACs {res.macs_before:,} -> {res.macs_after:,}, val acc {res.accuracy_before or 0:.4f} -> "
                f"{res.accuracy_after or 0:.4f}" + (f", measured speed-up {res.speed['speedup']:.2f}x (PyTorch, host)"
                                                    if res.speed else ""))
        metrics = res.to_dict()
        return StageResult([Artifact("student-pruned", "student_pruned.pt", "pytorch", "fp32")], metrics)

    result, _ = ctx.run.run_stage("prune", settings, run, force=cfg.force)
    return _load_student(ctx, "student_pruned.pt"), result.artifacts[0].sha256


def _wanted_quantized(target) -> list[tuple[str, str]]:
    """int8 ONNX and TFLite always (the issue's baseline), plus every non-fp32 file the target ships or may ship
    (its precision candidates); a shipped .pte also gets its fp32 program (the reference its int8 is compared
    with). .pte and .mlpackage files are converted from the PyTorch student at their precision
    (edgekd.quantize.at_export)."""
    wanted = [("onnx", "int8"), ("tflite", "int8")]
    for ship in target.ships:
        extra = [("pte", "fp32")] if ship.format == "pte" else []
        for pair in [*extra, *((ship.format, p) for p in (ship.precision, *ship.candidates))]:
            if (pair[1] != "fp32" or pair[0] not in ("onnx", "tflite")) and pair not in wanted:
                wanted.append(pair)
    return wanted


def export_stage(ctx: Context, student, student_key: str) -> list[Artifact]:
    """fp32 ONNX + TFLite of student and teacher (parity checked), then the quantized files."""
    from edgekd.export import export_onnx, export_tflite

    cfg, run = ctx.cfg, ctx.run
    sample = ctx.data.test.x[:PARITY_SAMPLES]
    artifacts: list[Artifact] = []
    for who, model, key in (("student", student, student_key), ("teacher", ctx.teacher, ctx.teacher_key)):
        for fmt, fn in (("onnx", export_onnx), ("tflite", export_tflite)):
            name = f"{who}_fp32.{fmt}"
            if isinstance(model, FileTeacher):  # given as a file: it is its own reference, nothing to convert
                if fmt == model.format:
                    artifacts.append(_copy_teacher_file(ctx, model, name, key))
                else:
                    ctx.notes.append(f"The teacher was given as a .{model.format} file: no teacher .{fmt} is made.")
                continue

            def run_export(fn=fn, model=model, name=name, fmt=fmt, who=who) -> StageResult:
                ctx.log(f"exporting {who} to {fmt.upper()} (fp32) with a parity check on {len(sample)} test {ctx.data.noun}")
                rep = fn(model, sample, run.path(name))
                extra = {"export": rep.to_dict()}
                return StageResult([Artifact(f"{who} {fmt} fp32", name, fmt, "fp32", extra=extra)], {"parity": rep.parity})

            res, _ = run.run_stage(f"export-{who}-{fmt}", {"model": key, "fmt": fmt}, run_export, force=cfg.force)
            artifacts += res.artifacts

    calib = ctx.data.calibration(cfg.calib_samples, seed=cfg.seed)
    for fmt, precision in _wanted_quantized(ctx.target):
        artifacts.append(_quantize_one(ctx, student, student_key, fmt, precision, calib))
    return artifacts


def _copy_teacher_file(ctx: Context, teacher, name: str, key: str) -> Artifact:
    import shutil

    from edgekd.core import atomic_path

    def run_copy() -> StageResult:
        with atomic_path(ctx.run.path(name)) as tmp:
            shutil.copyfile(teacher.path, tmp)
        return StageResult([Artifact(f"teacher {teacher.format} fp32", name, teacher.format, "fp32",
                                     extra={"source": str(teacher.path)})])

    res, _ = ctx.run.run_stage(f"export-teacher-{teacher.format}", {"model": key, "copied": True}, run_copy,
                               force=ctx.cfg.force)
    return res.artifacts[0]


def _quantize_one(ctx: Context, student, student_key: str, fmt: str, precision: str, calib) -> Artifact:
    from edgekd.quantize import quantize

    cfg, run = ctx.cfg, ctx.run
    from edgekd.export.formats import FORMATS

    name = f"student_{precision}{FORMATS[fmt].suffix}"
    int8_io = ctx.target.kind == "npu" and fmt == "tflite"
    float_head = ctx.target.kind != "npu"  # NPUs run full-integer graphs: the logits layer too (quantize/float_head.py)
    settings = {"model": student_key, "fmt": fmt, "precision": precision, "calib_samples": cfg.calib_samples,
                "seed": cfg.seed, "max_drop": cfg.max_drop, "allow_drop": cfg.allow_drop, "int8_io": int8_io}
    if float_head and precision == "int8" and fmt in ("onnx", "tflite"):  # only then: the file differs from before
        settings["float_head"] = True
    coreml = None
    if fmt == "coreml":  # the target's input kind; an image input folds the run's data normalisation
        opts = ctx.target.coreml
        coreml = {"input": opts.input, "color_layout": opts.color_layout,
                  "normalisation": (ctx.data.mean, ctx.data.std)}
        settings["coreml"] = {**coreml, "normalisation": [ctx.data.mean, ctx.data.std]}
    per_channel = fmt != "onnx" or ctx.target.quantize.per_channel  # the target's [quantize] weights (ONNX QDQ)
    if not per_channel:  # only then: runs made before the setting existed keep their fingerprints
        settings["weights"] = ctx.target.quantize.weights
    qat = _qat_mode(cfg, fmt, precision)
    if qat != "off":  # only then: runs made before QAT existed keep their fingerprints
        settings.update(qat=qat, qat_epochs=cfg.qat_epochs, teacher=ctx.teacher_key)

    def run_quant() -> StageResult:
        ctx.log(f"quantizing the student to {precision} {fmt.upper()} ({len(calib)} real calibration {ctx.data.noun})")
        source = run.path(f"student_fp32{FORMATS[fmt].suffix}")
        val = ctx.data.val
        options = dict(format=fmt, mode=precision, calib=calib, eval_data=(val.x[:1000], None if val.y is None else val.y[:1000]),
                       max_drop=cfg.max_drop, allow_drop=cfg.allow_drop, int8_io=int8_io, float_head=float_head,
                       per_channel=per_channel,
                       eval_split=f"the validation split ({min(len(val), 1000)} {ctx.data.noun})",
                       **({"coreml": coreml} if coreml is not None else {}))
        if qat != "off":  # PTQ, float fallback, then QAT distilling from the teacher if the budget is still missed
            from edgekd.quantize.qat import quantize_qat

            train = ctx.data.train
            rep = quantize_qat(student, run.path(name), teacher=ctx.teacher, train_x=train.x, train_y=train.y,
                               qat=qat, epochs=cfg.qat_epochs, seed=cfg.seed, log=ctx.log, **options)
        else:
            rep = quantize(source, run.path(name), torch_model=student, **options)
        for w in rep.warnings:
            ctx.log(f"[yellow]warning:[/] {name}: {w}")
        extra = {"quantize": rep.to_dict(), "check": rep.check}  # the shipping rule reads "check"
        return StageResult([Artifact(f"student {fmt} {precision}", name, fmt, precision, extra=extra)])

    res, _ = run.run_stage(f"quantize-{fmt}-{precision}", settings, run_quant, force=cfg.force)
    return res.artifacts[0]  # QAT's figures: extra["quantize"]["qat"], and its note in report.md's notes


def _qat_mode(cfg, fmt: str, precision: str) -> str:
    """What --qat means for this file: off for what QAT does not train (not static int8 .onnx/.tflite), and
    off for auto without a budget (auto runs only when int8 + fallback misses --max-drop)."""
    qat = getattr(cfg, "qat", "off")
    if precision != "int8" or fmt not in ("onnx", "tflite") or (qat == "auto" and cfg.max_drop is None):
        return "off"
    return qat


def evaluate_stage(ctx: Context, student, artifacts: list[Artifact]) -> list[Artifact]:
    """Top-1 accuracy of every artifact (and of the PyTorch teacher and student) on the real test set."""
    from edgekd.export.formats import FORMATS
    from edgekd.runtime import load_runner

    cfg, run, test = ctx.cfg, ctx.run, ctx.data.test
    x, y = test.x, test.y
    if cfg.eval_samples:
        sub = test.subset(cfg.eval_samples, seed=0)
        x, y = sub.x, sub.y
    torch_rows = [Artifact("teacher", ctx.teacher_src.spec, "pytorch", "fp32"),
                  Artifact("student", "student.pt" if not cfg.prune else "student_pruned.pt", "pytorch", "fp32")]
    keys = {a.name: a.sha256 for a in artifacts}
    settings = {"artifacts": keys, "teacher": ctx.teacher_key, "n": len(x), "student": run.manifest["stages"].get("distill", {}).get("fingerprint")}

    labelled = y is not None

    def run_eval() -> StageResult:
        acc, with_student = {}, {}
        what = "accuracy" if labelled else "top-1 agreement with the teacher"
        ctx.log(f"measuring {what} of {len(artifacts) + 2} models on {len(x)} test {ctx.data.noun}")
        t_pred = load_runner(ctx.teacher).predict(x).argmax(axis=1)
        s_pred = load_runner(student).predict(x).argmax(axis=1)
        ref = y if labelled else t_pred  # without labels: agreement with the teacher's top-1, never accuracy
        acc["teacher"] = _percent(t_pred, ref)
        acc["student"] = _percent(s_pred, ref)
        for a in artifacts:
            if FORMATS[a.format].run is None:  # Core ML: no runtime on this machine; the report says so
                acc[a.name] = None
                continue
            pred = load_runner(run.path(a.path), threads=2).predict(x).argmax(axis=1)
            acc[a.name] = _percent(pred, ref)
            if not labelled and a.name.startswith("student"):
                with_student[a.name] = _percent(pred, s_pred)
        metrics = {"accuracy": acc, "n": len(x), "metric": "accuracy" if labelled else "agreement"}
        if with_student:
            metrics["agreement_with_student"] = with_student
        return StageResult([], metrics)

    res, _ = run.run_stage("evaluate", settings, run_eval, force=cfg.force)
    acc = res.metrics["accuracy"]
    with_student = res.metrics.get("agreement_with_student", {})
    out = []
    for a in torch_rows + artifacts:
        a.accuracy = round(acc.get(a.name), 2) if acc.get(a.name) is not None else None
        if a.name in with_student:
            a.extra["agreement_with_student"] = round(with_student[a.name], 2)
        out.append(a)
    return out


def _percent(pred, ref) -> float:
    return float((pred == ref).mean() * 100.0)


def profile_stage(ctx: Context, artifacts: list[Artifact]) -> list[Artifact]:
    """Every figure obtainable for each file. What the target ships: on the target (adb/ssh device, else
    the host labelled so; HTP simulator; Vela), plus the qemu ARM estimate where the target has one, plus
    a host measurement of the same file for offline NPU targets (they give no CPU time). fp32 references
    and other files: the host CPU. Compiled NPU files (QNN context binary, Vela .tflite) land in npu/."""
    from pathlib import Path

    from edgekd.profile import profile
    from edgekd.targets import load_target

    cfg, run = ctx.cfg, ctx.run
    host = load_target("host")
    sample = ctx.data.test.x[:32]  # row 0 is timed; NPU backends calibrate and compare outputs on the rows
    # Host rows use the CPU target's thread count too, so fp32 / int8 / teacher rows compare like for like.
    host_threads = cfg.threads or (min(ctx.target.threads, os.cpu_count() or 1) if ctx.target.kind == "cpu" else None)
    for a in artifacts:
        if a.format not in ("onnx", "tflite", "pte", "coreml"):
            continue
        # decided by edgekd.pipeline.shipping before profiling; precision candidates get the target's figures too
        shipped = bool(a.extra.get("shipped") or a.extra.get("precision_candidate"))
        tgt = ctx.target if shipped else host
        also_host = shipped and ctx.target.connection.kind == "offline"
        emulate = "auto" if shipped else False
        threads = cfg.threads if shipped else host_threads
        settings = {"file": a.sha256, "target": tgt.to_dict(), "runs": cfg.runs, "threads": threads,
                    "sample": len(sample), "emulate": emulate, "also_host": also_host}

        def run_profile(a=a, tgt=tgt, also_host=also_host, emulate=emulate, threads=threads) -> StageResult:
            ctx.log(f"profiling {a.name} on {tgt.name}")
            rep = profile(run.path(a.path), tgt, sample=sample, runs=cfg.runs, threads=threads, emulate=emulate,
                          output_dir=run.path("npu"))
            d = rep.to_dict()
            if also_host:
                ctx.log(f"profiling {a.name} on the host CPU too")
                d["results"] += profile(run.path(a.path), host, sample=sample, runs=cfg.runs,
                                        threads=cfg.threads).results
            kept = []  # compiled NPU files: kept as stage artifacts so a rerun checks they still exist
            for r in d["results"]:
                files = list(r.get("context_files") or []) + ([r["compiled_file"]] if r.get("compiled_file") else [])
                r["compiled_files"] = [run.rel(f) for f in files]
                kept += [Artifact(f"{a.name} compiled for {tgt.name}", f, Path(f).suffix.lstrip("."), a.precision)
                         for f in files]
            primary = d["results"][rep.results.index(rep.primary)] if rep.primary else None
            return StageResult(kept, {"profile": d, "primary": primary})

        res, _ = run.run_stage(f"profile-{a.path}", settings, run_profile, force=cfg.force)
        prof = res.metrics["profile"]
        primary = res.metrics.get("primary")
        others = [r for r in prof["results"] if r != primary]
        a.latency = {**primary, "target": tgt.name} if primary else None
        for key in ("other_latencies", "compiled_files", "budgets", "profile_notes"):
            a.extra.pop(key, None)  # an artifact reused from an earlier run (another target) carries old ones
        if others:
            a.extra["other_latencies"] = [{**r, "target": host.name if r.get("backend") == "host" else tgt.name}
                                          for r in others]
        compiled = [f for r in prof["results"] for f in r.get("compiled_files", [])]
        if compiled:
            a.extra["compiled_files"] = compiled
        if prof.get("budgets"):
            a.extra["budgets"] = prof["budgets"]  # pass / fail / skip per result; host stand-ins never pass
        if prof.get("notes"):
            a.extra["profile_notes"] = prof["notes"]
        a.extra["profiled_on"] = tgt.name
    return artifacts


def describe(ctx: Context, student, artifacts: list[Artifact]) -> dict[str, Any]:
    """The report's classifier sections: data, teacher, student, distillation, baseline, and its notes."""
    from edgekd.models import count_macs_params

    shape = ctx.data.input_shape
    t_macs, t_params = count_macs_params(ctx.teacher, shape)
    s_macs, s_params = count_macs_params(student, shape)
    distill_metrics = ctx.run.manifest["stages"].get("distill", {}).get("metrics", {})
    quant = [(a.name, (a.extra or {}).get("quantize", {})) for a in artifacts]
    notes = [f"{name}: {n}" for name, q in quant for n in q.get("notes", [])]
    notes += [f"warning: {name}: {w}" for name, q in quant for w in q.get("warnings", [])]
    # what a shipped Core ML package takes: "image GRAYSCALE|RGB|BGR" (raw 0..255 pixels) or "NCHW" (the tensor)
    coreml = sorted({q["input_layout"] for a, (_, q) in zip(artifacts, quant)
                     if a.format == "coreml" and a.extra.get("shipped") and q.get("input_layout")})
    return {
        "data": {**ctx.data.describe(), **({"coreml_input": coreml} if coreml else {})},
        "teacher": {"spec": ctx.teacher_src.spec, "weights": ctx.teacher_src.weights, "macs": t_macs, "params": t_params},
        "student": {"spec": ctx.student_src.spec, "macs": s_macs, "params": s_params,
                    "teacher_macs_over_student": round(t_macs / max(1, s_macs), 2),
                    **({"derived": ctx.student_src.info} if ctx.student_src.info else {}),
                    **({"search": search} if (search := ctx.run.manifest["stages"].get("student-search", {})
                                              .get("metrics")) and ctx.cfg.student == "auto" else {})},
        "distill": {"recipe": ctx.cfg.recipe, "epochs": ctx.cfg.epochs, "seed": ctx.cfg.seed,
                    **{k: distill_metrics[k] for k in DISTILL_KEYS if k in distill_metrics},
                    "curve": _curve(distill_metrics),
                    **({"chosen": distill_metrics["recipe"]} if "recipe" in distill_metrics else {})},
        "baseline": ctx.run.manifest["stages"].get("baseline", {}).get("metrics"),
        "notes": notes,
        **_metric_names(ctx, artifacts),
    }


def _metric_names(ctx: Context, artifacts: list[Artifact]) -> dict[str, Any]:
    """Unlabeled data: the report's column and its figures are agreement with the teacher, named so; and each
    exported file's top-1 agreement with the PyTorch student it was made from."""
    if ctx.data.labelled:
        return {}
    from edgekd.modalities.classifier.unlabeled import COLUMN, METRIC

    return {"accuracy_metric": f"{METRIC} on {len(ctx.data.test)} held-out views, x100 (the data has no labels)",
            "accuracy_column": COLUMN,
            "agreement_with_student": {a.name: a.extra["agreement_with_student"] for a in artifacts
                                       if a.extra.get("agreement_with_student") is not None}}


# the distillation figures report.json carries (what was trained, under which budget, how it was validated)
DISTILL_KEYS = ("best_val_acc", "best_epoch", "teacher_val_acc", "val_metric", "seconds", "auto", "time_budget_s",
                "budget_used_s", "planned_steps", "stopped", "steps", "train_samples", "views", "pseudo_labels")


def _curve(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per epoch of the final training run: train loss and its terms, held-out loss and accuracy."""
    keep = ("epoch", "steps", "train_loss", "parts", "val_acc", "val_loss")
    return [{k: e[k] for k in keep if k in e} for e in metrics.get("epochs") or [] if isinstance(e, dict)]
