"""`edgekd derive` (a smaller student cut from the teacher) and `edgekd prune` (iterative pruning + KD recovery)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgekd.commands.data_options import IMAGE_SIZE, NORMALIZE, load_cli_data


def _input_spec(data: str, input_shape: Optional[str], seed: int, image_size=None, normalize="dataset"):
    """(bundle or None, per-sample shape, num_classes or None) from --data, or from --input-shape without loading
    data: C,H,W for images, F for feature vectors."""
    from edgekd.errors import UsageError

    if input_shape:
        try:
            shape = tuple(int(v) for v in input_shape.replace("x", ",").split(","))
        except ValueError:
            raise UsageError(f"--input-shape expects C,H,W (e.g. 1,28,28) or F (e.g. 64), got '{input_shape}'") from None
        if len(shape) not in (1, 3) or min(shape) < 1:
            raise UsageError(f"--input-shape expects positive numbers C,H,W (images) or F (feature vectors), "
                             f"got '{input_shape}'")
        return None, shape, None

    bundle = load_cli_data(data, seed=seed, image_size=image_size, normalize=normalize)
    return bundle, tuple(bundle.input_shape), bundle.num_classes


def _load(spec: str, weights: Optional[Path], shape, num_classes):
    """A model from a spec; weights may be a plain state_dict or an edgekd derived/pruned checkpoint."""
    from edgekd.models import load_model

    kw = {"in_channels": shape[0], **({"num_classes": num_classes} if num_classes else {})}
    return load_model(spec, weights, **kw)


def _fmt_lat(lat) -> str:
    return f"{lat['p50_ms']:.3f}" if lat else "-"


def _fmt_speed(speed, what: str) -> str:
    if not speed:
        return ""
    return (f"speed-up {what}: {speed['speedup']:.2f}x (paired latency ratio {speed['ratio']:.3f}, "
            f"{speed['confidence']:.0%} CI {speed['ci_low']:.3f}-{speed['ci_high']:.3f}, {speed['pairs']} pairs)")


def derive_cmd(
    teacher: str = typer.Option(..., "--teacher", help="Teacher: 'pkg.module:factory', 'file.py:factory' or a built-in name"),
    teacher_weights: Optional[Path] = typer.Option(None, "--teacher-weights", help="Teacher state_dict (.pt)"),
    ratio: float = typer.Option(..., "--ratio", help="Fraction of the teacher's MACs (or params) the student keeps, e.g. 0.1"),
    by: str = typer.Option("macs", "--by", help="macs | params"),
    mode: str = typer.Option("auto", "--mode", help="width (channels) | depth (drop residual blocks / layers) | auto (both)"),
    round_to: Optional[int] = typer.Option(None, "--round-to", min=1,
                                           help="Round channel counts to multiples of this (default: the target's preference, else 8)"),
    target: Optional[str] = typer.Option(None, "--target", help="Target name or .toml whose channel multiple to use"),
    data: str = typer.Option("auto", "--data", help="Dataset giving the input shape and class count"),
    image_size: Optional[str] = IMAGE_SIZE,
    normalize: str = NORMALIZE,
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="C,H,W (or F for feature vectors) instead of --data (no data loaded)"),
    output: Path = typer.Option(..., "--output", "-o", help="Derived model checkpoint (.pt, loads with edgekd.models.load_portable)"),
    threads: int = typer.Option(2, "--threads", min=1, help="Threads for the latency measurement"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON"),
) -> None:
    """Derive a student from the teacher: Torch-Pruning channel pruning and/or dropped residual blocks."""
    import json

    import torch

    from edgekd.core import check_output_file
    from edgekd.errors import UsageError
    from edgekd.models.checkpoint import save_portable
    from edgekd.prune.derived import derive

    if output.suffix != ".pt":
        raise UsageError(f"--output must end in .pt, got {output}")
    check_output_file(output, "--output", reads=[teacher_weights])
    if round_to is None:
        from edgekd.prune._util import channel_multiple

        if target:
            from edgekd.targets import load_target

            round_to = channel_multiple(load_target(target))
        else:
            round_to = channel_multiple(None)
    torch.manual_seed(seed)
    _, shape, k = _input_spec(data, input_shape, seed, image_size, normalize)
    t = _load(teacher, teacher_weights, shape, k)
    res = derive(t, ratio=ratio, by=by, mode=mode, example_input=(1, *shape), round_to=round_to, threads=threads)
    save_portable(res.model, output, dropped_blocks=res.dropped_blocks,
                  meta={"teacher": teacher, "ratio": ratio, "by": by, "mode": mode})
    d = res.to_dict() | {"output": str(output)}
    if as_json:
        typer.echo(json.dumps(d, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    lat = res.latency_after or {}
    table = Table(title=f"edgekd derive — {mode}, target {by} ratio {ratio:g} -> {res.achieved_ratio:.4f}")
    for col in ("model", "MACs", "params", "p50 ms (measured)"):
        table.add_column(col, justify="right")
    table.add_row("teacher", f"{res.macs_before:,}", f"{res.params_before:,}", _fmt_lat(res.latency_before))
    table.add_row("derived", f"{res.macs_after:,}", f"{res.params_after:,}", _fmt_lat(res.latency_after))
    con = Console()
    con.print(table)
    con.print(f"latency: {lat.get('kind', '-')} on {lat.get('where', '-')}, {lat.get('runtime', '-')}, "
              f"{lat.get('threads', '-')} threads, batch 1, {lat.get('runs', '-')} runs each")
    con.print(_fmt_speed(res.speed, "derived vs teacher"))
    if res.dropped_blocks:
        con.print(f"dropped blocks: {', '.join(res.dropped_blocks)}")
    if res.channel_pruning_ratio:
        con.print(f"channels removed per layer: {res.channel_pruning_ratio:.1%} (rounded to multiples of {round_to})")
    for n in res.notes:
        con.print(f"note: {n}")
    for w in res.warnings:  # far above the asked ratio: said on stderr too, so a script's log keeps it
        Console(stderr=True).print(f"[bold yellow]warning:[/] {w}")
    con.print(f"wrote {output}")


def prune_cmd(
    model: str = typer.Option(..., "--model", help="The trained student: spec (built-in name, entrypoint)"),
    model_weights: Optional[Path] = typer.Option(None, "--model-weights", help="Its weights (.pt state_dict or edgekd checkpoint)"),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="KD teacher for recovery (default: the unpruned model itself)"),
    teacher_weights: Optional[Path] = typer.Option(None, "--teacher-weights"),
    data: str = typer.Option("auto", "--data", help="fashion-mnist | digits | image folder | .npz"),
    image_size: Optional[str] = IMAGE_SIZE,
    normalize: str = NORMALIZE,
    ratio: float = typer.Option(..., "--ratio", help="Fraction of channels (structured) or weights (--unstructured) removed"),
    importance: str = typer.Option("magnitude", "--importance", help="magnitude | taylor | lamp | random"),
    scope: str = typer.Option("global", "--scope", help="global (one ranking across layers) | uniform (same ratio per layer)"),
    steps: int = typer.Option(3, "--steps", min=1, help="Iterative pruning steps, each followed by recovery"),
    recover_epochs: int = typer.Option(1, "--recover-epochs", min=0, help="Recovery epochs after each step (0: none)"),
    recover_steps: Optional[int] = typer.Option(None, "--recover-steps", min=1, help="Cap on optimizer steps per recovery"),
    recovery: str = typer.Option("kd", "--recovery", help="kd (distill from the teacher) | ce (labels only) | none"),
    unstructured: bool = typer.Option(False, "--unstructured", help="Zero weights by magnitude instead of removing channels"),
    recipe: str = typer.Option("hinton", "--recipe", help="Distillation recipe for KD recovery"),
    round_to: int = typer.Option(8, "--round-to", min=1),
    batch_size: int = typer.Option(128, "--batch-size", min=1),
    lr: Optional[float] = typer.Option(None, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    output: Path = typer.Option(..., "--output", "-o", help="Pruned model checkpoint (.pt)"),
    onnx: Optional[Path] = typer.Option(None, "--onnx", help="Also export the pruned model to this .onnx (parity checked)"),
    tflite: Optional[Path] = typer.Option(None, "--tflite", help="Also export the pruned model to this .tflite (parity checked)"),
    threads: int = typer.Option(2, "--threads", min=1),
    progress: bool = typer.Option(False, "--progress/--no-progress"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON"),
) -> None:
    """Prune a trained student in steps, recovering each step by distillation from the teacher."""
    import json

    import torch

    from edgekd.core import check_output_file
    from edgekd.errors import UsageError
    from edgekd.models.checkpoint import save_portable
    from edgekd.prune.structured import prune

    if output.suffix != ".pt":
        raise UsageError(f"--output must end in .pt, got {output}")
    check_output_file(output, "--output", reads=[model_weights, teacher_weights])
    if onnx is not None and onnx.suffix != ".onnx":
        raise UsageError(f"--onnx must end in .onnx, got {onnx}")
    if tflite is not None and tflite.suffix != ".tflite":
        raise UsageError(f"--tflite must end in .tflite, got {tflite}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    bundle, shape, k = _input_spec(data, None, seed, image_size, normalize)
    m = _load(model, model_weights, shape, k)
    t = _load(teacher, teacher_weights, shape, k) if teacher else None
    res = prune(m, t, bundle, ratio=ratio, importance=importance, scope=scope, steps=steps,
                recover_epochs=recover_epochs, recover_steps=recover_steps, recovery=recovery,
                unstructured=unstructured, recipe=recipe, round_to=round_to, batch_size=batch_size, lr=lr,
                seed=seed, output_dir=output.parent / f"{output.stem}_steps", progress=progress, threads=threads)
    save_portable(res.model, output, meta={"model": model, "ratio": ratio, "unstructured": unstructured})
    d = res.to_dict() | {"output": str(output)}
    exported = []
    for path, fmt in ((onnx, "onnx"), (tflite, "tflite")):
        if path is None:
            continue
        from edgekd import export

        # strict export: parity against the pruned PyTorch model on real test images, else no file
        rep = getattr(export, f"export_{fmt}")(res.model, bundle.test.x[:64], path)
        d[fmt] = rep.to_dict() if hasattr(rep, "to_dict") else str(path)
        exported.append((path, fmt, rep))
    if as_json:
        typer.echo(json.dumps(d, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    kind = "unstructured" if unstructured else f"structured, {scope}, {importance}"
    table = Table(title=f"edgekd prune — {kind}, ratio {ratio:g}, {steps} step(s), recovery {res.recovery}")
    for col in ("step", "cum. ratio", "MACs", "params", "val acc pruned", "val acc recovered"):
        table.add_column(col, justify="right")
    pct = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    for h in res.history:
        table.add_row(str(h["step"]), f"{h['cumulative_ratio']:.3f}", f"{h['macs']:,}", f"{h['params']:,}",
                      pct(h.get("val_acc_pruned")), pct(h.get("val_acc")))
    con = Console()
    con.print(table)
    con.print(f"MACs {res.macs_before:,} -> {res.macs_after:,}; params {res.params_before:,} -> {res.params_after:,}; "
              f"val acc {pct(res.accuracy_before)} -> {pct(res.accuracy_after)}; test acc {pct(res.test_accuracy_after)}")
    if res.latency_before and res.latency_after:
        la = res.latency_after
        con.print(f"latency p50 {res.latency_before['p50_ms']:.3f} -> {la['p50_ms']:.3f} ms ({la['kind']}, {la['where']}, "
                  f"{la['runtime']}, {la['threads']} threads, batch 1, {la['runs']} runs each)")
        con.print(_fmt_speed(res.speed, "pruned vs unpruned"))
    if res.sparsity:
        con.print(f"weight sparsity {res.sparsity['weight_sparsity']:.1%}")
    for n in res.notes:
        con.print(f"note: {n}")
    for path, fmt, rep in exported:
        par = getattr(rep, "parity", {}) or {}
        con.print(f"{fmt}: {path} (parity {'passed' if rep.passed else 'FAILED'}, max abs diff "
                  f"{par.get('max_abs') or 0.0:.2e}, top-1 agreement {par.get('top1_agreement') or 0.0:.3f})")
    con.print(f"wrote {output}")
