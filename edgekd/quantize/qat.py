"""Quantization-aware training, the step after post-training int8 and float fallback.

When static int8 misses the --max-drop budget even with the most sensitive layers kept in float (api.py),
`quantize_qat` fine-tunes the student with fake quantization and distils from the teacher meanwhile, then
quantizes the tuned weights with the same quantizer as before (ONNX Runtime's static QDQ, ai-edge-quantizer's
full int8 for TFLite: same calibration, same fallback search, same checks) and ships whichever file loses less.

Fake quantization is PT2E: `torch.export` of the student in train mode, `prepare_qat_pt2e` (torchao) with
ExecuTorch's XNNPACKQuantizer set to the scheme the format's quantizer writes: int8 per-channel symmetric
weights ([-127, 127]; ONNX with reduce_range, for x86 CPUs without VNNI: 7-bit, [-64, 64], as onnx_quant.py writes
them), int8
per-tensor affine activations, conv + batch-norm folded as the converters fold them. The loss is Hinton KD
(edgekd.distill.losses.KDLoss) against the teacher's logits, computed once per training sample (the teacher
never changes), plus cross-entropy when the data has labels. For the last third of the steps the observers
and the batch-norm statistics are frozen (the usual QAT schedule), so the ranges the weights were tuned
against stop moving.

The int8 file is not the converted PT2E graph: the tuned float weights go back into the student and through
the format's own quantizer, so the QAT file has exactly the PTQ file's structure (I/O types, ops left float
for the runtime) and the activation ranges are recalibrated on the calibration samples. Under a budget the
float-fallback search runs again on the tuned weights when QAT alone is not enough. Every drop is measured
against the original float model on the same held-out data.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.core import atomic_path
from edgekd.errors import EdgeKDError
from edgekd.quantize.evaluation import Scorer
from edgekd.quantize.report import QuantReport

QAT_CHOICES = ("off", "auto", "on")
DEFAULT_EPOCHS = 2
DEFAULT_LR = 5e-4  # Adam; fine-tuning a trained model: a tenth of a from-scratch LR
DEFAULT_BATCH = 64
DEFAULT_SAMPLES = 20_000  # training samples fine-tuned on (a seeded subset, the same every epoch)
FREEZE_AT = 2 / 3  # fraction of the steps after which observers and batch-norm statistics are frozen
BN_CHOICES = ("train", "frozen")  # batch-norm statistics: updated until FREEZE_AT, or the model's own throughout
TEMPERATURE, ALPHA = 4.0, 0.7  # KD soft term weight alpha, CE (labels) 1 - alpha


def check_qat_inputs(qat: str, *, teacher: Any, train_x, max_drop, mode: str, fmt: str) -> None:
    """One-line errors for what QAT cannot run on (the CLI calls this before loading anything heavy)."""
    if qat not in QAT_CHOICES:
        raise EdgeKDError(f"--qat '{qat}' is not one of {', '.join(QAT_CHOICES)}")
    if qat == "off":
        return
    if fmt not in ("onnx", "tflite"):
        raise EdgeKDError(f"--qat writes .onnx or .tflite files, not .{fmt}")
    if mode != "int8":
        raise EdgeKDError(f"--qat fine-tunes for static int8; --mode {mode} has no fake quantization to train with")
    if teacher is None:
        raise EdgeKDError("--qat distils from a teacher during fine-tuning: give --teacher (the student itself "
                          "works as its own teacher)")
    if train_x is None or len(train_x) < 2:
        raise EdgeKDError("--qat needs real training data (at least 2 samples) to fine-tune on")
    if qat == "auto" and max_drop is None:
        raise EdgeKDError("--qat auto runs only when int8 misses the accuracy budget: give --max-drop POINTS "
                          "(or --qat on)")


def quantize_qat(student, out_path, *, teacher, train_x: np.ndarray, train_y: np.ndarray | None = None,
                 qat: str = "auto", epochs: int = DEFAULT_EPOCHS, lr: float = DEFAULT_LR,
                 batch_size: int = DEFAULT_BATCH, samples: int = DEFAULT_SAMPLES, seed: int = 0, bn: str = "train",
                 log=None, **quant: Any) -> QuantReport:
    """Quantize the nn.Module `student` into out_path (.onnx / .tflite) as api.quantize does, then, when
    `qat` is "on", or "auto" and post-training int8 + float fallback misses `max_drop`, fine-tune it with
    fake quantization distilling from `teacher` (an nn.Module or a model file) on train_x (train_y optional),
    quantize the tuned weights the same way and keep the file that loses less against the original float model.

    quant: api.quantize's keyword arguments (mode, calib, eval_data, max_drop, allow_drop, eval_split, ...).
    report.qat records the drop after PTQ, after PTQ + fallback, after QAT, and QAT's seconds.
    bn: "frozen" keeps the model's batch-norm statistics (eval-mode batch norm) from the first step, for
    fine-tuning a pretrained model on small batches or few images, whose batch statistics are not the model's.
    """
    from torch import nn

    from edgekd.quantize.api import quantize

    t0 = time.perf_counter()
    out = Path(out_path)
    fmt = out.suffix.lower().lstrip(".")
    max_drop, allow_drop = quant.pop("max_drop", None), bool(quant.pop("allow_drop", False))
    mode = quant.get("mode", "int8")
    check_qat_inputs(qat, teacher=teacher, train_x=train_x, max_drop=max_drop, mode=mode, fmt=fmt)
    if qat == "off":
        return quantize(student, out, max_drop=max_drop, allow_drop=allow_drop, **quant)
    if not isinstance(student, nn.Module):
        raise EdgeKDError("--qat fine-tunes the PyTorch model: give a model spec (and --weights), not a float file")
    if quant.get("eval_data") is None:
        raise EdgeKDError("--qat needs held-out data to measure what int8 loses")
    if epochs < 1 or batch_size < 2 or samples < 2 or lr <= 0:
        raise EdgeKDError(f"--qat-epochs, batch and samples must be positive (epochs {epochs}, batch {batch_size}, "
                          f"samples {samples}, lr {lr})")
    if bn not in BN_CHOICES:
        raise EdgeKDError(f"QAT batch norm '{bn}' is not one of {', '.join(BN_CHOICES)}")
    say = log or (lambda m: None)
    train_x = np.asarray(train_x, dtype=np.float32)
    return _run(student, out, teacher, train_x, train_y, qat, dict(epochs=epochs, lr=lr, batch_size=batch_size,
                                                                   samples=samples, seed=seed, bn=bn), say,
                max_drop, allow_drop, quant, t0)


def _run(student, out: Path, teacher, train_x, train_y, qat, train: dict, say, max_drop, allow_drop, quant,
         t0) -> QuantReport:
    from edgekd.quantize.api import _float_file, quantize

    fmt = out.suffix.lower().lstrip(".")
    with tempfile.TemporaryDirectory(prefix="edgekd-qat-") as d:
        work = Path(d)
        calib = quant.get("calib")
        sample = calib if calib is not None else quant["eval_data"][0]
        float_path = _float_file(student, fmt, sample, work, quant.get("nhwc", True))
        say(f"post-training int8 {fmt.upper()}" + (f" (float fallback under --max-drop {max_drop})" if max_drop is not None
                                                   else ""))
        ptq = quantize(float_path, work / f"ptq.{fmt}", max_drop=max_drop, allow_drop=True, **quant)
        figures = _ptq_figures(ptq)
        scorer = Scorer(float_path, *quant["eval_data"], "")  # every figure against the original float file
        if qat == "auto" and ptq.budget_met:
            ptq.qat = {"mode": qat, "ran": False, **figures,
                       "why": f"post-training int8{' + float fallback' if ptq.kept_float else ''} met the "
                              f"--max-drop {max_drop} budget"}
            ptq.notes.append(f"quantization-aware training not run: {ptq.qat['why']}")
            return _ship(ptq, work / f"ptq.{fmt}", out, t0, source="the PyTorch model")
        say(f"quantization-aware training: {train['epochs']} epoch(s) of up to {min(train['samples'], len(train_x))} "
            "samples, KD from the teacher")
        t_qat = time.perf_counter()
        tuned, info = finetune(student, teacher, train_x, train_y, fmt=fmt, **train,
                               per_channel=quant.get("per_channel", True),
                               reduce_range=_reduce_range(fmt, quant))
        figures["seconds"] = round(time.perf_counter() - t_qat, 2)
        say(f"int8 {fmt.upper()} of the QAT-tuned weights")
        tuned_rep, qat_file = _quantize_tuned(tuned, scorer, figures, work, fmt, sample, max_drop, quant)
        use_qat = figures["qat_drop"] <= figures["fallback_drop"]
        rep = _merge(tuned_rep, ptq, scorer, qat_file, figures) if use_qat else ptq
        f = figures
        rep.notes.append(f"quantization-aware training ({f['seconds']} s): drop after int8 {f['ptq_drop']}, after int8 + "
                         f"float fallback {f['fallback_drop']} ({f['fallback_kept_float']} layer(s) float), after QAT "
                         f"{f['qat_drop']} ({f['qat_kept_float']} float) points against the float file; shipped: "
                         + ("the QAT file" if use_qat else "the post-training file (QAT was no better)"))
        _budget_verdict(rep, figures, max_drop, allow_drop)
        rep.qat = {"mode": qat, "ran": True, **figures, "shipped": "qat" if use_qat else "ptq+fallback", **info,
                   "why": "--qat on" if qat == "on" else f"post-training int8 + fallback lost "
                                                         f"{figures['fallback_drop']} points, over --max-drop {max_drop}"}
        return _ship(rep, qat_file if use_qat else work / f"ptq.{fmt}", out, t0, source="the PyTorch model")


def _quantize_tuned(tuned, scorer, figures: dict, work: Path, fmt: str, sample, max_drop, quant: dict):
    """The QAT-tuned weights through the same quantizer; under a budget the float-fallback search runs again, its
    stopping rule moved by what the tuned float model itself gained or lost (the budget is against the original
    float model, and every figure here is measured against it)."""
    from edgekd.quantize.api import _float_file, quantize

    eval_data = quant["eval_data"]
    (work / "tuned").mkdir()
    tuned_float = _float_file(tuned, fmt, sample, work / "tuned", quant.get("nhwc", True))
    ref = figures["reference"]
    figures["qat_float_drop"] = round(ref - scorer.score(tuned_float), 3)
    budget = None if max_drop is None else round(max_drop - figures["qat_float_drop"], 3)
    if budget is not None and budget < 100.0 / len(eval_data[0]):  # finer than one sample: no search
        budget = None
    qat_file = work / f"qat.{fmt}"
    rep = quantize(tuned_float, qat_file, max_drop=budget, allow_drop=True, **quant)
    first = work / f"qat_all_int8.{fmt}"
    if rep.kept_float:  # the all-int8 QAT file's own figure: what QAT alone recovered
        quantize(tuned_float, first, max_drop=None, allow_drop=True, **quant)
    figures["qat_all_int8_drop"] = round(ref - scorer.score(first if rep.kept_float else qat_file), 3)
    figures["qat_accuracy"] = scorer.score(qat_file)
    figures["qat_drop"] = round(ref - figures["qat_accuracy"], 3)
    figures["qat_kept_float"] = len(rep.kept_float)
    return rep, qat_file


def _merge(rep: QuantReport, ptq: QuantReport, scorer, qat_file: Path, figures: dict) -> QuantReport:
    """The QAT file's report, its scores against the original float model, the PTQ search before it."""
    rep.search = ptq.search + [{**c, "qat": True} for c in rep.search]
    rep.sensitivity = ptq.sensitivity + [{**r, "qat": True} for r in rep.sensitivity]
    rep.accuracy_float = ptq.accuracy_float
    rep.accuracy = figures["qat_accuracy"] if ptq.accuracy_float is not None else None
    rep.drop_points = figures["qat_drop"]
    rep.agreement = scorer.agreement(qat_file)
    rep.evaluation = ptq.evaluation
    rep.parity["against"] = "the QAT-tuned float weights"
    return rep


