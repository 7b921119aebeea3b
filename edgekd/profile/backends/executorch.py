"""ExecuTorch (.pte, XNNPACK): measured on this machine in ExecuTorch's Python runtime, the same timing loop as
every host figure. No aarch64 ExecuTorch runtime is available here (PyPI ships executorch for x86_64 Linux and
macOS arm64 only), so a target of this runtime gets host-only figures, labelled so."""

from __future__ import annotations

from typing import Any

from edgekd.backends import Backend, register_backend
from edgekd.profile.request import ProfileRequest


@register_backend("executorch", runtime="executorch")
class ExecuTorch(Backend):
    default_format = "pte"

    def validate(self, target, tables) -> None:
        if target.connection.kind != "local":
            raise tables.connection.fail("kind", "must be \"local\" for runtime executorch (it runs on this host only)")

    def profile(self, request: ProfileRequest) -> list[dict[str, Any]]:
        from edgekd.profile.backends.host import host_fallback, measure_on_host

        if request.target.arch in ("native", ""):
            return [measure_on_host(request)]
        return [host_fallback(request, f"host-only: no {request.target.arch} ExecuTorch runtime or device here")]

    def describes(self, result_backend: str) -> bool:
        return result_backend == self.name

    def where_short(self, result: dict[str, Any]) -> str:
        return "this host (ExecuTorch)"


def delegation_placement(path) -> dict[str, Any]:
    """The .pte's XNNPACK share as the gate's placement dict (read from the file: deterministic)."""
    from edgekd.inspect.pte import pte_ops

    d = pte_ops(path)[1]
    return {"share": d["share"], "on_npu": d["delegated_ops"], "off_npu": d["portable_ops"],
            "fallback_ops": d["fallback_ops"], "cycles": None, "tool": "executorch .pte reader", "kind": "deterministic"}
