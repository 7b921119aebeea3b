"""Qualcomm Hexagon HTP: compiled and simulated offline with onnxruntime-qnn (placement and numerics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.backends import Backend, register_backend
from edgekd.profile.backends._figures import cycles, kib, npu_share
from edgekd.profile.request import ProfileRequest


@register_backend("qnn-htp", runtime="qnn")
class QnnHtp(Backend):
    default_format = "onnx"  # QDQ ONNX, made with onnxruntime's QNN quantization config

    def validate(self, target, tables) -> None:
        tables.npu.positive("soc_model", int)
        tables.npu.positive("htp_arch", int)
        tables.npu.done()

    def profile(self, request: ProfileRequest) -> list[dict[str, Any]]:
        from edgekd.profile.qnn import profile_qnn

        r = request
        return [profile_qnn(r.model, r.target, sample=r.sample, runs=r.runs, warmup=r.warmup, output_dir=r.output_dir)]

    def npu_placement(self, path: Path, target: Any) -> dict[str, Any]:
        import logging

        from edgekd.profile.qnn import QDQ_OPS, profile_qnn

        # onnxruntime's quantizer logs "consider pre-processing" to the root logger on every call: CI-log noise.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            r = profile_qnn(path, target, runs=1, warmup=0)
        finally:
            root.setLevel(level)
        on, off = int(r["compute_nodes_on_htp"]), int(r["compute_nodes_on_cpu"])
        fallback = {k: int(v) for k, v in (r.get("op_types_cpu") or {}).items() if k not in QDQ_OPS}
        # Simulated HTP cycles are reported, not gated: the gate only hard-fails on static facts here.
        return {"share": npu_share(on, off), "on_npu": on, "off_npu": off, "fallback_ops": fallback, "cycles": None,
                "simulated_cycles": r.get("cycles_total"), "tool": "onnxruntime-qnn HTP", "kind": "simulated"}

    def where_short(self, result: dict[str, Any]) -> str:
        return "QNN HTP simulator"

    def figures(self, result: dict[str, Any]) -> list[str]:
        f = cycles(result)
        if result.get("compute_nodes_on_htp") is None:
            return f
        on, off = result["compute_nodes_on_htp"], result.get("compute_nodes_on_cpu") or 0
        f.append(f"{on}/{on + off} compute nodes on the HTP")
        agreement = result.get("agreement") or {}
        same = agreement.get("vs_cpu_same_qdq_model") or {}
        if same.get("top1_agreement") is not None:
            n = str(agreement.get("inputs", "")).split(" ")[0]
            inputs = f" on {n} inputs" if n.isdigit() else ""
            f.append(f"top-1 agreement with CPU {same['top1_agreement']:.0%}{inputs} (max diff {same['max_abs_diff']:.2g})")
        if result.get("context_binary_bytes"):
            f.append(f"context binary {kib(result['context_binary_bytes'])}")
        return f
