"""What an export did: which converter wrote the file, how close it is to PyTorch, what ops it holds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExportReport:
    path: str
    format: str  # onnx | tflite | pte | coreml
    converter: str  # torch.onnx-dynamo | torch.onnx-torchscript | litert-torch | onnx2tf | executorch-xnnpack | coremltools
    passed: bool | None  # parity within tolerance on the real sample; None: the file cannot run here (Core ML)
    parity: dict[str, Any] = field(default_factory=dict)  # see edgekd.export.parity.compare
    attempts: list[dict[str, Any]] = field(default_factory=list)  # every converter tried, in order
    diverging_layer: str | None = None  # first layer whose outputs leave tolerance (parity failure only)
    ops: dict[str, int] = field(default_factory=dict)
    num_ops: int = 0
    transpose_ops: int = 0
    size_bytes: int = 0
    input_layout: str = "NCHW"
    input_shapes: list[list[int]] = field(default_factory=list)
    opset: int | None = None
    precision: str = "fp32"
    delegation: dict[str, Any] = field(default_factory=dict)  # pte: ops in XNNPACK vs portable kernels
    validation: dict[str, Any] = field(default_factory=dict)  # coreml: what the structural check read
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
