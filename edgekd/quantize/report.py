"""What a quantization run produced: precision, accuracy against float, what stayed in float, cost."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class QuantReport:
    path: str
    format: str  # onnx | tflite
    mode: str  # int8 | dynamic | fp16
    method: str | None = None  # calibration: minmax | entropy | percentile (int8 only)
    precision: str = "int8"  # int8 | mixed (some layers kept in float) | dynamic-int8 | fp16
    int8_io: bool = False
    calib_samples: int = 0
    evaluation: dict[str, Any] = field(default_factory=dict)  # on what (split, samples) and how (accuracy | agreement)
    agreement: dict[str, Any] = field(default_factory=dict)  # top-1 / top-5 / cosine / KL vs the float file, held out
    check: dict[str, Any] = field(default_factory=dict)  # the verdict: passed, what was checked, allowed (--allow-drop)
    warnings: list[str] = field(default_factory=list)  # failed checks and thin evaluations: never silent
    accuracy_float: float | None = None  # top-1 % on the held-out eval data (None when it has no labels)
    accuracy: float | None = None
    drop_points: float | None = None  # points lost vs float: of accuracy, or of top-1 agreement without labels
    max_drop: float | None = None
    budget_met: bool | None = None
    kept_float: list[str] = field(default_factory=list)  # layers left in float to meet the budget
    # the float head rule (float_head.py): applied, the layers producing the output kept float, and why (or why not)
    float_head: dict[str, Any] = field(default_factory=dict)
    search: list[dict[str, Any]] = field(default_factory=list)  # each candidate tried: kept layers, accuracy
    sensitivity: list[dict[str, Any]] = field(default_factory=list)  # most sensitive layers first
    latency: dict[str, Any] | None = None  # host timing of all-int8 vs the shipped file
    parity: dict[str, Any] = field(default_factory=dict)  # vs the float file on the calibration samples
    ops: dict[str, int] = field(default_factory=dict)
    size_bytes: int = 0
    float_size_bytes: int | None = None
    source: str | None = None  # the float file quantized
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    input_layout: str | None = None  # .mlpackage: "image GRAYSCALE|RGB|BGR" (raw 0..255 pixels) or "NCHW" (tensor)
    # quantization-aware training (qat.py): ran or why not, drops after PTQ / PTQ + fallback / QAT, its seconds
    qat: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
