"""NPU placement for the gate: which ops stay on the NPU, from edgekd.profile's HTP / Vela analysis.

Maps the profiler's result to {"share", "on_npu", "off_npu", "fallback_ops", "cycles", "tool", "kind"}.
share counts compute ops only (Quantize/DequantizeLinear are glue). When the analysis cannot run it
returns {"share": None, "error": "..."} and the check is reported as skipped, with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError


def npu_analysis(path: Path, target: Any) -> dict[str, Any]:
    path = Path(path)
    try:
        if target.runtime == "qnn":
            return _qnn(path, target)
        if target.runtime == "vela":
            return _vela(path, target)
    except ImportError as exc:
        return {"share": None, "error": f"NPU analysis for {target.runtime} is not installed ({exc})"}
    except EdgeKDError as exc:
        return {"share": None, "error": f"NPU analysis of {path.name} failed: {exc}"}
    return {"share": None, "error": f"target {target.name} runs on {target.runtime}: no NPU placement analysis"}


def _share(on: int, off: int) -> float | None:
    return on / (on + off) if (on + off) else None


def _qnn(path: Path, target: Any) -> dict[str, Any]:
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
    return {"share": _share(on, off), "on_npu": on, "off_npu": off, "fallback_ops": fallback, "cycles": None,
            "simulated_cycles": r.get("cycles_total"), "tool": "onnxruntime-qnn HTP", "kind": "simulated"}


def _vela(path: Path, target: Any) -> dict[str, Any]:
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
    return {"share": _share(on, off), "on_npu": on, "off_npu": off, "fallback_ops": dict(r.get("cpu_op_types") or {}),
            "cycles": r.get("cycles_total"), "tool": "vela", "kind": "estimated"}
