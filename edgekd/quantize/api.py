"""quantize(): one entry for ONNX and TFLite quantization, with an optional accuracy budget.

With max_drop, int8 that loses more than the budget on held-out data is repaired by keeping the most
sensitive layers (see sensitivity.py) in float, doubling their number until the budget holds.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.core import atomic_path, check_output_file
from edgekd.errors import EdgeKDError
from edgekd.quantize import evaluation, onnx_quant, sensitivity, tflite_quant
from edgekd.quantize import float_head as head_rule
from edgekd.quantize.bias_correction import SAMPLES as BIAS_CORRECTION_SAMPLES
from edgekd.quantize.at_export import SUFFIX_FORMATS, quantize_at_export
from edgekd.quantize.report import QuantReport

SENSITIVITY_SAMPLES = 8  # samples for per-layer error: ranking needs few, each runs both files unfused
FEW_CALIB_SAMPLES = 32  # under this, a warning: activation ranges from a handful of images clip the others
MAX_SEARCH_STEPS = 8  # 1, 2, 4, ... layers kept float


def _check_array(name: str, a, *, labels: bool = False) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise EdgeKDError(f"{name} must be a numpy array, got {type(a).__name__}")
    if len(a) == 0:
        raise EdgeKDError(f"{name} is empty")
    if not labels and (not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all()):
        raise EdgeKDError(f"{name} must be finite float data (dtype {a.dtype})")
    return a.astype(np.int64) if labels else a.astype(np.float32, copy=False)


def _checked_or_none(name: str, a, n: int):
    return None if a is None else _check_array(name, a)[:n]


def _float_file(source, fmt: str, sample: np.ndarray | None, work: Path, nhwc: bool) -> Path:
    """The float file to quantize: the given one, or an export of the given nn.Module."""
    if isinstance(source, (str, Path)):
        from edgekd.core.inputs import check_model_file

        p = check_model_file(source)
        if p.suffix.lower() != f".{fmt}":
            raise EdgeKDError(f"cannot quantize {p.name} into .{fmt}: give a float .{fmt} file or a PyTorch model")
        from edgekd.quantize.source_checks import check_float_source

        check_float_source(p, sample)
        return p
    if sample is None:
        raise EdgeKDError("quantizing a PyTorch model needs calibration data to export it first")
    from edgekd.export import export_onnx, export_tflite

    dest = work / f"float.{fmt}"
    if fmt == "onnx":
        export_onnx(source, sample[:32], dest)
    else:
        export_tflite(source, sample[:32], dest, nhwc=nhwc)
    return dest


class _Backend:
    """Format-specific calls behind one interface."""

    def __init__(self, fmt: str, float_path: Path, work: Path, mode: str, calib, method, per_channel, int8_io,
                 reduce_range: bool = False, bias_correction: bool = False, head: bool = False,
                 head_weights: str = "int8"):
        self.fmt, self.mode, self.calib = fmt, mode, calib
        self.method, self.per_channel, self.int8_io, self.reduce_range = method, per_channel, int8_io, reduce_range
        self.bias_correction, self.corrected, self.bc_error = bias_correction, 0, None
        self.layer_means: dict = {}  # E[x] per layer input for bias correction: measured once, for every candidate
        self.work = work
        if fmt == "onnx" and mode == "int8":
            self.float_path = onnx_quant.preprocess(float_path, work / "float_prep.onnx")
        elif fmt == "onnx":
            self.float_path = onnx_quant.name_nodes(float_path, work / "float_named.onnx")
        else:
            self.float_path = float_path
        self.always_float: list[str] = []
        if fmt == "tflite" and mode in ("int8", "int16x8") and not int8_io:
            self.always_float = tflite_quant.ops_around_shared_outputs(float_path)
        # the float head rule (float_head.py): the layers producing the output logits, kept float in every candidate
        # head_weights int8: the head layers keep int8 weights and inputs and give float outputs (ONNX: no output
        # requantization; TFLite: dynamic-range FULLY_CONNECTED); float: fp32 weights and arithmetic
        self.head: list[str] = []  # the head layers
        self.head_after: list[str] = []  # ops after them, to the output: float
        self.head_weights = head_weights
        if head:
            found, after = (head_rule.onnx_head if fmt == "onnx" else head_rule.tflite_head)(self.float_path)
            self.head = [n for n in found if n not in self.always_float]
            self.head_after = [n for n in after if n not in self.always_float]

    def _float_layers(self) -> list[str]:
        """What the float head rule keeps float in every candidate."""
        return self.head_after + (self.head if self.head_weights == "float" else [])

    def make(self, dest: Path, keep: list[str]) -> Path:
        fixed = self._float_layers()
        keep = [*fixed, *(k for k in keep if k not in fixed)]
        src = self._bias_corrected(dest, keep) if self.bias_correction else self.float_path
        int8_head = [n for n in self.head if n not in keep]  # int8 weights, float output
        if self.fmt == "onnx":
            onnx_quant.quantize_onnx(src, dest, mode=self.mode, calib=self.calib, method=self.method,
                                     per_channel=self.per_channel, exclude=keep, reduce_range=self.reduce_range,
                                     float_output=int8_head)
        else:
            tflite_quant.quantize_tflite(src, dest, mode=self.mode, calib=self.calib, int8_io=self.int8_io,
                                         keep_float=[*self.always_float, *keep], dynamic=int8_head)
        return dest

    def _bias_corrected(self, dest: Path, keep: list[str]) -> Path:
        """The float file with bias-corrected, int8-grid weights (bias_correction.py); the float file itself when
        the correction cannot be made (self.bc_error says why: quantization goes on without it)."""
        src = dest.with_name(f"{dest.stem}_bc.{self.fmt}")
        try:
            if self.fmt == "onnx":
                self.corrected = onnx_quant.correct_biases(self.float_path, src, self.calib, exclude=keep,
                                                           per_channel=self.per_channel, reduce_range=self.reduce_range,
                                                           means=self.layer_means)
            else:
                self.corrected = tflite_quant.correct_biases(self.float_path, src, self.calib,
                                                             keep_float=[*self.always_float, *keep],
                                                             means=self.layer_means)
            return src
        except Exception as exc:  # a model the intermediates cannot be read from: quantize without the correction
            self.corrected, self.bc_error = 0, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            return self.float_path

    def rank(self, quant_path: Path, samples: np.ndarray) -> list[dict]:
        if self.fmt == "onnx":
            return sensitivity.rank(self.float_path, quant_path, onnx_quant.layers(self.float_path), samples,
                                    onnx_quant.quantized_value_name)
        return sensitivity.rank(self.float_path, quant_path, tflite_quant.layers(self.float_path), samples)


def quantize(source: Any, out_path, *, mode: str = "int8", calib: np.ndarray | None = None, method: str = "minmax",
             per_channel: bool = True, int8_io: bool = False, eval_data: tuple | None = None,
             max_drop: float | None = None, allow_drop: bool = False, calib_samples: int = 256,
             nhwc: bool = True, format: str | None = None, torch_model: Any = None,
             eval_split: str = "held-out data", coreml: dict | None = None,
             reduce_range: bool | None = None, bias_correction: bool = True,
             float_head: bool | None = None, float_head_weights: str = "int8") -> QuantReport:
    """Quantize `source` (float .onnx / .tflite path, or an nn.Module) into `out_path` (.onnx or .tflite).

    mode: int8 (static, calibrated; ONNX QDQ per-channel, TFLite full-int8) | dynamic | fp16 (TFLite)
          | int16x8 (TFLite: int16 activations, int8 weights).
    calib: real input samples, float32 NCHW, already normalised; the first `calib_samples` are used.
    int8_io: TFLite only — int8 input/output tensors (NPUs, MCUs) instead of float I/O.
    eval_data: (x, y) held-out data: top-1 accuracy; (x, None) without labels: top-1 agreement with the float
    file instead (evaluation.py). eval_split names it in the report. max_drop: allowed loss in points.
    The check of record is the budget when max_drop is given, else the parity tolerance against the float file:
    a failed check is an EdgeKDError under a budget (nothing written) unless allow_drop, else a warning in
    report.warnings; report.check carries the verdict for whoever ships the file.
    reduce_range: ONNX int8 only, 7-bit weights; None decides for the CPU of this machine (only x86 without VNNI
    needs it: onnx_quant.reduce_range_needed), and the report's notes say which and why.
    bias_correction: int8, the mean output shift each layer's weight rounding causes is taken out of its bias
    (bias_correction.py; ONNX and TFLite).
    float_head: static int8, the layer producing the output logits (the last Gemm / MatMul / FULLY_CONNECTED and
    the ops after it) stays float (float_head.py); None: the rule, on with float I/O, off with int8_io; False:
    int8 too (full-integer graphs: NPU targets pass False). report.float_head says which layers and why.
    float_head_weights: int8 (default) keeps the head's weights int8, so the file is no larger: ONNX int8 inputs and
    weights with a float output (QGemm), TFLite a dynamic-range FULLY_CONNECTED; float: fp32 weights and arithmetic.
    format: optional check that out_path has this suffix; torch_model: the PyTorch model, exported when
    `source` is not given (None) or is missing on disk. coreml: export_coreml's input options for a .mlpackage
    (input, normalisation, color_layout).
    """
    t0 = time.perf_counter()
    out = Path(out_path)
    fmt = out.suffix.lower().lstrip(".")
    if out.suffix.lower() in SUFFIX_FORMATS:  # .pte / .mlpackage: quantized while converting the PyTorch model
        if format is not None and format.lower() != SUFFIX_FORMATS[out.suffix.lower()]:
            raise EdgeKDError(f"--format {format} does not match the output file {out.name}")
        model = torch_model if torch_model is not None else (None if isinstance(source, (str, Path)) else source)
        return quantize_at_export(model, out, mode=mode, calib=_checked_or_none("calibration data", calib, calib_samples),
                                  eval_data=eval_data, max_drop=max_drop, allow_drop=allow_drop, coreml=coreml)
    _check_output_format(out, fmt, format)
    check_output_file(out, "--output", reads=[source if isinstance(source, (str, Path)) else None])
    source = _source(source, torch_model)
    _check_options(fmt, mode, method, int8_io, calib_samples, float_head, float_head_weights)
    if calib is not None:
        calib = _check_array("calibration data", calib)[:calib_samples]
    eval_data = _check_eval(eval_data)
    _check_budget(max_drop, eval_data)
    needs_calib = mode in ("int8", "int16x8")
    if needs_calib and calib is None:
        raise EdgeKDError(f"{mode} quantization needs calibration samples (real training data)")

    report = QuantReport(path=str(out), format=fmt, mode=mode, int8_io=int8_io, max_drop=max_drop,
                         method=method if needs_calib else None,
                         precision={"dynamic": "dynamic-int8", "fp16": "fp16", "int16x8": "int16x8"}.get(mode, "int8"),
                         calib_samples=int(len(calib)) if needs_calib else 0)
    if needs_calib and len(calib) < FEW_CALIB_SAMPLES:
        report.warnings.append(f"calibrated on only {len(calib)} sample(s): int8 ranges taken from so few miss the "
                               f"rest of the data's; give {FEW_CALIB_SAMPLES * 4} or more real training samples")
    with tempfile.TemporaryDirectory(prefix="edgekd-quant-") as d:
        work = Path(d)
        sample = calib if calib is not None else (eval_data[0] if eval_data is not None else None)
        float_path = _float_file(source, fmt, sample, work, nhwc)
        report.source = str(source) if isinstance(source, (str, Path)) else f"exported float .{fmt}"
        report.float_size_bytes = float_path.stat().st_size
        bc = bool(bias_correction) and mode == "int8"
        head, why = head_rule.decide(float_head, mode, int8_io)
        backend = _Backend(fmt, float_path, work, mode, calib, method, per_channel, int8_io,
                           _reduce_range(fmt, mode, reduce_range, report), bc, head, float_head_weights)
        _backend_notes(report, backend, fmt, per_channel)
        first = _all_int8(backend, work, fmt, mode)
        _check_runs(first, sample, mode, fmt)
        _head_report(report, head, why, backend, head_rule.float_in_file(first, fmt, backend.head))
        if bc:
            report.notes.append(_bias_note(backend, len(calib)))
        scorer = _scorer(backend.float_path, eval_data, eval_split, max_drop, report)
        chosen, chosen_keep = _within_budget(backend, first, report, calib, scorer, max_drop, allow_drop, work)
        if chosen_keep:
            report.precision = "mixed"
            report.latency = _timing({"float": backend.float_path, "int8_all": first, "shipped": chosen}, sample)
        parity_x = eval_data[0] if eval_data is not None else sample
        report.parity = _parity(backend.float_path, chosen, parity_x, report.precision)
        report.parity["on"] = eval_split if eval_data is not None else "calibration samples"
        _verdict(report, mode, allow_drop)
        with atomic_path(out) as tmp:
            shutil.copyfile(chosen, tmp)
    from edgekd.inspect import count_ops

    report.ops = count_ops(out)
    report.size_bytes = out.stat().st_size
    if mode == "fp16":  # fp16 weights, but fp16 or fp32 arithmetic? It depends on the CPU and the file's metadata
        from edgekd.quantize.fp16_compute import fp16_compute_note

        report.notes.append(fp16_compute_note(out))
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def _check_output_format(out: Path, fmt: str, format: str | None) -> None:
    if fmt not in ("onnx", "tflite"):
        raise EdgeKDError(f"quantized output must end in .onnx, .tflite, .pte or .mlpackage: {out}")
    if format is not None and format.lower() != fmt:
        raise EdgeKDError(f"--format {format} does not match the output file {out.name}")


def _source(source, torch_model):
    """The float model to quantize: the given file, else the PyTorch model (exported) when the file is missing."""
    if torch_model is not None and (source is None or (isinstance(source, (str, Path)) and not Path(source).is_file())):
        source = torch_model
    if source is None:
        raise EdgeKDError("nothing to quantize: give a float model file or a PyTorch model")
    return source


def _backend_notes(report: QuantReport, backend, fmt: str, per_channel: bool) -> None:
    if fmt == "onnx" and not per_channel:
        report.notes.append("weights quantized per tensor (one int8 scale per weight tensor), as asked")
    if backend.always_float:
        report.notes.append(f"{len(backend.always_float)} op(s) producing or reading a tensor that is also a model "
                            f"output stay float (ai-edge-quantizer breaks such a tensor): "
                            f"{', '.join(n.split(';')[0][-60:] for n in backend.always_float)}")


def _all_int8(backend, work: Path, fmt: str, mode: str) -> Path:
    """The file with every quantizable layer quantized (nothing kept float): the budget search starts from it."""
    try:
        return backend.make(work / f"q0.{fmt}", [])
    except EdgeKDError:
        raise
    except Exception as exc:
        raise EdgeKDError(f"{fmt} {mode} quantization failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None


def _check_options(fmt: str, mode: str, method: str, int8_io: bool, calib_samples: int, float_head, float_head_weights):
    """One-line errors for options that do not fit the output format or each other."""
    valid = ("int8", "dynamic") if fmt == "onnx" else tflite_quant.MODES
    if mode not in valid:
        raise EdgeKDError(f"mode '{mode}' is not available for .{fmt}: choose from {', '.join(valid)}")
    if method not in onnx_quant.METHODS:
        raise EdgeKDError(f"unknown calibration method '{method}': choose from {', '.join(onnx_quant.METHODS)}")
    if fmt == "tflite" and method != "minmax" and mode in ("int8", "int16x8"):
        raise EdgeKDError("TFLite calibration supports --method minmax only (entropy/percentile are ONNX options)")
    if int8_io and (fmt != "tflite" or mode != "int8"):
        raise EdgeKDError("--int8-io applies to TFLite int8 files only")
    if calib_samples < 1:
        raise EdgeKDError(f"--calib-samples must be at least 1, got {calib_samples}")
    if float_head_weights not in ("int8", "float"):
        raise EdgeKDError(f"float_head_weights must be int8 or float, got {float_head_weights!r}")
    if float_head and int8_io:
        raise EdgeKDError("--float-head needs float I/O: with --int8-io the logits are int8 (use --int8-head)")


def _check_budget(max_drop: float | None, eval_data) -> None:
    """An accuracy budget needs enough held-out data to measure a drop that small."""
    if max_drop is None:
        return
    if not 0 <= max_drop <= 100:  # points of top-1 accuracy (NaN fails too)
        raise EdgeKDError(f"--max-drop must lie in [0, 100] points of accuracy, got {max_drop}")
    if eval_data is None:
        raise EdgeKDError("--max-drop needs held-out data (labelled for accuracy, or unlabeled for agreement "
                          "with the float file) to measure the drop")
    if (problem := evaluation.size_problem(len(eval_data[0]), max_drop)) and problem[1]:
        raise EdgeKDError(problem[0])


def _bias_note(backend, n_calib: int) -> str:
    if backend.bc_error:
        return f"bias correction not applied ({backend.bc_error})"
    return (f"bias correction: {backend.corrected} layer(s) had the mean shift of their output from int8 weight "
            f"rounding taken out of their bias (E[x] over {min(n_calib, BIAS_CORRECTION_SAMPLES)} calibration samples)")


def _head_report(report: QuantReport, asked: bool, why: str, backend: _Backend, verified: list[str]) -> None:
    """report.float_head and a note: which layers give float logits by the float head rule, how, and why; only
    what the written file shows (`verified`: head layers whose output is float in it)."""
    layers = [n for n in backend.head if n in verified]
    if asked and not backend.head:
        why = "not applied: no Gemm / MatMul / FULLY_CONNECTED produces the model's output (nothing kept float)"
    elif asked and not layers:
        why = (f"not applied: the quantizer requantized the output of {', '.join(backend.head)} anyway "
               "(the file's logits are int8)")
    how = None
    if layers:
        how = ("fp32 weights and arithmetic" if backend.head_weights == "float" else
               "int8 weights and inputs, float output (ONNX Runtime QGemm / MatMulIntegerToFloat)"
               if backend.fmt == "onnx" else "int8 weights, float input and output (dynamic-range FULLY_CONNECTED)")
    report.float_head = {"applied": bool(layers), "layers": layers, "after": backend.head_after if layers else [],
                         "weights": backend.head_weights if layers else None, "how": how, "why": why}
    if layers:
        names = ", ".join(n.split(";")[0][-60:] for n in layers)
        report.notes.append(f"float head: {names} gives float logits ({how}), and {len(backend.head_after)} op(s) "
                            f"after it stay float: {why}")


def _reduce_range(fmt: str, mode: str, asked: bool | None, report: QuantReport) -> bool:
    """7-bit ONNX int8 weights? As asked, else as this machine's CPU needs (onnx_quant.reduce_range_needed);
    the report's notes say which and why."""
    if fmt != "onnx" or mode != "int8":
        return False
    rr, why = onnx_quant.reduce_range_needed()
    if asked is not None:
        rr, why = bool(asked), f"{'7' if asked else '8'}-bit weights, as asked (reduce_range {bool(asked)}); for " \
                               f"this CPU: {why}"
    report.notes.append(f"ONNX int8 weights: {why}")
    return rr


