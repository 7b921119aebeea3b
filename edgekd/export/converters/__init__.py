"""Converters: each writes one file format (onnx, tflite, pte, coreml) from a PyTorch model, declared once.

    @register_converter("litert-torch", produces="tflite", order=10)
    def convert(job: Job, dest: Path) -> None: ...

export_onnx / export_tflite try the converters of their format by `order` (or the ones the caller
names, in the caller's order) in one loop (edgekd/export/fallback.py): each candidate file is checked
against PyTorch on the real sample and the first within parity is kept. A converter only writes
`dest`; it raises on failure (any exception: the loop records it and tries the next one).
- available(): False when its packages are missing (recorded as `missing`, no attempt is made).
- tries(job): settings for each attempt, e.g. dynamic then static batch; recorded in the attempt and
  passed to convert as keyword arguments. Default: one attempt without settings.
- via: the format it reads (onnx2tf: "onnx"); the loop makes that file first and passes it as `source`.
Every module in this package is imported by converters_for(), so a new converter is one new file.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import pkgutil
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from edgekd.errors import EdgeKDError


@dataclass(frozen=True)
class Job:
    """What every converter of one export gets: the model, the user's sample and the export options."""

    model: Any
    inputs: tuple  # the sample as tensors (the whole batch; converters take what they need)
    n_outputs: int
    nhwc: bool = True  # tflite: image models take channels-last input
    opset: int | None = None  # onnx
    dynamic_batch: bool = True  # onnx
    precision: str = "fp32"  # pte: fp32 | int8 (PT2E); coreml: fp32 | fp16 | int8 (weights); parity uses its tolerance
    calib: tuple | None = None  # int8 at conversion: real calibration samples as tensors (None: the sample itself)
    image_input: Any = None  # coreml: an ImageInput (edgekd/export/coreml_image.py): raw 0..255 pixels; None: TensorType


@dataclass(frozen=True)
class Converter:
    name: str
    produces: str  # onnx | tflite | pte | coreml
    order: int
    convert: Callable[..., Any]  # (job, dest, **settings) -> None
    available: Callable[[], bool] | None = None
    missing: str = "not installed"
    tries: Callable[[Job], list[dict[str, Any]]] | None = None
    via: str | None = None  # reads a file of this format, made first by its converters (passed as `source`)

    def attempts(self, job: Job) -> list[dict[str, Any]]:
        return self.tries(job) if self.tries is not None else [{}]


CONVERTERS: dict[str, Converter] = {}


def register_converter(name: str, *, produces: str, order: int, available: Callable[[], bool] | None = None,
                       missing: str = "not installed", tries: Callable[[Job], list[dict[str, Any]]] | None = None,
                       via: str | None = None):
    """Decorator: register `convert` as converter `name` writing `produces` files, tried at `order`."""

    def deco(convert):
        if name in CONVERTERS:
            raise ValueError(f"converter '{name}' is already registered")
        CONVERTERS[name] = Converter(name, produces, order, convert, available, missing, tries, via)
        return convert

    return deco


def _load_builtins() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def converters_for(fmt: str) -> list[Converter]:
    """The registered converters writing `fmt`, in the order they are tried by default."""
    _load_builtins()
    return sorted((c for c in CONVERTERS.values() if c.produces == fmt), key=lambda c: (c.order, c.name))


def pick(fmt: str, label: str, names: "tuple[str, ...] | list[str] | None") -> list[Converter]:
    """The caller's converters in the caller's order (None: all of `fmt`); an unknown name is a one-line error."""
    known = converters_for(fmt)
    if names is None:
        return known
    by_name = {c.name: c for c in known}
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        raise EdgeKDError(f"unknown {label} converter(s) {unknown}: choose from {', '.join(by_name)}")
    return [by_name[n] for n in names]


def check_export_is_safe() -> None:
    """torch.export loads triton (torch 2.14's CUDA build ships it) on first use, and triton segfaults the process
    when TensorFlow (tensorflow-cpu 2.21) was imported before it: fail with a line instead of crashing."""
    import importlib.util
    import sys

    if "tensorflow" in sys.modules and "triton" not in sys.modules and importlib.util.find_spec("triton"):
        raise RuntimeError("TensorFlow was imported before torch.export first ran in this process, and triton then "
                           "crashes it: export this format in a process that has not imported TensorFlow")


@contextlib.contextmanager
def quiet():
    """The exporters print progress and deprecation notes; keep the user's terminal readable. Their loggers too:
    onnxscript logs a whole traceback when it cannot convert to an asked opset (the converter then says so)."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "torch.onnx")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
