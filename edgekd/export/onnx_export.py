"""PyTorch -> ONNX: torch.onnx (dynamo), TorchScript exporter as fallback, onnxslim, parity on real data."""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from pathlib import Path
from typing import Any

from edgekd.core import atomic_path
from edgekd.errors import EdgeKDError
from edgekd.export import execute, parity
from edgekd.export.report import ExportReport
from edgekd.export.sample import as_tensors, batch_size, first_line, take, torch_outputs

PARITY_SAMPLES = 32  # enough real samples for top-1 agreement, few enough to stay fast
_EXTERNAL_DATA_BYTES = 1_800_000_000  # protobuf's 2 GB cap


def _io_names(inputs: tuple, n_outputs: int) -> tuple[list[str], list[str]]:
    ins = ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]
    outs = ["output"] if n_outputs == 1 else [f"output_{i}" for i in range(n_outputs)]
    return ins, outs


def _trace_batch(inputs: tuple) -> tuple:
    """Two samples: torch.export specialises a size-1 dim, which would pin the batch to 1."""
    import torch

    if batch_size(inputs) >= 2:
        return take(inputs, 0, 2)
    return tuple(torch.cat([a, a]) for a in inputs)


@contextlib.contextmanager
def _quiet():
    """The exporters print progress and deprecation notes; keep the user's terminal readable."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _export_dynamo(model, inputs, tmp: Path, names, opset, dynamic: bool) -> None:
    import torch

    ins, outs = names
    args = _trace_batch(inputs) if dynamic else take(inputs, 0, 1)
    shapes = tuple({0: torch.export.Dim("batch", min=1, max=4096)} for _ in args) if dynamic else None
    with _quiet():
        prog = torch.onnx.export(model, args, dynamo=True, input_names=ins, output_names=outs,
                                 opset_version=opset, dynamic_shapes=shapes, external_data=False, verify=False)
    if prog is None:
        raise RuntimeError("torch.onnx returned no program")
    prog.save(str(tmp), external_data=False)


def _export_torchscript(model, inputs, tmp: Path, names, opset, dynamic: bool) -> None:
    import torch

    ins, outs = names
    axes = {n: {0: "batch"} for n in ins + outs} if dynamic else None
    with _quiet():
        torch.onnx.export(model, take(inputs, 0, 1), str(tmp), dynamo=False, input_names=ins, output_names=outs,
                          opset_version=opset or 17, dynamic_axes=axes, do_constant_folding=True)


def _slim(tmp: Path) -> str | None:
    """Simplify with onnxslim (constant folding, fusions); keep the original graph if slimming fails."""
    import onnx
    import onnxslim

    try:
        model = onnx.load(str(tmp))
        with _quiet():
            slim = onnxslim.slim(model)
        if slim is None:
            return "onnxslim returned nothing; kept the unslimmed graph"
        big = slim.ByteSize() > _EXTERNAL_DATA_BYTES
        onnx.save(slim, str(tmp), save_as_external_data=big, location=tmp.name + ".data" if big else None)
        return None
    except Exception as exc:  # slimming is an optimisation: never lose the export over it
        return f"onnxslim failed ({type(exc).__name__}: {first_line(exc, 120)}); kept the unslimmed graph"


def _opset(path: Path) -> int | None:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)


def fill_ops(report: ExportReport, path: Path) -> None:
    from edgekd.inspect import count_ops, transpose_count

    report.ops = count_ops(path)
    report.num_ops = sum(report.ops.values())
    report.transpose_ops = transpose_count(report.ops)
    report.size_bytes = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + ".data"))


def export_onnx(model, sample: Any, out_path, *, opset: int | None = None, dynamic_batch: bool = True,
                strict: bool = True, parity_samples: int = PARITY_SAMPLES) -> ExportReport:
    """Export `model` to ONNX at `out_path`, checked against PyTorch on the real `sample` batch.

    Tries torch.onnx dynamo (dynamic batch, then batch 1), then the TorchScript exporter; the first file
    within fp32 parity is kept. strict=True raises EdgeKDError (naming the first diverging layer) when
    no converter reaches parity, and then writes nothing; strict=False keeps the best file anyway.
    """
    out = Path(out_path)
    if out.suffix.lower() != ".onnx":
        raise EdgeKDError(f"ONNX output must end in .onnx: {out}")
    model = model.eval()
    inputs = as_tensors(sample)
    check = take(inputs, 0, min(parity_samples, batch_size(inputs)))
    ref = torch_outputs(model, check)
    names = _io_names(inputs, len(ref))
    t0 = time.perf_counter()
    plans = []
    if dynamic_batch:
        plans.append(("torch.onnx-dynamo", _export_dynamo, True))
    plans += [("torch.onnx-dynamo", _export_dynamo, False)]
    plans += [("torch.onnx-torchscript", _export_torchscript, dynamic_batch)]
    attempts: list[dict[str, Any]] = []
    with atomic_path(out) as tmp:
        tries: list[Path] = []
        try:
            best, best_file = None, None
            for i, (conv, fn, dyn) in enumerate(plans):
                f = tmp.with_name(f"{tmp.stem}.try{i}.onnx")
                tries.append(f)
                a = _attempt(conv, fn, dyn, model, inputs, check, ref, f, names, opset)
                attempts.append(a)
                if a.get("ok") and (best is None or a["parity"]["passed"]):
                    best, best_file = a, f
                if best is not None and best["parity"]["passed"]:
                    break
            diverging = None
            if best is not None and not best["parity"]["passed"]:
                with contextlib.suppress(Exception):  # diagnosis must not hide the parity failure
                    diverging = _diverging(model, check, best_file)
            if best is None or (strict and not best["parity"]["passed"]):
                raise EdgeKDError(_failure_line("ONNX", attempts, diverging))
            best_file.replace(tmp)
        finally:
            for f in tries:
                f.unlink(missing_ok=True)
                Path(str(f) + ".data").unlink(missing_ok=True)
        report = ExportReport(path=str(out), format="onnx", converter=best["converter"], passed=best["parity"]["passed"],
                              parity=best["parity"], attempts=attempts, diverging_layer=diverging,
                              input_shapes=[list(x.shape[1:]) for x in inputs])
        report.opset = _opset(tmp)
        fill_ops(report, tmp)
    report.path = str(out)
    report.seconds = round(time.perf_counter() - t0, 2)
    report.notes += [a["note"] for a in attempts if a.get("note")]
    return report


def _attempt(conv, fn, dyn, model, inputs, check, ref, f: Path, names, opset) -> dict[str, Any]:
    a: dict[str, Any] = {"converter": conv, "dynamic_batch": dyn}
    t = time.perf_counter()
    try:
        fn(model, inputs, f, names, opset, dyn)
        note = _slim(f)
        if note:
            a["note"] = note
        got = execute.run_onnx(f, [x.numpy() for x in check])
        a["parity"] = parity.compare(ref, got, "fp32")
        a["ok"] = True
    except EdgeKDError as exc:
        a.update(ok=False, error=str(exc))
    except Exception as exc:  # any exporter failure: record it and try the next one
        a.update(ok=False, error=f"{type(exc).__name__}: {first_line(exc)}")
    a["seconds"] = round(time.perf_counter() - t, 2)
    return a


def _diverging(model, check, path):
    from edgekd.export.diverge import first_diverging_layer

    return first_diverging_layer(model, check, path) if path else None


def _failure_line(fmt: str, attempts: list[dict], diverging: str | None) -> str:
    parts = []
    for a in attempts:
        if a.get("ok"):
            p = a["parity"]
            why = p.get("reason") or f"max abs err {p['max_abs']:.3g}, cosine {p['cosine']:.6f}"
            parts.append(f"{a['converter']}: parity failed ({why})")
        else:
            parts.append(f"{a['converter']}: {a.get('error', 'failed')}")
    where = f"; first diverging layer: {diverging}" if diverging else ""
    return f"{fmt} export failed: " + " | ".join(parts) + where