def _within_budget(backend: _Backend, first: Path, report: QuantReport, calib, scorer, max_drop, allow_drop,
                   work: Path) -> tuple[Path, list[str]]:
    """The file to keep and the layers it keeps in float: all-quantized, or the search's pick under a budget.
    Fills the report's scores; over budget without allow_drop: EdgeKDError (nothing written yet)."""
    mode = backend.mode
    ref = scorer.reference if scorer else None
    acc = scorer.score(first) if scorer else None
    report.search.append({"kept_float": 0, "accuracy": acc})
    chosen, chosen_acc, chosen_keep = first, acc, []
    over = max_drop is not None and acc is not None and ref - acc > max_drop
    if over and mode in ("int8", "int16x8"):
        chosen, chosen_acc, chosen_keep = _search(backend, first, acc, report, calib, scorer, max_drop, work)
    if max_drop is not None and chosen_acc is not None:
        report.budget_met = ref - chosen_acc <= max_drop
    if report.budget_met is False and not allow_drop:
        raise EdgeKDError(_over_budget(mode, ref, acc, report, scorer.measure, max_drop))
    report.kept_float = chosen_keep
    if scorer:
        report.accuracy_float = ref if scorer.measure == "accuracy" else None
        report.accuracy = chosen_acc if scorer.measure == "accuracy" else None
        report.drop_points = round(ref - chosen_acc, 3)
        report.agreement = scorer.agreement(chosen)
    return chosen, chosen_keep


