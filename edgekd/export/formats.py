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
    name: str  # onnx | tflite (ExportReport.format, Converter.produces)
    label: str  # ONNX | TFLite (messages)
    run: Callable[[Path, list], list]  # (file, input arrays) -> output arrays
    describe: Callable[[ExportReport, Path, tuple], None]  # fill the format's report fields from the kept file
    finish: Callable[[Path], "str | None"] | None = None  # post-process each candidate; returns a note
    sidecars: tuple[str, ...] = ()  # files written beside a candidate (external data)

    @property
    def suffix(self) -> str:
        return f".{self.name}"

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


FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", "ONNX", run=lambda f, xs: execute.run_onnx(f, xs), describe=_describe_onnx,
                   finish=_slim, sidecars=(".data",)),
    "tflite": Format("tflite", "TFLite", run=lambda f, xs: execute.run_tflite(f, xs), describe=_describe_tflite),
}
