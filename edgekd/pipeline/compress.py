"""`edgekd compress` and `edgekd hf-compress`: the options of a run, handed to the one stage sequence
(edgekd.pipeline.sequence) with the modality that fits the teacher.

Every stage goes through RunDir.run_stage, so a rerun with the same --output skips what is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgekd.errors import UsageError
from edgekd.pipeline.sequence import run_pipeline


@dataclass
class CompressConfig:
    teacher: str | None = None  # None: the built-in Fashion-MNIST example
    teacher_weights: str | None = None
    student: str = "cnn-s"  # built-in name, entrypoint, auto:<ratio>, or auto (searched for latency_budget)
    latency_budget: str | None = None  # "1.5ms": with student="auto" (default: the target file's budget)
    data: str | None = None  # None/auto: Fashion-MNIST if installed, else digits
    image_size: str | None = None  # resize images to N or HxW
    normalize: str = "dataset"  # see edgekd.data.loaders.NORMALIZE_HELP
    target: str = "android"
    output: str = "runs/compress"
    epochs: int = 3
    time_budget: float | None = None  # seconds of distillation (wall clock), the auto probe included
    seed: int = 0
    recipe: str = "auto"  # a probe picks LR and loss mix (edgekd.distill.auto), or a built-in / .toml recipe
    baseline: str = "none"  # "scratch": also train the student on labels only and report the gain
    batch_size: int = 128
    prune: float | None = None
    chain: str = "none"
    calib_samples: int = 256
    max_drop: float | None = None
    allow_drop: bool = False
    qat: str = "auto"  # quantization-aware training: auto (when int8 + fallback misses max_drop) | on | off
    qat_epochs: int = 2
    runs: int | None = None
    threads: int | None = None
    eval_samples: int | None = None
    force: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted recipe fields (`--set kd.temperature=2`)
    extra: dict[str, Any] = field(default_factory=dict)


def _log(msg: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold cyan]edgekd[/] {msg}")


def compress(cfg: CompressConfig, log: Callable[[str], None] = _log, on_start=None) -> dict[str, Any]:
    """Image classifiers and feature-vector models (a Hugging Face teacher goes through compress_hf).
    on_start(run): called once the run directory exists (the CLI writes the resolved config.toml there)."""
    from edgekd.modalities.classifier import ClassifierModality

    return run_pipeline(ClassifierModality(cfg), output=cfg.output, log=log, on_start=on_start)


def compress_hf(teacher_dir: str | Path, *, data: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """A local Hugging Face model (hf:PATH): DistilBERT-style student, optimum ONNX, int8 ONNX, TFLite; a decoder
    LM (hf:PATH with a *ForCausalLM, or gguf:FILE) goes through the decoder adapter (KV-cache ONNX, int8/int4
    weight-only). The same stage sequence and report as compress(). options: the fields of
    edgekd.modalities.text.TextConfig (decoders: edgekd.modalities.decoder.DecoderConfig).

    Progress goes to stderr, and so does what converters print (litert-torch writes its progress to
    stdout), keeping stdout clean for `--json`.
    """
    import contextlib
    import sys

    from edgekd.hf.teacher import spec_kind

    log = options.pop("log", None) or (lambda m: print(f"[edgekd hf] {m}", file=sys.stderr, flush=True))
    options.pop("json", None)  # printing is the command's business
    on_start = options.pop("on_start", None)
    if spec_kind(teacher_dir) == "causal-lm":  # decoder LMs (hf:DIR or gguf:FILE): same sequence, their adapter
        from edgekd.modalities.decoder import DecoderConfig as Config, DecoderModality as Modality
    else:
        from edgekd.modalities.text import TextConfig as Config, TextModality as Modality

        if options.get("intermediate_size") is not None:
            raise UsageError("--intermediate-size narrows a decoder LM's MLP; for an encoder give --hidden-size "
                             "(its MLP narrows with it)")
    options = {k: v for k, v in options.items() if v is not None or k not in _DEFAULTED}
    try:
        cfg = Config(teacher=teacher_dir, data=data, **options)
    except TypeError as exc:  # an option compress_hf does not have
        raise UsageError(f"compress_hf: {exc}") from None
    with contextlib.redirect_stdout(sys.stderr):
        return run_pipeline(Modality(cfg), output=cfg.output, log=log, on_start=on_start)


# options the CLI passes as None to mean "the modality's default" (decoders train with other batch sizes)
_DEFAULTED = ("batch_size", "layer_loss", "freeze_embeddings", "int4_head", "int4_algo", "intermediate_size")
