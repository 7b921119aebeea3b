"""`edgekd export MODEL_SPEC --data D --format onnx|tflite --output PATH`."""

from pathlib import Path
from typing import Optional

import typer

from edgekd.commands.data_options import IMAGE_SIZE, NORMALIZE


def _fmt(v, nd=4) -> str:
    if v is None:
        return "-"
    return f"{v:.{nd}g}" if isinstance(v, float) else str(v)


def export_cmd(
    model: str = typer.Argument(..., help="model: built-in name, 'pkg.module:factory', 'file.py:factory' or a .pt2 file"),
    output: Path = typer.Option(..., "--output", "-o", help="file to write (.onnx or .tflite)"),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", help="state_dict checkpoint (loaded weights_only)"),
    data: str = typer.Option("auto", "--data", "-d", help="real samples for the parity check: fashion-mnist, digits, image folder or .npz"),
    image_size: Optional[str] = IMAGE_SIZE,
    normalize: str = NORMALIZE,
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="onnx | tflite (default: from the output suffix)"),
    samples: int = typer.Option(32, "--samples", help="held-out images used for the parity check (the test split when the data has one)"),
    nchw: bool = typer.Option(False, "--nchw", help="TFLite: keep NCHW input instead of NHWC"),
    converter: Optional[str] = typer.Option(None, "--converter", help="TFLite: litert-torch | onnx2tf (default: litert-torch, onnx2tf as fallback)"),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset (default: the exporter's)"),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="write the file even when parity fails (exit code stays 0)"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Export a PyTorch model to ONNX or TFLite and check it against PyTorch on real samples."""
    from edgekd.data import load_data
    from edgekd.errors import UsageError
    from edgekd.export import export_onnx, export_tflite
    from edgekd.models import load_model

    kind = (fmt or output.suffix.lstrip(".")).lower()
    if kind not in ("onnx", "tflite"):
        raise UsageError(f"--format must be onnx or tflite (got '{kind}')")
    if output.suffix.lower() != f".{kind}":
        raise UsageError(f"--output {output.name} does not end in .{kind}")
    if samples < 1:
        raise UsageError("--samples must be at least 1")
    bundle = load_data(data, image_size=image_size, normalize=normalize, need_labels=False)
    net = load_model(model, str(weights) if weights else None, in_channels=bundle.input_shape[0],
                     num_classes=bundle.num_classes or 10)
    sample, split = bundle.test.x[:samples], bundle.test_name
    if len(sample) < samples:  # never fewer than asked without saying so
        typer.echo(f"warning: --samples {samples}: {split} holds only {len(sample)}; parity checked on "
                   f"{len(sample)}", err=True)
    if kind == "onnx":
        rep = export_onnx(net, sample, output, opset=opset, strict=not allow_mismatch, parity_samples=len(sample))
    else:
        convs = (converter,) if converter else ("litert-torch", "onnx2tf")
        rep = export_tflite(net, sample, output, nhwc=not nchw, converters=convs, strict=not allow_mismatch,
                            parity_samples=len(sample))
    rep.notes.append(f"parity checked on {len(sample)} samples of {split}")
    if json_out:
        import json

        print(json.dumps(rep.to_dict(), indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    p = rep.parity
    t = Table(title=f"{output} ({rep.format}, {rep.converter})")
    for c in ("parity", "max abs err", "cosine", "top-1 agree", "samples", "ops", "Transpose", "size KiB", "input"):
        t.add_column(c, justify="right")
    t.add_row("passed" if rep.passed else "FAILED", _fmt(p.get("max_abs")), _fmt(p.get("cosine"), 7),
              _fmt(p.get("top1_agreement")), str(p.get("samples")), str(rep.num_ops), str(rep.transpose_ops),
              f"{rep.size_bytes / 1024:.1f}", f"{rep.input_layout} {rep.input_shapes[0] if rep.input_shapes else ''}")
    con = Console()
    con.print(t)
    for a in rep.attempts:
        state = "ok" if a.get("ok") and a["parity"]["passed"] else ("parity failed" if a.get("ok") else a.get("error"))
        con.print(f"  tried {a['converter']}: {state} ({a.get('seconds', 0)} s)", highlight=False)
    for note in rep.notes:
        con.print(f"  note: {note}", highlight=False)
    if rep.diverging_layer:
        con.print(f"  first diverging layer: {rep.diverging_layer}", highlight=False)