def _check_eval(eval_data):
    """(x, y) checked; y may be None (unlabeled held-out data: agreement with the float file)."""
    if eval_data is None:
        return None
    x, y = eval_data
    x = _check_array("evaluation data", x)
    if y is None:
        return x, None
    y = _check_array("evaluation labels", y, labels=True)
    if len(x) != len(y):
        raise EdgeKDError(f"evaluation data has {len(x)} samples but {len(y)} labels")
    return x, y


def _scorer(float_path: Path, eval_data, split: str, max_drop, report: QuantReport):
    if eval_data is None:
        report.evaluation = {"on": None, "samples": 0, "measure": None,
                             "why": "no held-out data: only parity on the calibration samples"}
        return None
    scorer = evaluation.Scorer(float_path, eval_data[0], eval_data[1], split)
    report.evaluation = scorer.describe()
    if problem := evaluation.size_problem(len(eval_data[0]), max_drop):
        report.warnings.append(f"evaluated on {problem[0]}")
    return scorer


def _over_budget(mode: str, ref: float, acc: float, report: QuantReport, measure: str, max_drop: float) -> str:
    best = max(s["accuracy"] for s in report.search)
    what = "points" if measure == "accuracy" else "points of top-1 agreement with the float file"
    return (f"{mode} loses {ref - acc:.2f} {what} (float {ref:.2f}% -> {acc:.2f}%), over the --max-drop {max_drop} "
            f"budget; best with layers kept in float: {best:.2f}% ({len(report.search)} candidates tried). "
            "Use --allow-drop to keep it anyway")


