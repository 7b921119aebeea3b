"""This machine's CPU: the runner subprocess measures the file here. Also the stand-in that ssh and adb
targets fall back to when their device is unreachable, labelled so nobody mistakes it for the device."""

from __future__ import annotations

import os
from typing import Any

from edgekd.backends import Backend, register_backend
from edgekd.profile.report import make_result
from edgekd.profile.request import ProfileRequest


def measure_on_host(req: ProfileRequest, threads: int | None = None) -> dict[str, Any]:
    from edgekd.profile.host import host_where, measure_local

    data = measure_local(req.model, runs=req.runs, warmup=req.warmup, threads=req.threads if threads is None else threads,
                         max_seconds=req.max_seconds, inputs=str(req.inputs) if req.inputs else None,
                         xnnpack=req.xnnpack, op_profile=req.op_profile, shape=req.input_shape)
    return make_result("measured", host_where(data), "host", **data)


def host_fallback(req: ProfileRequest, reason: str) -> dict[str, Any]:
    """Measured on this machine because the target's device is not reachable: said in `where`."""
    threads = req.threads
    host_threads = min(threads, os.cpu_count() or 1)  # oversubscribing a small host would only add noise
    res = measure_on_host(req, host_threads)
    capped = f", threads capped from {threads} to the host's {host_threads} cores" if host_threads < threads else ""
    res["where"] += (f"{capped}; no {req.target.name} device reachable, measured on this host, "
                     f"NOT the device ({reason})")
    res["backend"] = "host-fallback"
    res["fallback_reason"] = reason
    return res


# "offline": nothing to reach; a CPU runtime compiled offline still runs here (NPU runtimes have their own backend)
@register_backend("host", connections=("local", "offline"))
class Host(Backend):
    def validate(self, target, tables) -> None:
        if target.connection.kind == "offline" and not target.connection.compiler:
            raise tables.connection.fail("compiler", "is required when kind = \"offline\"")

    def profile(self, request: ProfileRequest) -> list[dict[str, Any]]:
        return [measure_on_host(request)]

    def describes(self, result_backend: str) -> bool:
        return result_backend in ("host", "host-fallback")

    def where_short(self, result: dict[str, Any]) -> str:
        if result.get("backend") == "host-fallback":
            return f"this host, NOT the {result.get('target', 'target')} device (none reachable)"
        return "this host"
