"""`edgekd quantize MODEL --data D --output PATH [--mode int8] [--max-drop POINTS]`."""

from pathlib import Path
from typing import Optional

import typer

from edgekd.commands.data_options import IMAGE_SIZE, NORMALIZE, load_cli_data


def quantize_cmd(
    model: str = typer.Argument(..., help="float .onnx / .tflite file, or a model spec (built-in name, 'pkg.module:factory', .pt2)"),
    output: Path = typer.Option(..., "--output", "-o", help="quantized file to write (.onnx or .tflite; .pte int8 and "
                                "Core ML .mlpackage fp16/int8 are converted from a model spec at that precision)"),
    data: str = typer.Option("auto", "--data", "-d", help="real data for calibration and accuracy: fashion-mnist, digits, image folder or .npz; without labels (images without class sub-folders, an .npz with only x) agreement with the float model is measured instead"),
    image_size: Optional[str] = IMAGE_SIZE,
    normalize: str = NORMALIZE,
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", help="state_dict checkpoint for a model spec"),
    mode: str = typer.Option("int8", "--mode", "-m", help="int8 | dynamic | fp16 (TFLite) | int16x8 (TFLite)"),
    method: str = typer.Option("minmax", "--method", help="int8 calibration: minmax | entropy | percentile (ONNX)"),
    calib_samples: int = typer.Option(256, "--calib-samples", help="real training images used for calibration"),
    int8_io: bool = typer.Option(False, "--int8-io", help="TFLite int8: int8 input/output tensors (NPUs, MCUs)"),
    per_channel: Optional[bool] = typer.Option(None, "--per-channel/--per-tensor", help="int8 weight scales per output "
                                               "channel or per tensor (ONNX; default: the --target file's [quantize] "
                                               "weights, else per-channel)"),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="built-in target or .toml file whose [quantize] "
                                         "settings apply (weights = \"per-tensor\")"),
    reduce_range: Optional[bool] = typer.Option(None, "--reduce-range/--no-reduce-range", help="ONNX int8: 7-bit "
                                                "weights, needed only by x86 CPUs without VNNI (default: decided for "
                                                "this machine's CPU)"),
    bias_correction: bool = typer.Option(True, "--bias-correction/--no-bias-correction", help="int8: take the mean "
                                         "output shift of each layer's weight rounding out of its bias"),
    float_head: Optional[bool] = typer.Option(None, "--float-head/--int8-head", help="int8: float logits: the layer "
                                              "producing the output (last Gemm/MatMul/FULLY_CONNECTED) keeps int8 "
                                              "weights but does not requantize its output (default with float I/O; "
                                              "--int8-head for full-integer graphs)"),
    max_drop: Optional[float] = typer.Option(None, "--max-drop", help="allowed top-1 loss in points on held-out data; keeps sensitive layers in float to meet it"),
    allow_drop: bool = typer.Option(False, "--allow-drop", help="keep the best file even when --max-drop cannot be met (exit 0, with a warning)"),
    eval_samples: int = typer.Option(1000, "--eval-samples", help="held-out images scored (the test split when the data has one, else validation)"),
    seed: int = typer.Option(0, "--seed", help="seed for the data split and calibration sample"),
    qat: bool = typer.Option(False, "--qat", help="quantization-aware training when int8 is not enough: with --max-drop "
                             "only if int8 + float fallback misses it, without it always; fine-tunes a model spec with "
                             "fake quantization, distilling from --teacher, then writes the real int8 file"),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="--qat: the teacher distilled from (model spec, .pt2, a "
                                          "trained .onnx/.tflite file, or 'self': the float model itself)"),
    teacher_weights: Optional[Path] = typer.Option(None, "--teacher-weights", help="--qat: the teacher's state_dict"),
    qat_epochs: int = typer.Option(2, "--qat-epochs", help="--qat: fine-tuning epochs"),
    qat_samples: int = typer.Option(20000, "--qat-samples", help="--qat: training samples fine-tuned on"),
    qat_lr: float = typer.Option(5e-4, "--qat-lr", help="--qat: Adam learning rate (cosine decay)"),
    qat_bn: str = typer.Option("train", "--qat-bn", help="--qat: batch norm: train (batch statistics until the last "
                               "third) | frozen (the model's own statistics throughout: a pretrained model, few images)"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Quantize to int8 / dynamic / fp16, calibrated on real data, optionally within an accuracy budget."""
    from edgekd.errors import UsageError
    from edgekd.quantize import quantize

    if calib_samples < 1 or eval_samples < 1:
        raise UsageError("--calib-samples and --eval-samples must be at least 1")
    source = Path(model)
    if per_channel is None:
        per_channel = _target_per_channel(target, output)
    if qat:
        _check_qat_options(source, output, mode, teacher)
    bundle = load_cli_data(data, seed=seed, image_size=image_size, normalize=normalize, need_labels=False)
    if source.suffix.lower() in (".pte", ".mlpackage"):
        raise UsageError(f"{source.name}: .pte and .mlpackage files are quantized while converting; give the PyTorch "
                         "model spec (and --weights) instead")
    if source.suffix.lower() in (".onnx", ".tflite"):
        src = source
    else:
        from edgekd.models import load_model
        from edgekd.models.factory import is_registered

        if not bundle.labelled and is_registered(model):
            raise UsageError(f"a built-in model needs its class count: {bundle.where} has no labels; give the "
                             "float .onnx / .tflite file or labelled data")
        src = load_model(model, str(weights) if weights else None, in_channels=bundle.input_shape[0],
                         num_classes=bundle.num_classes or 10)
    held, split = bundle.held_out()
    n = min(eval_samples, len(held))
    eval_data = (held.x[:n], None if held.y is None else held.y[:n])
    options = dict(mode=mode, calib=bundle.calibration(calib_samples, seed=seed), method=method,
                   per_channel=per_channel, int8_io=int8_io, eval_data=eval_data, max_drop=max_drop,
                   reduce_range=reduce_range, bias_correction=bias_correction, float_head=float_head,
                   allow_drop=allow_drop, calib_samples=calib_samples,
                   eval_split=split if n == len(held) else f"the first {n} of {split}")
    if qat:
        from edgekd.quantize.qat import quantize_qat

        rep = quantize_qat(src, output, teacher=_teacher(teacher, teacher_weights, src, bundle),
                           train_x=bundle.train.x, train_y=bundle.train.y, qat="auto" if max_drop is not None else "on",
                           epochs=qat_epochs, samples=qat_samples, lr=qat_lr, seed=seed, bn=qat_bn,
                           log=lambda m: typer.echo(f"edgekd {m}", err=True), **options)
    else:
        rep = quantize(src, output, **options)
    for w in rep.warnings:  # stderr, so --json output stays parseable
        typer.echo(f"warning: {w}", err=True)
    if json_out:
        import json

        print(json.dumps(rep.to_dict(), indent=2, default=str))
        return
    _print_report(rep, output)


def _print_report(rep, output: Path) -> None:
    """The human-readable report: a one-row table, then what was evaluated, kept in float, noted and timed."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{output} ({rep.format} {rep.precision})")
    for c in ("float acc %", "quant acc %", "top-1 agree %", "drop pts", "budget", "check", "kept float", "size KiB",
              "float KiB"):
        t.add_column(c, justify="right")
    f = lambda v, nd=2: "-" if v is None else f"{v:.{nd}f}"  # noqa: E731
    budget = "-" if rep.max_drop is None else ("met" if rep.budget_met else "NOT met")
    t.add_row(f(rep.accuracy_float), f(rep.accuracy), f(rep.agreement.get("top1")), f(rep.drop_points), budget,
              "passed" if rep.check.get("passed") else "FAILED", str(len(rep.kept_float)),
              f"{rep.size_bytes / 1024:.1f}", f"{(rep.float_size_bytes or 0) / 1024:.1f}")
    con = Console()
    con.print(t)
    ev = rep.evaluation
    con.print(f"  evaluated on {ev.get('on') or 'nothing'} ({ev.get('why')}); calibrated on {rep.calib_samples} "
              "training samples", highlight=False)
    for name in rep.kept_float:
        con.print(f"  kept in float: {name}", highlight=False)
    for note in rep.notes:
        con.print(f"  note: {note}", highlight=False)
    if rep.qat:
        con.print(f"  {_qat_line(rep.qat)}", highlight=False)
    if rep.latency:
        lat = rep.latency
        con.print(f"  latency p50 (measured, host, 1 thread): float {lat['float']['p50_ms']:.3f} ms, all-int8 "
                  f"{lat['int8_all']['p50_ms']:.3f} ms, shipped {lat['shipped']['p50_ms']:.3f} ms "
                  f"(x{lat['shipped_vs_int8_all']} of all-int8)", highlight=False)


