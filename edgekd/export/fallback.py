"""The one export loop: try a format's converters in order, check each file against PyTorch on the real
sample, keep the first within fp32 parity (strict: none -> EdgeKDError naming the first diverging layer).

Every attempt is recorded in the report (converter, its settings, ok, parity or error, seconds).
The format-specific parts (suffix, how to run the file, post-processing, report fields) are a Format
(formats.py); the converters are registered in edgekd/export/converters/.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from edgekd.core import atomic_path
from edgekd.core.files import remove_path
from edgekd.errors import EdgeKDError
from edgekd.export import parity
from edgekd.export.converters import Converter, Job, converters_for, pick
from edgekd.export.formats import FORMATS, Format
from edgekd.export.report import ExportReport
from edgekd.export.sample import as_tensors, batch_size, first_line, take, torch_outputs

PARITY_SAMPLES = 32  # enough real samples for top-1 agreement, few enough to stay fast


def export_format(fmt_name: str, model, sample: Any, out_path, converters: "tuple[str, ...] | None", *,
                  strict: bool, parity_samples: int, **options) -> ExportReport:
    """export_onnx / export_tflite: the suffix and converter names are checked before any work."""
    fmt = FORMATS[fmt_name]
    out = fmt.output(out_path)
    chosen = pick(fmt.name, fmt.label, converters)
    precision = options.get("precision", "fp32")
    if precision not in fmt.precisions:
        raise EdgeKDError(f"{fmt.label} export writes {', '.join(fmt.precisions)}, not {precision!r}")
    return export_with_parity(fmt, chosen, model, sample, out, strict=strict, parity_samples=parity_samples, **options)


def export_with_parity(fmt: Format, converters: list[Converter], model, sample: Any, out: Path, *, strict: bool,
                       parity_samples: int, **options) -> ExportReport:
    """Run `converters` in order on `model` (options: Job fields such as nhwc, opset, dynamic_batch)."""
    model = model.eval()
    inputs = as_tensors(sample)
    check = take(inputs, 0, min(parity_samples, batch_size(inputs)))
    ref = torch_outputs(model, check)
    job = Job(model, inputs, len(ref), **options)
    t0 = time.perf_counter()
    attempts: list[dict[str, Any]] = []
    with atomic_path(out) as tmp:
        tries: list[Path] = []
        try:
            best, best_file = _first_within_parity(fmt, converters, job, check, ref, tmp, attempts, tries)
            diverging = None
            if best is not None and not _within(best):
                with contextlib.suppress(Exception):  # diagnosis must not hide the parity failure
                    diverging = _diverging(model, check, best_file)
            if best is None or (strict and not _within(best)):
                raise EdgeKDError(failure_line(fmt.label, attempts, diverging))
            remove_path(tmp)  # a package directory cannot replace the placeholder file
            best_file.replace(tmp)
        finally:
            for f in tries:
                for extra in ("", *fmt.sidecars):
                    remove_path(Path(str(f) + extra))
        report = ExportReport(path=str(out), format=fmt.name, converter=best["converter"], precision=job.precision,
                              passed=best["parity"]["passed"], parity=best["parity"], attempts=attempts,
                              diverging_layer=diverging)
        fmt.describe(report, tmp, inputs)
        fill_ops(report, tmp)
    report.seconds = round(time.perf_counter() - t0, 2)
    report.notes += [a["note"] for a in attempts if a.get("note")]
    return report


def _first_within_parity(fmt: Format, converters: list[Converter], job: Job, check, ref, tmp: Path,
                         attempts: list[dict], tries: list[Path]) -> tuple[dict | None, Path | None]:
    """Each converter's attempts in order until a file is within parity; else the first file that ran.
    Appends to `attempts` (the report's record) and `tries` (candidate files, removed by the caller)."""
    best, best_file = None, None
    plan = [(conv, settings) for conv in converters for settings in conv.attempts(job)]
    for i, (conv, settings) in enumerate(plan):
        if conv.available is not None and not conv.available():
            attempts.append({"converter": conv.name, "ok": False, "error": conv.missing})
            continue
        f = tmp.with_name(f"{tmp.stem}.try{i}{fmt.suffix}")
        tries.append(f)
        a = _attempt(fmt, conv, settings, job, check, ref, f)
        attempts.append(a)
        if a.get("ok") and (best is None or _within(a)):
            best, best_file = a, f
        if best is not None and _within(best):
            break
    return best, best_file


def _within(attempt: dict) -> bool:
    """Within tolerance, or not runnable here and structurally valid (passed None: numerics unchecked)."""
    return attempt["parity"]["passed"] is not False


def _attempt(fmt: Format, conv: Converter, settings: dict, job: Job, check, ref, f: Path) -> dict[str, Any]:
    a: dict[str, Any] = {"converter": conv.name, **settings}
    t = time.perf_counter()
    try:
        with _intermediate(conv.via, job) as source:
            conv.convert(job, f, **settings, **({"source": source} if source else {}))
        note = fmt.finish(f) if fmt.finish is not None else None
        if note:
            a["note"] = note
        if fmt.run is None:  # a format that cannot execute here (Core ML on Linux): checked structurally instead
            a["parity"] = fmt.validate(f, job)
        else:
            a["parity"] = parity.compare(ref, fmt.run(f, [x.numpy() for x in check]), job.precision)
        a["ok"] = True
    except EdgeKDError as exc:
        a.update(ok=False, error=str(exc))
    except Exception as exc:  # converter failures are expected on exotic graphs: record it, try the next one
        a.update(ok=False, error=f"{type(exc).__name__}: {first_line(exc)}")
    a["seconds"] = round(time.perf_counter() - t, 2)
    return a


@contextlib.contextmanager
def _intermediate(fmt_name: str | None, job: Job):
    """A converter from another format (onnx2tf reads ONNX) gets that file made here first, by that format's
    converters: static batch 1 (what such tools want), checked on up to 8 samples but kept even outside
    parity, since the final file is checked anyway."""
    if fmt_name is None:
        yield None
        return
    fmt = FORMATS[fmt_name]
    with tempfile.TemporaryDirectory(prefix=f"edgekd-{fmt_name}-") as d:
        path = Path(d) / f"model{fmt.suffix}"
        few = take(job.inputs, 0, min(8, batch_size(job.inputs)))
        export_with_parity(fmt, converters_for(fmt_name), job.model, few, path, strict=False,
                           parity_samples=PARITY_SAMPLES, dynamic_batch=False)
        yield path


def _diverging(model, check, path):
    from edgekd.export.diverge import first_diverging_layer

    return first_diverging_layer(model, check, path) if path else None


def failure_line(label: str, attempts: list[dict], diverging: str | None) -> str:
    parts = []
    for a in attempts:
        if a.get("ok"):
            p = a["parity"]
            why = p.get("reason") or f"max abs err {p['max_abs']:.3g}, cosine {p['cosine']:.6f}"
            parts.append(f"{a['converter']}: parity failed ({why})")
        else:
            parts.append(f"{a['converter']}: {a.get('error', 'failed')}")
    where = f"; first diverging layer: {diverging}" if diverging else ""
    return f"{label} export failed: " + " | ".join(parts) + where


def fill_ops(report: ExportReport, path: Path) -> None:
    from edgekd.inspect import count_ops, transpose_count

    report.ops = count_ops(path)
    report.num_ops = sum(report.ops.values())
    report.transpose_ops = transpose_count(report.ops)
    if path.is_dir():  # a Core ML .mlpackage
        report.size_bytes = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        return
    report.size_bytes = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + ".data"))
