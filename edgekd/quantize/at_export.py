"""Formats quantized while converting, not after: an ExecuTorch .pte (int8 through PT2E with the XNNPACK
quantizer, before lowering) and a Core ML .mlpackage (fp16 compute, int8 weights). Both start from the PyTorch
model; the accuracy budget applies where the file runs here (.pte), and a Core ML file says it was not run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgekd.errors import EdgeKDError
from edgekd.quantize.report import QuantReport

SUFFIX_FORMATS = {".pte": "pte", ".mlpackage": "coreml"}
MODES = {"pte": ("int8", "fp32"), "coreml": ("fp16", "int8", "fp32")}


def quantize_at_export(torch_model, out: Path, *, mode: str, calib: np.ndarray | None, eval_data, max_drop,
                       allow_drop: bool, coreml: dict | None = None) -> QuantReport:
    from edgekd.export import export_coreml, export_pte

    t0 = time.perf_counter()
    fmt = SUFFIX_FORMATS[out.suffix.lower()]
    if mode not in MODES[fmt]:
        raise EdgeKDError(f"mode '{mode}' is not available for {out.suffix}: choose from {', '.join(MODES[fmt])}")
    if torch_model is None:
        raise EdgeKDError(f"{out.suffix} files are quantized while converting: give the PyTorch model, not a file")
    sample = calib if calib is not None else (eval_data[0] if eval_data is not None else None)
    if sample is None:
        raise EdgeKDError(f"exporting {out.name} needs real samples (calibration data)")
    if fmt == "pte":
        rep = export_pte(torch_model, sample[:32], out, precision=mode, calib=calib if mode == "int8" else None)
    else:
        rep = export_coreml(torch_model, sample[:32], out, precision=mode, **(coreml or {}))
    report = QuantReport(path=str(out), format=fmt, mode=mode, precision=mode, parity=rep.parity, ops=rep.ops,
                         size_bytes=rep.size_bytes, source="the PyTorch model (quantized while converting)",
                         calib_samples=int(len(calib)) if (fmt == "pte" and mode == "int8") else 0,
                         method="minmax" if (fmt == "pte" and mode == "int8") else None, notes=list(rep.notes),
                         input_layout=rep.input_layout if fmt == "coreml" else None)
    if rep.delegation:
        d = rep.delegation
        report.notes.append(f"delegation: {d['delegated_ops']} ops in XNNPACK, {d['portable_ops']} in portable kernels "
                            f"(share {d['share']:.1%}, read from the .pte)")
    if fmt == "pte" and eval_data is not None:
        _budget(report, torch_model, out, eval_data, max_drop, allow_drop)
    elif max_drop is not None:
        report.notes.append(f"--max-drop not checked for {out.name}: Core ML cannot run on this machine")
    report.check = _verdict(report, max_drop, allow_drop)
    if report.check["passed"] is False:  # a failed check is never silent (the shipping rule reads report.check)
        report.warnings.append(f"{out.name} failed its check ({report.check['what']})")
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def _verdict(report: QuantReport, max_drop, allow_drop: bool) -> dict:
    """The same verdict quantize() gives ONNX/TFLite files: the budget when one was given and measured, else
    parity with the PyTorch model (None for Core ML: not checkable on Linux)."""
    if max_drop is not None and report.budget_met is not None:
        return {"passed": bool(report.budget_met), "what": f"accuracy budget --max-drop {max_drop}",
                "allowed": allow_drop}
    return {"passed": (report.parity or {}).get("passed"), "what": "parity with the PyTorch model",
            "allowed": allow_drop}


def _budget(report: QuantReport, torch_model, out: Path, eval_data, max_drop, allow_drop: bool) -> None:
    from edgekd.runtime import accuracy, load_runner

    x, y = eval_data
    report.accuracy_float = round(accuracy(load_runner(torch_model, threads=1), x, y), 3)
    report.accuracy = round(accuracy(load_runner(out, threads=1), x, y), 3)
    report.drop_points = round(report.accuracy_float - report.accuracy, 3)
    report.search.append({"kept_float": 0, "accuracy": report.accuracy})
    if max_drop is None:
        return
    report.max_drop = max_drop
    report.budget_met = report.drop_points <= max_drop
    if not report.budget_met and not allow_drop:
        out.unlink(missing_ok=True)  # never leave a file that broke the budget where the run looks for it
        raise EdgeKDError(f"{report.mode} {out.name} loses {report.drop_points:.2f} points (PyTorch "
                          f"{report.accuracy_float:.2f}% -> {report.accuracy:.2f}%), over the --max-drop {max_drop} "
                          "budget. Use --allow-drop to keep it anyway")
