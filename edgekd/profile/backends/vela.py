"""Arm Ethos-U: Vela compiles the int8 .tflite and estimates cycles and memory statically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.backends import Backend, register_backend
from edgekd.errors import EdgeKDError
from edgekd.profile.backends._figures import cycles, kib, npu_share
from edgekd.profile.request import ProfileRequest


@register_backend("vela", runtime="vela")
class Vela(Backend):
    def validate(self, target, tables) -> None:
        tables.npu.get("accelerator_config", str)
        tables.npu.get("system_config", str, "")
        tables.npu.get("memory_mode", str, "")
        tables.npu.done()

    def profile(self, request: ProfileRequest) -> list[dict[str, Any]]:
        from edgekd.profile.vela import profile_vela

        return [profile_vela(request.model, request.target, output_dir=request.output_dir)]

    def npu_placement(self, path: Path, target: Any) -> dict[str, Any]:
        from edgekd.profile.vela import profile_vela

        try:
            r = profile_vela(path, target)
        except EdgeKDError as exc:
            if "placed no operator" not in str(exc):
                raise
            # Everything fell to the CPU: the worst placement, which the gate must see, not skip.
            from edgekd.inspect import count_ops

            ops = count_ops(path)
            return {"share": 0.0, "on_npu": 0, "off_npu": sum(ops.values()), "fallback_ops": ops, "cycles": None,
                    "tool": "vela", "kind": "estimated"}
        on, off = int(r.get("npu_ops") or 0), int(r.get("cpu_ops") or 0)
        # Vela's cycle count is a static estimate: same file, same number, so it is a fair hard check.
        return {"share": npu_share(on, off), "on_npu": on, "off_npu": off,
                "fallback_ops": dict(r.get("cpu_op_types") or {}), "cycles": r.get("cycles_total"),
                "tool": "vela", "kind": "estimated"}

    def where_short(self, result: dict[str, Any]) -> str:
        return f"Vela model of {(result.get('delegates') or [result.get('target', 'target')])[0]}"

    def figures(self, result: dict[str, Any]) -> list[str]:
        f = cycles(result)
        if result.get("npu_ops") is not None:
            f.append(f"{result['npu_ops']} NPU / {result.get('cpu_ops', 0)} CPU ops")
        if result.get("sram_used_bytes") is not None:
            f.append(f"SRAM {kib(result['sram_used_bytes'])}")
        if result.get("off_chip_flash_used_bytes"):
            f.append(f"flash {kib(result['off_chip_flash_used_bytes'])}")
        return f
