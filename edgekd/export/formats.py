"""The file formats export writes: suffix, how a candidate file runs (for parity), post-processing, and
the report fields read back from the kept file. One Format per format; the loop is in fallback.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgekd.errors import EdgeKDError
from edgekd.export import execute
from edgekd.export.converters import quiet
from edgekd.export.report import ExportReport
from edgekd.export.sample import first_line, is_image

_EXTERNAL_DATA_BYTES = 1_800_000_000  # protobuf's 2 GB cap


@dataclass(frozen=True)
class Format:
    name: str  # onnx | tflite | pte | coreml (ExportReport.format, Converter.produces)
    label: str  # ONNX | TFLite | ExecuTorch | Core ML (messages)
    run: Callable[[Path, list], list] | None  # (file, input arrays) -> output arrays; None: cannot run here
    describe: Callable[[ExportReport, Path, tuple], None]  # fill the format's report fields from the kept file
    finish: Callable[[Path], "str | None"] | None = None  # post-process each candidate; returns a note
    sidecars: tuple[str, ...] = ()  # files written beside a candidate (external data)
    ext: str = ""  # file suffix when it is not ".<name>"
    precisions: tuple[str, ...] = ("fp32",)  # what its converters can write (Job.precision)
    validate: Callable[[Path, object], dict] | None = None  # run is None: the structural check, a parity-like dict

    @property
    def suffix(self) -> str:
        return self.ext or f".{self.name}"

    def output(self, out_path) -> Path:
        out = Path(out_path)
        if out.suffix.lower() != self.suffix:
            raise EdgeKDError(f"{self.label} output must end in {self.suffix}: {out}")
        return out


# ---- ONNX ---------------------------------------------------------------------------------------------

def _slim(tmp: Path) -> str | None:
    """Simplify with onnxslim (constant folding, fusions); keep the original graph if slimming fails."""
    import onnx
    import onnxslim

    try:
        model = onnx.load(str(tmp))
        with quiet():
            slim = onnxslim.slim(model)
        if slim is None:
            return "onnxslim returned nothing; kept the unslimmed graph"
        big = slim.ByteSize() > _EXTERNAL_DATA_BYTES
        onnx.save(slim, str(tmp), save_as_external_data=big, location=tmp.name + ".data" if big else None)
        return None
    except Exception as exc:  # slimming is an optimisation: never lose the export over it
        return f"onnxslim failed ({type(exc).__name__}: {first_line(exc, 120)}); kept the unslimmed graph"


def _describe_onnx(report: ExportReport, path: Path, inputs: tuple) -> None:
    import onnx

    report.input_shapes = [list(x.shape[1:]) for x in inputs]
    m = onnx.load(str(path), load_external_data=False)
    report.opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)


# ---- TFLite -------------------------------------------------------------------------------------------

def _tflite_input_shapes(path: Path) -> list[list[int]]:
    ins, _ = execute.tflite_io(execute.tflite_interpreter(path))
    return [[int(v) for v in d["shape"]] for d in ins]


def _tflite_input_layout(shapes: list[list[int]], inputs: tuple) -> str:
    if not is_image(inputs):
        return "NCHW" if inputs[0].ndim == 4 else "-"
    n, c, h, w = inputs[0].shape
    return "NHWC" if shapes[0][1:] == [h, w, c] and (c != h or h != w) else "NCHW"


def _describe_tflite(report: ExportReport, path: Path, inputs: tuple) -> None:
    report.input_shapes = _tflite_input_shapes(path)
    report.input_layout = _tflite_input_layout(report.input_shapes, inputs)


# ---- ExecuTorch ---------------------------------------------------------------------------------------

def _describe_pte(report: ExportReport, path: Path, inputs: tuple) -> None:
    from edgekd.inspect.pte import pte_ops

    report.input_shapes = [list(x.shape[1:]) for x in inputs]
    report.delegation = pte_ops(path)[1]
    d = report.delegation
    if d["portable_ops"]:
        report.notes.append(f"{d['portable_ops']} op(s) fall back to ExecuTorch's portable kernels outside XNNPACK: "
                            + ", ".join(f"{k} x{v}" for k, v in d["fallback_ops"].items()))


# ---- Core ML ------------------------------------------------------------------------------------------

def _validate_coreml(path: Path, job) -> dict:
    """The package loads as a spec with the model's inputs/outputs: what can be checked without an Apple device."""
    from edgekd.inspect.coreml import NOT_RUN, mlpackage_info

    info = mlpackage_info(path)
    if len(info["inputs"]) != len(job.inputs) or len(info["outputs"]) != job.n_outputs:
        raise EdgeKDError(f"the Core ML package has {len(info['inputs'])} inputs / {len(info['outputs'])} outputs, "
                          f"the model {len(job.inputs)} / {job.n_outputs}")
    if not info["ops"]:
        raise EdgeKDError("the Core ML package holds no compute ops")
    _check_image_input(info, job.image_input)
    return {"precision": job.precision, "passed": None, "checked": "structure", "reason": NOT_RUN,
            "outputs": job.n_outputs, "samples": 0}


def _check_image_input(info: dict, want) -> None:
    """An image input is what was asked for: imageType, color space, size, and the folded scale / bias."""
    got = info["inputs"][0]
    if want is None:
        if got["dtype"] == "image":
            raise EdgeKDError("the Core ML package takes an image where a TensorType was asked for")
        return
    if got["dtype"] != "image" or got.get("color_space") != want.color_layout or \
            got["shape"] != [1, want.channels, want.height, want.width]:
        raise EdgeKDError(f"the Core ML input is {got.get('color_space', got['dtype'])} {got['shape']}, not the "
                          f"{want.color_layout} image [1, {want.channels}, {want.height}, {want.width}] asked for")
    pre = info["preprocessing"].get(got["name"], {})
    scale, bias = pre.get("scale"), pre.get("bias") or []
    ok = isinstance(scale, float) and abs(scale - want.scale) <= 1e-5 * abs(want.scale) and len(bias) == want.channels \
        and all(abs(b - w) <= 1e-5 * max(1.0, abs(w)) for b, w in zip(bias, want.bias))  # fp32 consts in the spec
    if not ok:
        raise EdgeKDError(f"the Core ML image preprocessing in the spec (scale {scale}, bias {bias}) is not the "
                          f"folded normalisation (scale {want.scale:.6g}, bias {list(want.bias)})")


def _describe_coreml(report: ExportReport, path: Path, inputs: tuple) -> None:
    from edgekd.inspect.coreml import NOT_RUN, mlpackage_info

    info = mlpackage_info(path)
    report.input_shapes = [f["shape"] for f in info["inputs"]]
    report.validation = {k: info[k] for k in ("inputs", "outputs", "preprocessing", "compute_precision", "weights",
                                              "weight_dtypes", "opsets", "specification_version")}
    report.notes.append(f"Core ML: {NOT_RUN} (coremltools cannot run a model on Linux)")


FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", "ONNX", run=lambda f, xs: execute.run_onnx(f, xs), describe=_describe_onnx,
                   finish=_slim, sidecars=(".data",)),
    "tflite": Format("tflite", "TFLite", run=lambda f, xs: execute.run_tflite(f, xs), describe=_describe_tflite),
    "pte": Format("pte", "ExecuTorch", run=lambda f, xs: execute.run_pte(f, xs), describe=_describe_pte,
                  precisions=("fp32", "int8")),
    "coreml": Format("coreml", "Core ML", run=None, describe=_describe_coreml, ext=".mlpackage",
                     precisions=("fp32", "fp16", "int8"), validate=_validate_coreml),
}