def _verdict(report: QuantReport, mode: str, allow_drop: bool) -> None:
    """report.check and the warnings: the budget when there is one, else the parity tolerance."""
    par = report.parity
    parity_ok = par.get("passed") is not False
    figures = (f"top-1 agreement {_pct(par.get('top1_agreement'))}, worst cosine {_num(par.get('cosine'))}, "
               f"tolerance {par.get('tolerance')}, on {par.get('samples')} samples of {par.get('on')}")
    if report.max_drop is not None:
        passed, what = report.budget_met is not False, f"--max-drop {report.max_drop} budget"
        if not passed:
            report.warnings.append(f"the {mode} file loses {report.drop_points} points, over the {what}; kept "
                                   "because of --allow-drop")
        if not parity_ok:
            report.warnings.append(f"the {mode} file is within the budget but failed the parity check against "
                                   f"the float file ({figures})")
    else:
        passed, what = parity_ok, "parity against the float file"
        if not passed:
            report.warnings.append(f"the {mode} file failed its parity check against the float file ({figures}); "
                                   "it was written, but do not ship it unchecked (--max-drop POINTS makes this an "
                                   "error)")
    report.check = {"passed": bool(passed), "what": what, "allowed": bool(allow_drop)}


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _num(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def _search(backend: _Backend, first: Path, acc: float, report: QuantReport, calib, scorer, max_drop, work: Path):
    """Keep the 1, 2, 4, ... most sensitive layers in float until the budget holds."""
    ranked = backend.rank(first, calib[:SENSITIVITY_SAMPLES])
    report.sensitivity = [{k: r[k] for k in ("name", "op", "sqnr_db", "loss_db")} for r in ranked[:20]]
    best = (first, acc, [])
    # at most all but one layer: with every layer float the file is the float file, and ai-edge-quantizer refuses it
    # (no activation left to calibrate)
    limit = len(ranked) - 1
    k = 1
    for step in range(MAX_SEARCH_STEPS):
        if k > limit:
            break
        keep = [r["name"] for r in ranked[:k]]
        cand = backend.make(work / f"q{step + 1}.{backend.fmt}", keep)
        a = scorer.score(cand)
        report.search.append({"kept_float": k, "accuracy": a, "layers": keep})
        if a > best[1]:
            best = (cand, a, keep)
        if scorer.reference - a <= max_drop:
            if 2 * k > len(ranked):  # mostly float: it runs near float speed, which the user should hear of
                other = "--mode fp16" if backend.fmt == "tflite" else "the float file"
                report.warnings.append(
                    f"the --max-drop {max_drop} budget holds only with {k} of {len(ranked)} layers kept float: the "
                    f"file is mostly float and runs near float speed (see latency); {other} or a looser --max-drop "
                    "may serve better")
            return cand, a, keep
        if k == limit:
            break
        k = min(2 * k, limit)
    return best


def _check_runs(path: Path, sample, mode: str, fmt: str) -> None:
    """A quantized file can convert yet fail at run time (e.g. an int8 DIV whose divisor rounds to zero)."""
    from edgekd.export import execute

    if sample is None:
        return
    try:
        execute.run_file(path, [sample[:2]])
    except EdgeKDError as exc:
        if "the sample has" in str(exc):  # a multi-input file: nothing to run it on here
            return
        raise
    except Exception as exc:
        msg = " ".join(str(exc).split())[:200]
        other = "--mode int16x8 or --mode dynamic" if fmt == "tflite" else "--mode dynamic"
        raise EdgeKDError(f"the {mode} .{fmt} file does not run on real samples ({msg}); try {other}") from None


def _timing(paths: dict, sample) -> dict | None:
    from edgekd.quantize.timing import interleaved

    try:
        lat = interleaved({k: str(v) for k, v in paths.items()}, sample)
    except EdgeKDError:
        return None
    lat["shipped_vs_int8_all"] = round(lat["shipped"]["p50_ms"] / lat["int8_all"]["p50_ms"], 3)
    return lat


def _parity(float_path: Path, quant_path: Path, sample, precision: str) -> dict:
    from edgekd.export import execute, parity

    if sample is None:
        return {}
    x = sample[:32]
    try:
        ref = execute.run_file(float_path, [x])
        got = execute.run_file(quant_path, [x])
    except EdgeKDError as exc:
        return {"error": str(exc)}
    prec = {"dynamic-int8": "dynamic", "int16x8": "int8"}.get(precision, precision)
    return parity.compare(ref, got, prec)
