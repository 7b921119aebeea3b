"""`edgekd hf-compress`: DistilBERT-style compression of a local Hugging Face model (also reached via
`edgekd compress --teacher hf:PATH`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def hf_compress_cmd(
    teacher: str = typer.Option(..., help="hf:PATH — a local Hugging Face model directory (offline; nothing is downloaded), or gguf:FILE (a decoder LM, dequantised to fp32)."),
    data: Optional[str] = typer.Option(None, help="Text: a .txt (one example per line), .jsonl or .csv file, or an installed Debian corpus: fortunes (the default), wordnet, python-docs; join sources with +."),
    target: str = typer.Option("android", help="Target name from `edgekd targets`, or a target .toml file."),
    output: Path = typer.Option(Path("runs/hf"), help="Run directory (rerunning with the same one skips unchanged stages)."),
    layers: Optional[str] = typer.Option(None, help="Teacher layers the student keeps: a count (spread evenly), a list like 0,2,4, every-other, or influence[:COUNT] (the layers that change the hidden state most, measured on the training text; first and last kept). Default: half the layers; decoders by influence, encoders spread evenly with first and last kept (6 -> 0,2,5)."),
    hidden_size: Optional[int] = typer.Option(None, min=1, help="Narrower student (a multiple of the head size); default: the teacher's width."),
    intermediate_size: Optional[int] = typer.Option(None, min=1, help="Decoder LMs: a narrower MLP, keeping each layer's most active neurons on the training text (SmolLM2, 10 of 30 layers: 1024 of 1536 neurons made decode x2.56 faster than the teacher instead of x2.09); default: the teacher's width."),
    text_column: str = typer.Option("text", help="Field/column holding the text in .jsonl/.csv files."),
    label_column: Optional[str] = typer.Option(None, help="Field/column with labels (classification teachers: adds the hard task loss)."),
    epochs: int = typer.Option(1, min=1, help="Distillation epochs."),
    time_budget: Optional[float] = typer.Option(None, min=1.0, help="Stop training after about this many seconds (the LR schedule is fitted to it)."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Default 32 (encoders), 8 (decoder LMs)."),
    lr: float = typer.Option(5e-4, min=0.0, help="Peak learning rate (linear warm-up and decay)."),
    max_length: int = typer.Option(128, min=8, help="Training/evaluation truncation length in tokens."),
    seq_len: int = typer.Option(128, min=8, help="Sequence length of the fixed-shape TFLite file and of latency measurements."),
    train_limit: Optional[int] = typer.Option(None, min=10, help="Use at most this many examples (before the split)."),
    eval_samples: int = typer.Option(256, min=2, help="Held-out texts scored for agreement with the teacher."),
    extra_text: Optional[str] = typer.Option(None, help="More unlabeled text for distillation only (same formats as --data, e.g. python-docs+wordnet); the teacher labels it."),
    layer_loss: Optional[bool] = typer.Option(None, help="Also align each intermediate student layer with the teacher layer it replaces (default: on for encoders, off for decoder LMs)."),
    freeze_embeddings: Optional[bool] = typer.Option(None, help="Keep the teacher's word embeddings (a small corpus would only move the rows it contains). Default: on for encoders, off for decoder LMs (tied embeddings are their LM head)."),
    augment: float = typer.Option(0.0, min=0.0, max=1.0, help="Embedding models: fraction of batches made of new texts cut from the training texts (spans, joined spans), labelled live by the teacher."),
    tflite: bool = typer.Option(True, help="Also convert to TFLite with litert-torch (skipped with a note if it fails)."),
    int4_head: Optional[str] = typer.Option(None, help="Decoder LMs, int4 file: the tied LM head keeps its own int8 copy (int8, the default: lower perplexity) or shares one int4 table with the embedding (shared: the smaller file)."),
    int4_algo: Optional[str] = typer.Option(None, help="Decoder LMs, int4 file: gptq (the default: asymmetric blocks, GPTQ on 16 x 128 training tokens) or rtn (round to nearest, symmetric, no calibration pass)."),
    compare_teacher: bool = typer.Option(True, help="Export the teacher to ONNX too and time it interleaved with the student."),
    runs: int = typer.Option(20, min=1, help="Timed runs per model."),
    threads: Optional[int] = typer.Option(None, min=1, help="Threads for training and timing (default: the target's, capped at this host's cores)."),
    seed: int = typer.Option(0),
    force: bool = typer.Option(False, help="Rerun every stage even if unchanged."),
    json_out: bool = typer.Option(False, "--json", help="Print report.json instead of the table."),
) -> None:
    """Distil a Hugging Face encoder into a layer-selected student; ship optimum ONNX, int8 ONNX and TFLite."""
    run_hf(teacher, data=data, target=target, output=output, epochs=epochs, seed=seed,
           layers=layers, hidden_size=hidden_size, intermediate_size=intermediate_size, text_column=text_column,
           label_column=label_column, max_length=max_length, seq_len=seq_len, batch_size=batch_size, lr=lr,
           time_budget_s=time_budget, train_limit=train_limit, eval_samples=eval_samples,
           extra_text=extra_text, layer_loss=layer_loss, freeze_embeddings=freeze_embeddings,
           augment=augment, tflite=tflite, compare_teacher=compare_teacher, threads=threads, runs=runs, force=force,
           json_out=json_out, int4_head=int4_head, int4_algo=int4_algo)


def run_hf(teacher: str, *, output: Path, json_out: bool, on_start=None, **options) -> None:
    """compress_hf, then the printed report (on_start: called with the run directory once it exists)."""
    from edgekd.pipeline import compress_hf
    from edgekd.pipeline.print import print_report

    report = compress_hf(teacher, output=output, json=json_out, on_start=on_start, **options)
    print_report(report, output, as_json=json_out)
    if not json_out:
        print(f"accuracy column = {report['accuracy_metric']}")
        if report.get("speedup_vs_teacher_onnx"):
            print("speed-up vs teacher ONNX (p50, interleaved): "
                  + ", ".join(f"{k} {v}x" for k, v in report["speedup_vs_teacher_onnx"].items()))


# `edgekd compress` options that only mean something for image models, with their defaults there
_IMAGE_ONLY = {"teacher_weights": None, "student": "cnn-s", "recipe": "auto", "prune": None, "chain": "none",
               "calib_samples": 256, "max_drop": None, "allow_drop": False, "sets": [],
               "latency_budget": None}


def compress_hf_route(teacher: str, *, data: Optional[str], target: str, output: Path, epochs: Optional[int],
                      seed: int, batch_size: Optional[int], runs: Optional[int], threads: Optional[int],
                      eval_samples: Optional[int], force: bool, json_out: bool, on_start=None,
                      time_budget: Optional[float] = None, **image_only) -> None:
    """`edgekd compress --teacher hf:PATH`: the same run as `edgekd hf-compress` with its defaults."""
    from edgekd.errors import UsageError

    given = [k for k, v in image_only.items() if v != _IMAGE_ONLY.get(k, v)]
    if given:
        flags = ", ".join("--set" if k == "sets" else "--" + k.replace("_", "-") for k in given)
        raise UsageError(f"{flags} do not apply to a Hugging Face teacher; use `edgekd hf-compress --help` "
                         "for its options (--layers, --hidden-size, --text-column ...)")
    run_hf(teacher, data=data, target=target, output=output, layers=None, hidden_size=None, text_column="text",
           label_column=None, epochs=epochs or 1, time_budget_s=time_budget, batch_size=batch_size, lr=5e-4,
           max_length=128, seq_len=128, train_limit=None, eval_samples=eval_samples or 256, extra_text=None,
           layer_loss=None, freeze_embeddings=None, augment=0.0, tflite=True, compare_teacher=True,
           runs=runs or 20, threads=threads, seed=seed, force=force, json_out=json_out, on_start=on_start)
