"""`edgekd distill`: train a student from a teacher with a recipe; resumable; runs under torchrun."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgekd.commands.data_options import IMAGE_SIZE, NORMALIZE, load_cli_data

# the recipe files by name, read from the package without importing edgekd.distill (it imports torch: slow --help)
_BUILTIN_RECIPES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "distill" / "recipes").glob("*.toml"))


def parse_sets(items: List[str]) -> dict:
    from edgekd.errors import UsageError

    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE (e.g. kd.temperature=2), got '{item}'")
        out[key.strip()] = value.strip()
    return out


def _unlabeled(path: Optional[Path], bundle):
    """The .npz's 'x', preprocessed exactly like the labelled data (layout, size, normalisation)."""
    if path is None:
        return None
    import numpy as np

    from edgekd.core.inputs import one_line, require_file
    from edgekd.data.loaders import npz_member_error, prepare_like
    from edgekd.errors import EdgeKDError

    require_file(path, "--unlabeled file")
    if path.suffix != ".npz":
        raise EdgeKDError(f"--unlabeled {path}: expected an .npz file holding an array 'x' of images")
    try:
        z = np.load(path, allow_pickle=False)
        x = z["x"]
    except ValueError as exc:
        raise npz_member_error(f"--unlabeled {path}", exc) from None
    except Exception as exc:
        raise EdgeKDError(f"--unlabeled {path}: cannot read array 'x' (truncated, or another format: "
                          f"{one_line(exc, 80)})") from None
    if len(x) == 0:
        raise EdgeKDError(f"--unlabeled {path}: x holds no samples")
    return prepare_like(bundle, x, f"--unlabeled {path.name}")


def _run_recorded(run, output: Path, settings: dict):
    """Run the distillation as the 'distill' stage of OUTPUT/manifest.json (settings, best.pt, metrics).

    force=True: `edgekd distill` always trains (or resumes); skipping is compress's business.
    """
    from edgekd.core import Artifact, RunDir, StageResult

    box = {}

    def stage():
        box["result"] = res = run()
        arts = [Artifact("student", str(res.best_checkpoint), "pytorch-checkpoint", "fp32",
                         accuracy=res.metrics.get("best_val_acc"))] if res.best_checkpoint else []
        return StageResult(arts, dict(res.metrics, recipe_config=res.recipe))

    RunDir(output).run_stage("distill", settings, stage, force=True)
    return box["result"]


