"""NPU placement for the gate: which ops stay on the NPU, from the target's backend (edgekd/backends.py).

The backend maps its analysis to {"share", "on_npu", "off_npu", "fallback_ops", "cycles", "tool", "kind"}.
share counts compute ops only (Quantize/DequantizeLinear are glue). When the analysis cannot run this
returns {"share": None, "error": "..."} and the check is reported as skipped, with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.backends import backend_for
from edgekd.errors import EdgeKDError


def npu_analysis(path: Path, target: Any) -> dict[str, Any]:
    path = Path(path)
    try:
        placement = backend_for(target).npu_placement(path, target)
    except ImportError as exc:
        return {"share": None, "error": f"NPU analysis for {target.runtime} is not installed ({exc})"}
    except EdgeKDError as exc:
        return {"share": None, "error": f"NPU analysis of {path.name} failed: {exc}"}
    if placement is None:
        return {"share": None, "error": f"target {target.name} runs on {target.runtime}: no NPU placement analysis"}
    return placement