def _budget_verdict(rep: QuantReport, figures: dict, max_drop, allow_drop: bool) -> None:
    """The budget against the original float model, for whichever file ships; over it: an error (nothing is
    written) unless allow_drop."""
    rep.max_drop = max_drop
    if max_drop is None:
        return
    rep.budget_met = rep.drop_points <= max_drop
    if not rep.budget_met and not allow_drop:
        raise EdgeKDError(f"int8 loses {figures['ptq_drop']:.2f} points, {figures['fallback_drop']:.2f} with "
                          f"{figures['fallback_kept_float']} layer(s) kept in float, {figures['qat_drop']:.2f} after "
                          f"quantization-aware training ({figures['seconds']} s): over the --max-drop {max_drop} "
                          "budget. Use --allow-drop to keep the best anyway")
    rep.warnings = [w for w in rep.warnings if "over the" not in w]
    if not rep.budget_met:
        rep.warnings.append(f"the int8 file loses {rep.drop_points} points, over the --max-drop {max_drop} budget "
                            "even after quantization-aware training; kept because of --allow-drop")
    rep.check = {"passed": bool(rep.budget_met), "what": f"--max-drop {max_drop} budget", "allowed": allow_drop}


def _ptq_figures(ptq: QuantReport) -> dict:
    ref = ptq.accuracy_float if ptq.accuracy_float is not None else 100.0
    first = ptq.search[0]["accuracy"] if ptq.search else None
    return {"reference": ref, "measure": ptq.evaluation.get("measure"),
            "ptq_drop": None if first is None else round(ref - first, 3),
            "fallback_drop": ptq.drop_points, "fallback_kept_float": len(ptq.kept_float)}


