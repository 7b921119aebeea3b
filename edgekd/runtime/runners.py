"""Run a model file (ONNX, TFLite) or an nn.Module on float32 NCHW batches, the way every stage needs.

Hides what differs between files: NHWC inputs, int8/uint8 I/O (quantized with the file's own
scale/zero-point), and a batch dimension fixed at 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekd.core.inputs import require_file
from edgekd.errors import EdgeKDError
from edgekd.runtime.layout import dequantize, fit_layout, quantize_input
from edgekd.runtime.sessions import litert_interpreter, ort_session


class Runner:
    format = "unknown"
    input_layout = "NCHW"
    input_dtype = "float32"
    batch_fixed = False

    def prepare(self, x: np.ndarray) -> Any:  # runtime-ready input for run_once
        raise NotImplementedError

    def run_once(self, prepared: Any) -> np.ndarray:
        raise NotImplementedError

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        step = 1 if self.batch_fixed else batch_size
        outs = [self.run_once(self.prepare(x[i : i + step])) for i in range(0, len(x), step)]
        return np.concatenate(outs, axis=0)


class TorchRunner(Runner):
    format = "pytorch"

    def __init__(self, module, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.module = module.eval()

    def prepare(self, x):
        import torch

        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def run_once(self, prepared):
        import torch

        from edgekd.core.outputs import logits_of

        with torch.inference_mode():
            out = self.module(prepared)
        return logits_of(out).float().numpy()


class OnnxRunner(Runner):
    format = "onnx"

    def __init__(self, path: Path, threads: int | None = None, providers: list | None = None):
        self.session = ort_session(path, threads=threads, providers=providers)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(d if isinstance(d, int) else -1 for d in inp.shape)
        self.batch_fixed = self.input_shape[:1] == (1,)
        self.input_dtype = {"tensor(float)": "float32", "tensor(float16)": "float16"}.get(inp.type, inp.type)

    def prepare(self, x):
        x, self.input_layout = fit_layout(np.asarray(x, dtype=np.float32), self.input_shape)
        return x.astype(np.float16) if self.input_dtype == "float16" else x

    def run_once(self, prepared):
        return np.asarray(self.session.run(None, {self.input_name: prepared})[0], dtype=np.float32)


class TFLiteRunner(Runner):
    format = "tflite"
    batch_fixed = True  # resizing converted graphs is fragile; one sample per invoke is always valid

    def __init__(self, path: Path, threads: int | None = None, delegates: list | None = None):
        self.interp = litert_interpreter(path, threads=threads, delegates=delegates)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self.inp["shape"])
        self.input_dtype = np.dtype(self.inp["dtype"]).name

    def prepare(self, x):
        x, self.input_layout = fit_layout(np.asarray(x, dtype=np.float32), self.input_shape)
        return quantize_input(x, self.inp["dtype"], self.inp["quantization"], f"input {self.inp['name']}")

    def run_once(self, prepared):
        self.interp.set_tensor(self.inp["index"], prepared)
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])
        return dequantize(y, self.out["quantization"]).astype(np.float32, copy=False)


class PteRunner(Runner):
    """An ExecuTorch program in ExecuTorch's Python runtime (XNNPACK + portable kernels), batch 1, NCHW."""

    format = "pte"
    batch_fixed = True

    def __init__(self, path: Path, threads: int | None = None):
        from edgekd.runtime.executorch_rt import PteMethod

        self.method = PteMethod(path, threads=threads)
        self.input_shape = self.method.input_shapes[0]

    def prepare(self, x):
        return np.ascontiguousarray(x, dtype=np.float32).reshape(self.input_shape)

    def run_once(self, prepared):
        return self.method.run([prepared])[0].astype(np.float32, copy=False)


def load_runner(model: Any, threads: int | None = None, **kwargs) -> Runner:
    """A Runner for an nn.Module or a .onnx / .tflite path."""
    if not isinstance(model, (str, Path)):
        return TorchRunner(model, threads)
    if Path(model).suffix == ".mlpackage":
        raise EdgeKDError(f"{Path(model).name}: Core ML packages run only on Apple devices (coremltools cannot "
                          "execute them on Linux)")
    path = require_file(model, "model file")
    if path.suffix == ".onnx":
        return OnnxRunner(path, threads, **kwargs)
    if path.suffix == ".tflite":
        return TFLiteRunner(path, threads, **kwargs)
    if path.suffix == ".pte":
        return PteRunner(path, threads)
    raise EdgeKDError(f"{path.name}: unsupported model file type '{path.suffix}' (expected .onnx, .tflite or .pte)")


def accuracy(runner: Runner, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    pred = runner.predict(x).argmax(axis=1)
    return float((pred == y).mean() * 100.0)
