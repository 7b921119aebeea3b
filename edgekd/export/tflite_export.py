"""PyTorch -> TFLite: litert-torch first (no TensorFlow, NHWC I/O wrapper), onnx2tf as the fallback.

Each candidate file is checked against PyTorch on the real sample; the first within fp32 parity wins.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from edgekd.core import atomic_path
from edgekd.errors import EdgeKDError
from edgekd.export import execute, onnx2tf_backend, parity
from edgekd.export.onnx_export import PARITY_SAMPLES, _diverging, _failure_line, _quiet, export_onnx, fill_ops
from edgekd.export.report import ExportReport
from edgekd.export.sample import as_tensors, batch_size, first_line, is_image, take, torch_outputs

CONVERTERS = ("litert-torch", "onnx2tf")


def litert_convert(model, inputs: tuple, dest: Path, *, nhwc: bool, quant_config=None) -> None:
    """litert-torch at batch 1; image models get channels-last input via to_channel_last_io."""
    import litert_torch

    one = take(inputs, 0, 1)
    if nhwc and is_image(inputs):
        model = litert_torch.to_channel_last_io(model, args=[0]).eval()
        one = (one[0].permute(0, 2, 3, 1).contiguous(),)
    with _quiet():
        edge = litert_torch.convert(model, one, quant_config=quant_config) if quant_config else litert_torch.convert(model, one)
        edge.export(str(dest))


def onnx2tf_convert(model, inputs: tuple, dest: Path, *, nhwc: bool) -> None:
    """ONNX at batch 1 (onnx2tf wants static shapes) -> onnx2tf float32 file."""
    with tempfile.TemporaryDirectory(prefix="edgekd-onnx-") as d:
        onnx_path = Path(d) / "model.onnx"
        export_onnx(model, take(inputs, 0, min(8, batch_size(inputs))), onnx_path, dynamic_batch=False, strict=False)
        images = None
        if is_image(inputs):
            images = inputs[0][:20].permute(0, 2, 3, 1).numpy()
        data, _ = onnx2tf_backend.convert(onnx_path, nhwc=nhwc, images_nhwc=images, want="float32")
    dest.write_bytes(data)


_CONVERT = {"litert-torch": litert_convert, "onnx2tf": onnx2tf_convert}


def _attempt(conv: str, model, inputs, check, ref, f: Path, nhwc: bool) -> dict[str, Any]:
    a: dict[str, Any] = {"converter": conv}
    t = time.perf_counter()
    try:
        _CONVERT[conv](model, inputs, f, nhwc=nhwc)
        got = execute.run_tflite(f, [x.numpy() for x in check])
        a["parity"] = parity.compare(ref, got, "fp32")
        a["ok"] = True
    except EdgeKDError as exc:
        a.update(ok=False, error=str(exc))
    except Exception as exc:  # converter failures are expected on exotic graphs: try the next one
        a.update(ok=False, error=f"{type(exc).__name__}: {first_line(exc)}")
    a["seconds"] = round(time.perf_counter() - t, 2)
    return a


def export_tflite(model, sample: Any, out_path, *, nhwc: bool = True, converters: tuple[str, ...] = CONVERTERS,
                  strict: bool = True, parity_samples: int = PARITY_SAMPLES) -> ExportReport:
    """Export `model` to a float32 .tflite (batch 1) at `out_path`, checked against PyTorch on `sample`.

    nhwc: image models (one 4-D float input) take channels-last input, the layout TFLite kernels and
    mobile camera pipelines use, so the file needs no Transpose at its input.
    converters: tried in order; the first file within parity is kept (strict: none -> EdgeKDError).
    """
    out = Path(out_path)
    if out.suffix.lower() != ".tflite":
        raise EdgeKDError(f"TFLite output must end in .tflite: {out}")
    unknown = [c for c in converters if c not in _CONVERT]
    if unknown or not converters:
        raise EdgeKDError(f"unknown TFLite converter(s) {unknown}: choose from {', '.join(CONVERTERS)}")
    model = model.eval()
    inputs = as_tensors(sample)
    check = take(inputs, 0, min(parity_samples, batch_size(inputs)))
    ref = torch_outputs(model, check)
    t0 = time.perf_counter()
    attempts: list[dict[str, Any]] = []
    with atomic_path(out) as tmp:
        tries: list[Path] = []
        try:
            best, best_file = None, None
            for i, conv in enumerate(converters):
                if conv == "onnx2tf" and not onnx2tf_backend.available():
                    attempts.append({"converter": conv, "ok": False, "error": "not installed (pip install 'edgekd[tf]')"})
                    continue
                f = tmp.with_name(f"{tmp.stem}.try{i}.tflite")
                tries.append(f)
                a = _attempt(conv, model, inputs, check, ref, f, nhwc)
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
                raise EdgeKDError(_failure_line("TFLite", attempts, diverging))
            best_file.replace(tmp)
        finally:
            for f in tries:
                f.unlink(missing_ok=True)
        layout = _input_layout(tmp, inputs)
        report = ExportReport(path=str(out), format="tflite", converter=best["converter"], passed=best["parity"]["passed"],
                              parity=best["parity"], attempts=attempts, diverging_layer=diverging,
                              input_layout=layout, input_shapes=_input_shapes(tmp))
        fill_ops(report, tmp)
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def _input_shapes(path: Path) -> list[list[int]]:
    it = execute.tflite_interpreter(path)
    ins, _ = execute.tflite_io(it)
    return [[int(v) for v in d["shape"]] for d in ins]


def _input_layout(path: Path, inputs: tuple) -> str:
    if not is_image(inputs):
        return "NCHW" if inputs[0].ndim == 4 else "-"
    n, c, h, w = inputs[0].shape
    shape = _input_shapes(path)[0]
    return "NHWC" if shape[1:] == [h, w, c] and (c != h or h != w) else "NCHW"