def _ship(rep: QuantReport, src: Path, out: Path, t0: float, *, source: str) -> QuantReport:
    from edgekd.inspect import count_ops

    with atomic_path(out) as tmp:
        shutil.copyfile(src, tmp)
    rep.path, rep.source = str(out), source
    rep.ops = count_ops(out)
    rep.size_bytes = out.stat().st_size
    rep.seconds = round(time.perf_counter() - t0, 2)
    return rep


def _reduce_range(fmt: str, quant: dict) -> bool:
    """Whether the int8 file will have 7-bit weights (the same decision as quantize(): api.py)."""
    from edgekd.quantize.onnx_quant import reduce_range_needed

    if fmt != "onnx" or quant.get("mode", "int8") != "int8":
        return False
    asked = quant.get("reduce_range")
    return bool(asked) if asked is not None else reduce_range_needed()[0]


def _quantizer(fmt: str, per_channel: bool = True, reduce_range: bool = False):
    """PT2E fake quantization matching what the format's int8 quantizer writes (TFLite: always per-channel)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    wmin, wmax = (-64, 64) if fmt == "onnx" and reduce_range else (-127, 127)  # onnx_quant's reduce_range: 7-bit
    per_channel = per_channel or fmt != "onnx"
    cfg = get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=True, weight_qmin=wmin,
                                            weight_qmax=wmax)
    what = "per-channel" if per_channel else "per-tensor"
    return XNNPACKQuantizer().set_global(cfg), f"int8 {what} symmetric weights [{wmin}, {wmax}], int8 " \
                                               "per-tensor affine activations (PT2E, XNNPACKQuantizer)"


def finetune(student, teacher, x: np.ndarray, y: np.ndarray | None, *, fmt: str, epochs: int = DEFAULT_EPOCHS,
             lr: float = DEFAULT_LR, batch_size: int = DEFAULT_BATCH, samples: int = DEFAULT_SAMPLES,
             seed: int = 0, per_channel: bool = True, reduce_range: bool = False, bn: str = "train") -> tuple[Any, dict]:
    """A copy of `student` fine-tuned with fake quantization (PT2E QAT) and KD from `teacher`; the student
    itself is not modified. Returns (tuned nn.Module in eval mode, what was done)."""
    import torch

    from edgekd.distill.losses import KDLoss
    from edgekd.runtime import load_runner
    from torchao.quantization.pt2e import (
        disable_observer,
        move_exported_model_to_eval,
        move_exported_model_to_train,
    )
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = min(samples, len(x))
    batch = min(batch_size, n)
    tuned = copy.deepcopy(student).float().cpu().train()  # export shares tensors with its module: work on a copy
    pick = np.sort(rng.permutation(len(x))[:n])  # one seeded subset: the teacher runs once per sample
    x = np.ascontiguousarray(x[pick])
    y = None if y is None else np.asarray(y)[pick].astype(np.int64)
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            teacher_logits = load_runner(teacher).predict(x).astype(np.float32)
    except EdgeKDError:
        raise
    except Exception as exc:
        raise EdgeKDError(f"the teacher does not run on the training data: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]}") from None
    teacher_seconds = time.perf_counter() - t0
    example = (torch.from_numpy(x[:batch]),)
    quantizer, scheme = _quantizer(fmt, per_channel, reduce_range)
    try:
        graph = torch.export.export(tuned, example).module()
        prepared = prepare_qat_pt2e(graph, quantizer)
    except Exception as exc:
        raise EdgeKDError(f"QAT preparation (torch.export + prepare_qat_pt2e) failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]}") from None
    loss_fn = KDLoss(TEMPERATURE, ALPHA if y is not None else 1.0)
    opt = torch.optim.Adam([p for p in prepared.parameters() if p.requires_grad], lr=lr)
    steps_per_epoch = n // batch
    total = steps_per_epoch * epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total, 1))
    freeze_step = int(total * FREEZE_AT)
    if bn == "frozen":  # eval-mode batch norm (and dropout) throughout; the observers still follow the data
        move_exported_model_to_eval(prepared)
    else:
        move_exported_model_to_train(prepared)
    losses, step = [], 0
    for _ in range(epochs):
        order = rng.permutation(n)
        run = 0.0
        for b in range(steps_per_epoch):
            if step == freeze_step:  # observers and BN statistics stop moving; weights keep learning
                prepared.apply(disable_observer)
                if bn != "frozen":
                    move_exported_model_to_eval(prepared)
            idx = order[b * batch : (b + 1) * batch]
            xb = torch.from_numpy(x[idx])
            tb = torch.from_numpy(teacher_logits[idx])
            yb = None if y is None else torch.from_numpy(y[idx])
            loss = loss_fn(prepared(xb), tb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run += float(loss.detach())
            step += 1
        losses.append(round(run / max(steps_per_epoch, 1), 5))
    move_exported_model_to_eval(prepared)
    _load_tuned(tuned, prepared)
    tuned.eval()
    info = {"epochs": epochs, "samples_per_epoch": n, "steps": step, "batch_size": batch, "lr": lr,
            "optimizer": "Adam, cosine decay", "loss": f"KD T={TEMPERATURE} alpha={ALPHA if y is not None else 1.0}"
            + (" + CE on labels" if y is not None else " (no labels: soft term only)"),
            "frozen_after_step": freeze_step, "batch_norm": "the model's statistics throughout (frozen)" if bn ==
            "frozen" else f"batch statistics, running ones frozen after step {freeze_step}", "epoch_loss": losses, "scheme": scheme,
            "teacher_seconds": round(teacher_seconds, 2)}
    return tuned, info


def _load_tuned(module, prepared) -> None:
    """Copy the trained weights and batch-norm statistics of the PT2E graph back into the nn.Module: the graph
    keeps the module's parameter names; the observers' state (activation_post_process_*) has no counterpart."""
    import torch

    have = prepared.state_dict()
    missing = []
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name in have:
                t.copy_(have[name])
            elif not name.endswith("num_batches_tracked"):
                missing.append(name)
    if missing:
        raise EdgeKDError(f"QAT could not map {len(missing)} tensor(s) back to the model (e.g. {missing[0]})")
