"""`edgekd compress`: the whole pipeline in one command."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgekd.commands.config_file import config_callback, write_resolved
from edgekd.commands.data_options import IMAGE_SIZE, NORMALIZE, in_panel

BUDGET_EPOCHS = 10_000  # --time-budget without --epochs: the budget, not an epoch count, ends training


def compress_cmd(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", is_eager=True, callback=config_callback, help="A TOML file holding any of these options (`edgekd init` writes a starter); flags given here override it. The run directory gets the resolved copy, config.toml."),
    teacher: Optional[str] = typer.Option(None, help="Teacher: 'pkg.module:factory', 'file.py:factory', a torch.export .pt2 file, a trained .onnx/.tflite file (a black-box teacher: logits only), or hf:PATH (a local Hugging Face model directory: encoders, or decoder LMs such as GPT-2/Llama; see `edgekd hf-compress`), or gguf:FILE (a decoder LM in llama.cpp's format, dequantised). Default: the built-in Fashion-MNIST example.", rich_help_panel="Run"),
    teacher_weights: Optional[Path] = typer.Option(None, help="state_dict checkpoint for the teacher (loaded with weights_only=True).", rich_help_panel="Run"),
    student: str = typer.Option("cnn-s", help="Student: built-in family-size (see `edgekd models`), an entrypoint, auto:<MACs ratio> derived from the teacher, or auto: the most accurate derived student within --latency-budget on the target.", rich_help_panel="Run"),
    latency_budget: Optional[str] = typer.Option(None, help="With --student auto: the shipped file's latency budget (1.5ms, 800us), judged on the target's figure of record (device, else emulated ARM, else Vela; never this host for a phone). Default: the target file's [budgets] latency_ms.", rich_help_panel="Run"),
    data: Optional[str] = typer.Option(None, help="fashion-mnist, digits, an image folder (class sub-folders, or none: unlabeled, the student learns from the teacher alone and figures are agreement with it) or an .npz with x/y (or only x). Default: Fashion-MNIST if installed, else digits. With hf:PATH: a .txt/.jsonl/.csv text file; default Debian `fortunes`.", rich_help_panel="Run"),
    image_size: Optional[str] = in_panel(IMAGE_SIZE, "Preprocess"),
    normalize: str = in_panel(NORMALIZE, "Preprocess"),
    target: str = typer.Option("android", help="Target name from `edgekd targets`, or a target .toml file.", rich_help_panel="Run"),
    output: Path = typer.Option(Path("runs/compress"), help="Run directory (rerunning with the same one skips unchanged stages).", rich_help_panel="Run"),
    epochs: Optional[int] = typer.Option(None, min=1, help="Distillation epochs (default 3; 1 with an hf: teacher; with --time-budget, as many as the budget allows).", rich_help_panel="Distill"),
    time_budget: Optional[float] = typer.Option(None, min=1.0, help="Seconds of distillation (wall clock; with recipe auto the probe included): the step plan is fitted to it as training goes, the LR schedule anneals to the fitted end, and the report says the budget and the steps trained.", rich_help_panel="Distill"),
    seed: int = typer.Option(0, help="Random seed (data split, init, shuffling).", rich_help_panel="Run"),
    recipe: str = typer.Option("auto", help="Distillation recipe: auto (a short probe picks the LR and loss mix), a built-in name (`edgekd distill --help`) or a .toml file.", rich_help_panel="Distill"),
    baseline: str = typer.Option("none", help="scratch: also train the student on labels only (same budget), report what distillation bought and ship the better of the two on the validation split.", rich_help_panel="Run"),
    sets: List[str] = typer.Option([], "--set", help="Override a recipe field: KEY=VALUE (train.lr=0.01, kd.temperature=2), as on `edgekd distill`.", rich_help_panel="Distill"),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Default 128; 32 with an hf: teacher.", rich_help_panel="Distill"),
    prune: Optional[float] = typer.Option(None, min=0.0, max=0.95, help="Structured pruning ratio applied after distillation (with KD recovery).", rich_help_panel="Run"),
    chain: str = typer.Option("none", help="Teacher-assistant chain: none, auto, or a number of assistants; dense:<auto|n> = DGKD (the student learns from the teacher and every assistant).", rich_help_panel="Run"),
    calib_samples: int = typer.Option(256, min=1, help="Real training images used for int8 calibration.", rich_help_panel="Quantize"),
    max_drop: Optional[float] = typer.Option(None, min=0.0, help="Accuracy budget in points for quantization (held-out data).", rich_help_panel="Quantize"),
    allow_drop: bool = typer.Option(False, help="Keep going when no quantized model meets --max-drop, and let a quantized file whose check (budget or parity) failed ship anyway.", rich_help_panel="Quantize"),
    qat: str = typer.Option("auto", help="Quantization-aware training of the student for int8 .onnx/.tflite files: auto (only when int8 + float fallback misses --max-drop), on (always), off. Fine-tunes with fake quantization, distilling from the teacher, then writes the real int8 file.", rich_help_panel="Quantize"),
    qat_epochs: int = typer.Option(2, min=1, help="Quantization-aware training epochs (over at most 20 000 training samples).", rich_help_panel="Quantize"),
    runs: Optional[int] = typer.Option(None, min=1, help="Timed runs per model (default: the target's).", rich_help_panel="Profile"),
    threads: Optional[int] = typer.Option(None, min=1, help="Threads for profiling (default: the target's).", rich_help_panel="Profile"),
    eval_samples: Optional[int] = typer.Option(None, min=1, help="Score on a random subset of the test set (default: all of it).", rich_help_panel="Run"),
    force: bool = typer.Option(False, help="Rerun every stage even if unchanged.", rich_help_panel="Run"),
    json_out: bool = typer.Option(False, "--json", help="Print report.json instead of the table."),
) -> None:
    """Distill, export, quantize and profile a model for a target; writes report.md and report.json."""
    from edgekd.commands.distill import parse_sets
    from edgekd.pipeline import CompressConfig, compress
    from edgekd.pipeline.print import print_report

    overrides = parse_sets(sets)
    from edgekd.quantize.qat import QAT_CHOICES

    if qat not in QAT_CHOICES:
        from edgekd.errors import UsageError

        raise UsageError(f"--qat '{qat}' is not one of {', '.join(QAT_CHOICES)}")

    def on_start(run) -> None:  # once the run directory exists (not on a usage error): its resolved configuration
        write_resolved(ctx, run.root)

    if teacher and teacher.startswith(("hf:", "gguf:")):  # Hugging Face encoders and decoder LMs (edgekd.hf)
        from edgekd.commands.hf import compress_hf_route

        if qat == "on":
            from edgekd.errors import UsageError

            raise UsageError("--qat on is for image classifiers: an hf:/gguf: teacher's int8 files are not fine-tuned")

        return compress_hf_route(teacher, data=data, target=target, output=output, epochs=epochs, seed=seed,
                                 batch_size=batch_size, runs=runs, threads=threads, eval_samples=eval_samples,
                                 force=force, json_out=json_out, teacher_weights=teacher_weights, student=student,
                                 recipe=recipe, prune=prune, chain=chain, calib_samples=calib_samples,
                                 max_drop=max_drop, allow_drop=allow_drop, sets=sets,
                                 latency_budget=latency_budget, on_start=on_start, time_budget=time_budget)
    if teacher_weights is not None:
        from edgekd.core.inputs import require_file

        require_file(teacher_weights, "checkpoint")
    cfg = CompressConfig(teacher=teacher, teacher_weights=str(teacher_weights) if teacher_weights else None,
                         student=student, latency_budget=latency_budget, data=data, image_size=image_size,
                         normalize=normalize, target=target, output=str(output),
                         epochs=epochs or (BUDGET_EPOCHS if time_budget else 3), time_budget=time_budget, seed=seed,
                         recipe=recipe, batch_size=batch_size or 128, prune=prune or None, chain=chain,
                         calib_samples=calib_samples, max_drop=max_drop, allow_drop=allow_drop, runs=runs,
                         threads=threads, eval_samples=eval_samples, force=force, baseline=baseline,
                         overrides=overrides, qat=qat, qat_epochs=qat_epochs)
    report = compress(cfg, on_start=on_start)
    print_report(report, output, as_json=json_out)
    if any(b.get("status") == "fail" for b in report.get("budgets", [])):
        raise typer.Exit(1)  # the files are written, but the target's budget is not met: fail the CI step
