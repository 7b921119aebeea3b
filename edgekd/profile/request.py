"""What profile() hands a backend: the model file, its target, and the settings already resolved."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.targets import Target


@dataclass
class ProfileRequest:
    model: Path
    target: Target
    runs: int  # the user's, else the target's
    warmup: int
    threads: int
    sample: Any = None  # real input rows as an array (NPU calibration / comparison), None: random data
    inputs: Path | None = None  # the sample as an .npz, for the runner subprocesses
    op_profile: int = 0  # runs of the per-op breakdown (ONNX), in a separate session
    input_shape: tuple[int, ...] | None = None  # for files with dynamic dims besides the batch
    output_dir: Path | None = None  # where compiled files are kept
    require_device: bool = False  # fail instead of measuring on the host when a device is unreachable
    benchmark_model: str = ""  # adb: host path of a benchmark_model binary to push
    emulate: bool | str = False  # add the qemu estimate: True, or "auto" (where possible; failures become notes)
    user_runs: int | None = None  # as the user gave them: the emulation picks its own when None
    user_warmup: int | None = None
    notes: list[str] = field(default_factory=list)  # backends add what the report should say

    @property
    def max_seconds(self) -> float:
        return self.target.benchmark.max_seconds

    @property
    def xnnpack(self) -> bool:
        t = self.target
        return t.runtime != "litert" or "xnnpack" in t.delegates or not t.delegates
