"""`edgekd quantize MODEL --data D --output PATH [--mode int8] [--max-drop POINTS]`."""

from pathlib import Path
from typing import Optional

import typer

from edgekd.commands.data_options import IMAGE_SIZE, NORMALIZE


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
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor", help="weight quantization granularity (ONNX)"),
    max_drop: Optional[float] = typer.Option(None, "--max-drop", help="allowed top-1 loss in points on held-out data; keeps sensitive layers in float to meet it"),
    allow_drop: bool = typer.Option(False, "--allow-drop", help="keep the best file even when --max-drop cannot be met (exit 0, with a warning)"),
    eval_samples: int = typer.Option(1000, "--eval-samples", help="held-out images scored (the test split when the data has one, else validation)"),
    seed: int = typer.Option(0, "--seed", help="seed for the data split and calibration sample"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Quantize to int8 / dynamic / fp16, calibrated on real data, optionally within an accuracy budget."""
    from edgekd.data import load_data
    from edgekd.errors import UsageError
    from edgekd.quantize import quantize

    if calib_samples < 1 or eval_samples < 1:
        raise UsageError("--calib-samples and --eval-samples must be at least 1")
    bundle = load_data(data, seed=seed, image_size=image_size, normalize=normalize, need_labels=False)
    source = Path(model)
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
    rep = quantize(src, output, mode=mode, calib=bundle.calibration(calib_samples, seed=seed), method=method,
                   per_channel=per_channel, int8_io=int8_io, eval_data=eval_data, max_drop=max_drop,
                   allow_drop=allow_drop, calib_samples=calib_samples,
                   eval_split=split if n == len(held) else f"the first {n} of {split}")
    for w in rep.warnings:  # stderr, so --json output stays parseable
        typer.echo(f"warning: {w}", err=True)
    if json_out:
        import json

        print(json.dumps(rep.to_dict(), indent=2, default=str))
        return
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
    if rep.latency:
        lat = rep.latency
        con.print(f"  latency p50 (measured, host, 1 thread): float {lat['float']['p50_ms']:.3f} ms, all-int8 "
                  f"{lat['int8_all']['p50_ms']:.3f} ms, shipped {lat['shipped']['p50_ms']:.3f} ms "
                  f"(x{lat['shipped_vs_int8_all']} of all-int8)", highlight=False)