def distill_cmd(
    teacher: str = typer.Option(..., "--teacher", help="Teacher: 'pkg.module:factory', 'file.py:factory', .pt2, a trained .onnx/.tflite file (logits only) or a built-in name"),
    teacher_weights: Optional[Path] = typer.Option(None, "--teacher-weights", help="Teacher state_dict (.pt)"),
    student: str = typer.Option("cnn-s", "--student", help="Student: built-in name (edgekd.models) or entrypoint"),
    student_weights: Optional[Path] = typer.Option(None, "--student-weights", help="Initial student weights"),
    data: str = typer.Option("auto", "--data", help="fashion-mnist | digits | image folder | .npz"),
    image_size: Optional[str] = IMAGE_SIZE,
    normalize: str = NORMALIZE,
    recipe: str = typer.Option("auto", "--recipe", help=f"auto (a short probe picks the LR and loss mix), a built-in recipe ({', '.join(_BUILTIN_RECIPES)}) or a .toml file"),
    epochs: int = typer.Option(3, "--epochs", min=1),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Stop after this many optimizer steps"),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", min=1.0, help="Seconds of training (wall clock; with recipe auto the probe included): the step plan is fitted to it as training goes and the LR schedule anneals to the fitted end"),
    batch_size: int = typer.Option(128, "--batch-size", min=1, help="Global batch (split across torchrun processes)"),
    lr: Optional[float] = typer.Option(None, "--lr", help="Override the recipe's learning rate"),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Override kd.temperature"),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Override kd.alpha (weight of the soft term)"),
    augment: Optional[str] = typer.Option(None, "--augment", help="none | flip | crop | crop-flip"),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", min=0, help="Checkpoint every N steps (0: epoch end only)"),
    sets: List[str] = typer.Option([], "--set", help="Override any recipe field: KEY=VALUE (train.lr=0.01, kd.temperature=2)"),
    unlabeled: Optional[Path] = typer.Option(None, "--unlabeled", help=".npz with images 'x' for the teacher to pseudo-label"),
    seed: int = typer.Option(0, "--seed"),
    output: Path = typer.Option(Path("runs/distill"), "--output", "-o", help="Output directory (checkpoints, metrics.json)"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/last.pt"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda | cuda:N (default: cuda per rank under torchrun, else cpu)"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON"),
) -> None:
    """Distill a teacher into a student with a recipe (KD, FitNets, AT, RKD, DistilBERT-style)."""
    import json
    import os

    import torch

    from edgekd.core import atomic_write_text
    from edgekd.distill import distill
    from edgekd.models import load_model

    if threads:
        torch.set_num_threads(threads)
    overrides = parse_sets(sets)
    if temperature is not None:
        overrides["kd.temperature"] = temperature
    if alpha is not None:
        overrides["kd.alpha"] = alpha
    if augment is not None:
        overrides["train.augment"] = augment
    bundle = load_cli_data(data, seed=seed, image_size=image_size, normalize=normalize)
    c, k = bundle.input_shape[0], bundle.num_classes
    torch.manual_seed(seed)  # --seed also fixes the student's initialisation
    t_model = load_model(teacher, teacher_weights, in_channels=c, num_classes=k)
    from edgekd.modalities.classifier.checks import check_fits

    k = check_fits(t_model, bundle, "teacher")  # before training: one line instead of a failure mid-run
    s_model = load_model(student, student_weights, in_channels=c, num_classes=k)  # the teacher's classes, not the data's
    check_fits(s_model, bundle, "student")
    rank0 = int(os.environ.get("RANK", "0")) == 0
    extra = _unlabeled(unlabeled, bundle)

    def run():
        return distill(t_model, s_model, bundle, recipe=recipe, epochs=epochs, max_steps=max_steps,
                       batch_size=batch_size, lr=lr, seed=seed, output_dir=output, resume=resume,
                       progress=progress and not as_json, unlabeled=extra, overrides=overrides,
                       checkpoint_every=checkpoint_every, device=device, time_budget_s=time_budget)

    if not rank0:  # only rank 0 writes (checkpoints, manifest)
        run()
        return
    result = _run_recorded(run, output, {
        "teacher": teacher, "teacher_weights": str(teacher_weights) if teacher_weights else None, "student": student,
        "student_weights": str(student_weights) if student_weights else None, "data": bundle.describe(),
        "recipe": recipe, "overrides": {k: str(v) for k, v in overrides.items()}, "epochs": epochs,
        "max_steps": max_steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    })
    m = result.metrics
    summary = {"best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
               "last_checkpoint": str(result.last_checkpoint) if result.last_checkpoint else None,
               **m, "recipe_config": result.recipe}
    atomic_write_text(output / "metrics.json", json.dumps(summary, indent=2, default=str) + "\n")
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"edgekd distill — recipe {m['recipe']} ({m['steps']} steps, {m['seconds']:.1f} s)")
    for col in ("epoch", "steps", "train loss", "val acc", "val loss", "seconds"):
        table.add_column(col, justify="right")
    for e in m["epochs"]:
        table.add_row(str(e["epoch"]), str(e["steps"]), f"{e['train_loss']:.4f}", f"{e['val_acc']:.4f}",
                      f"{e['val_loss']:.4f}", f"{e['seconds']:.1f}")
    con = Console()
    con.print(table)
    cache = m["cache"]
    con.print(f"teacher val acc {m['teacher_val_acc']:.4f}; best student val acc {m['best_val_acc']:.4f} "
              f"(epoch {m['best_epoch']}); teacher cache: "
              + (f"{cache['hits']} hits / {cache['misses']} misses" if cache.get("enabled") else f"off ({cache.get('reason')})"))
    con.print(f"best weights: {result.best_checkpoint}   resume state: {result.last_checkpoint}")
