"""Hook for issue 9: emulated aarch64 instructions per inference (edgekd.emulate, qemu-user plugin).

The gate only needs one number per model; whatever edgekd.emulate returns is mapped here so the
gate does not depend on its internals. Missing module -> a clear error, reported as a skipped check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from edgekd.errors import EdgeKDError

# Keys edgekd.emulate may use for the per-inference count, most specific first.
_KEYS = ("emulated_instructions", "instructions_per_inference", "per_inference", "instructions_per_invoke", "instructions")


def _pick(result: Any) -> float | None:
    if isinstance(result, (int, float)):
        return float(result)
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    if isinstance(result, dict):
        for k in _KEYS:
            v = result.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            if isinstance(v, dict):  # nested {"instructions": {"per_inference": ...}}
                inner = _pick(v)
                if inner is not None:
                    return inner
    return None


def arm_counter() -> Callable[[Path, Any], dict]:
    try:
        import edgekd.emulate as emu
    except ImportError as exc:
        raise EdgeKDError(f"--arm-instructions needs edgekd.emulate (issue 9): {exc}") from None
    fn = getattr(emu, "instruction_count", None)
    if fn is None:
        raise EdgeKDError("--arm-instructions: edgekd.emulate has no instruction_count()")

    def count(path: Path, target: Any) -> dict:
        try:
            res = fn(path, target)
        except EdgeKDError:
            raise
        except Exception as exc:
            raise EdgeKDError(f"emulated instruction count of {Path(path).name} failed: {exc}") from None
        n = _pick(res)
        if n is None:
            raise EdgeKDError("edgekd.emulate returned no per-inference instruction count")
        where = res.get("where") if isinstance(res, dict) else None
        return {"per_inference": n, "how": where or "edgekd.emulate.instruction_count (qemu-user aarch64)",
                "kind": "simulated", "spread": res.get("instructions_spread") if isinstance(res, dict) else None}

    return count
