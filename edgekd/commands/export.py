"""`edgekd export MODEL_SPEC --data D --format onnx|tflite|pte|coreml --output PATH`."""

from pathlib import Path
from typing import Optional

import typer

from edgekd.commands.data_options import IMAGE_SIZE, NORMALIZE, load_cli_data


def _fmt(v, nd=4) -> str:
    if v is None:
        return "-"
    return f"{v:.{nd}g}" if isinstance(v, float) else str(v)


def export_cmd(
    model: str = typer.Argument(..., help="model: built-in name, 'pkg.module:factory', 'file.py:factory' or a .pt2 file"),
    output: Path = typer.Option(..., "--output", "-o", help="file to write (.onnx, .tflite, .pte or .mlpackage)"),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", help="state_dict checkpoint (loaded weights_only)"),
    data: str = typer.Option("auto", "--data", "-d", help="real samples for the parity check: fashion-mnist, digits, image folder or .npz"),
    image_size: Optional[str] = IMAGE_SIZE,
    normalize: str = NORMALIZE,
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="onnx | tflite | pte | coreml (default: from the output suffix)"),
    precision: str = typer.Option("", "--precision", help="pte: fp32 (default) | int8 (PT2E, calibrated on --calib-samples "
                                  "training images); coreml: fp16 (default) | fp32 | int8 (weights)"),
    calib_samples: int = typer.Option(256, "--calib-samples", help="pte int8: real training images for calibration"),
    samples: int = typer.Option(32, "--samples", help="held-out images used for the parity check (the test split when the data has one)"),
    coreml_input: str = typer.Option("tensor", "--coreml-input", help="Core ML: image (a ct.ImageType of raw 0..255 pixels, "
                                     "the --normalize statistics folded into its preprocessing; what an app hands "
                                     "Core ML) | tensor (default: the normalised NCHW tensor)"),
    coreml_color_layout: str = typer.Option("RGB", "--coreml-color-layout", help="Core ML image input: the order of a "
                                            "3-channel model's channels, RGB (edgekd's loaders) | BGR"),
    nchw: bool = typer.Option(False, "--nchw", help="TFLite: keep NCHW input instead of NHWC"),
    converter: Optional[str] = typer.Option(None, "--converter", help="TFLite: litert-torch | onnx2tf (default: litert-torch, onnx2tf as fallback)"),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset (default: the exporter's)"),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="write the file even when parity fails (exit code stays 0)"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Export a PyTorch model to ONNX, TFLite, ExecuTorch .pte or Core ML and check it against PyTorch on real
    samples (Core ML: structurally only; it cannot run on Linux)."""
    from edgekd.errors import UsageError
    from edgekd.export import export_coreml, export_onnx, export_pte, export_tflite
    from edgekd.export.formats import FORMATS
    from edgekd.models import load_model

    kind = (fmt or {".mlpackage": "coreml"}.get(output.suffix.lower(), output.suffix.lstrip("."))).lower()
    if kind not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)} (got '{kind}')")
    if output.suffix.lower() != FORMATS[kind].suffix:
        raise UsageError(f"--output {output.name} does not end in {FORMATS[kind].suffix}")
    if precision and precision not in FORMATS[kind].precisions:
        raise UsageError(f"--precision {precision} is not available for {kind}: choose from {', '.join(FORMATS[kind].precisions)}")
    if samples < 1:
        raise UsageError("--samples must be at least 1")
    from edgekd.targets import COREML_COLOR_LAYOUTS, COREML_INPUTS

    if coreml_input not in COREML_INPUTS:
        raise UsageError(f"--coreml-input must be one of {', '.join(COREML_INPUTS)} (got '{coreml_input}')")
    if coreml_color_layout not in COREML_COLOR_LAYOUTS:
        raise UsageError(f"--coreml-color-layout must be one of {', '.join(COREML_COLOR_LAYOUTS)} "
                         f"(got '{coreml_color_layout}')")
    if kind != "coreml" and (coreml_input != "tensor" or coreml_color_layout != "RGB"):
        raise UsageError(f"--coreml-input / --coreml-color-layout apply to --format coreml, not {kind}")
    bundle = load_cli_data(data, image_size=image_size, normalize=normalize, need_labels=False)
    net = load_model(model, str(weights) if weights else None, in_channels=bundle.input_shape[0],
                     num_classes=bundle.num_classes or 10)
    sample, split = bundle.test.x[:samples], bundle.test_name
    if len(sample) < samples:  # never fewer than asked without saying so
        typer.echo(f"warning: --samples {samples}: {split} holds only {len(sample)}; parity checked on "
                   f"{len(sample)}", err=True)
    if kind == "pte":
        calib = bundle.calibration(calib_samples, seed=0) if precision == "int8" else None
        rep = export_pte(net, sample, output, precision=precision or "fp32", calib=calib, strict=not allow_mismatch,
                         parity_samples=len(sample))
    elif kind == "coreml":
        rep = export_coreml(net, sample, output, precision=precision or "fp16", strict=not allow_mismatch,
                            input=coreml_input, normalisation=(bundle.mean, bundle.std),
                            color_layout=coreml_color_layout)
    elif kind == "onnx":
        rep = export_onnx(net, sample, output, opset=opset, strict=not allow_mismatch, parity_samples=len(sample))
    else:
        convs = (converter,) if converter else ("litert-torch", "onnx2tf")
        rep = export_tflite(net, sample, output, nhwc=not nchw, converters=convs, strict=not allow_mismatch,
                            parity_samples=len(sample))
    if kind != "coreml":  # Core ML runs nothing here: its check is structural (the report's note says so)
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
    t.add_row({True: "passed", False: "FAILED", None: "not run"}[rep.passed], _fmt(p.get("max_abs")), _fmt(p.get("cosine"), 7),
              _fmt(p.get("top1_agreement")), str(p.get("samples")), str(rep.num_ops), str(rep.transpose_ops),
              f"{rep.size_bytes / 1024:.1f}", f"{rep.input_layout} {rep.input_shapes[0] if rep.input_shapes else ''}")
    con = Console()
    con.print(t)
    for a in rep.attempts:
        state = "ok" if a.get("ok") and a["parity"]["passed"] is not False else ("parity failed" if a.get("ok") else a.get("error"))
        con.print(f"  tried {a['converter']}: {state} ({a.get('seconds', 0)} s)", highlight=False)
    if rep.delegation:
        d = rep.delegation
        con.print(f"  delegation: {d['delegated_ops']} ops in XNNPACK, {d['portable_ops']} in portable kernels "
                  f"(share {d['share']:.1%})" + (f": {d['fallback_ops']}" if d["fallback_ops"] else ""), highlight=False)
    for note in rep.notes:
        con.print(f"  note: {note}", highlight=False)
    if rep.diverging_layer:
        con.print(f"  first diverging layer: {rep.diverging_layer}", highlight=False)