def _target_per_channel(target: Optional[str], output: Path) -> bool:
    """The --target file's [quantize] weights (per-channel without a target)."""
    if target is None:
        return True
    from edgekd.errors import UsageError
    from edgekd.targets import load_target

    opts = load_target(target).quantize
    if not opts.per_channel and output.suffix.lower() != ".onnx":
        raise UsageError(f"target {target}: [quantize] weights = {opts.weights!r} applies to .onnx files, not "
                         f"{output.name}")
    return opts.per_channel


def _check_qat_options(source: Path, output: Path, mode: str, teacher: Optional[str]) -> None:
    """One-line errors for --qat before any data or model is loaded."""
    from edgekd.errors import UsageError

    if source.suffix.lower() in (".onnx", ".tflite"):
        raise UsageError(f"--qat fine-tunes the PyTorch model: give its model spec (and --weights), not {source.name}")
    if not teacher:
        raise UsageError("--qat distils from a teacher during fine-tuning: give --teacher SPEC (or --teacher self)")
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("onnx", "tflite"):
        raise UsageError(f"--qat writes .onnx or .tflite files, not {output.name}")
    if mode != "int8":
        raise UsageError(f"--qat fine-tunes for static int8, not --mode {mode}")


def _teacher(spec: str, weights: Optional[Path], student, bundle):
    if spec == "self":  # self-distillation: the int8 student learns to match its float self
        return student
    from edgekd.models import load_model

    return load_model(spec, str(weights) if weights else None, in_channels=bundle.input_shape[0],
                      num_classes=bundle.num_classes or 10)


def _qat_line(q: dict) -> str:
    if not q["ran"]:
        return f"QAT not run: {q['why']}"
    return (f"QAT ({q['seconds']:.1f} s, {q['epochs']} epoch(s) of {q['samples_per_epoch']} samples, {q['loss']}): drop "
            f"after int8 {q['ptq_drop']:.2f}, after int8 + float fallback {q['fallback_drop']:.2f} "
            f"({q['fallback_kept_float']} layer(s) float), after QAT {q['qat_drop']:.2f} points; shipped: {q['shipped']}")
