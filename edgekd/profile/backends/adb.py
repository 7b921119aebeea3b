"""Android over adb: TFLite's benchmark_model on the phone, one result per delegate ("adb-<delegate>")."""

from __future__ import annotations

from typing import Any

from edgekd.backends import Backend, register_backend
from edgekd.errors import EdgeKDError
from edgekd.profile.backends.host import host_fallback
from edgekd.profile.request import ProfileRequest


@register_backend("adb", connections=("adb",))
class Adb(Backend):
    remote_dir = "/data/local/tmp/edgekd"

    def profile(self, request: ProfileRequest) -> list[dict[str, Any]]:
        from edgekd.profile.adb import DeviceUnreachable, profile_adb

        req, t = request, request.target
        if req.model.suffix != ".tflite":  # checked before any fallback, so the answer does not depend on a phone
            raise EdgeKDError(f"{t.name} runs TFLite's benchmark_model: {req.model.name} is not a .tflite file")
        try:
            return profile_adb(req.model, t, runs=req.runs, warmup=req.warmup, threads=req.threads,
                               max_seconds=req.max_seconds, benchmark_binary=req.benchmark_model)
        except DeviceUnreachable as exc:
            if req.require_device:
                raise
            req.notes.append(str(exc))
            return [host_fallback(req, str(exc))]

    def describes(self, result_backend: str) -> bool:
        return result_backend.startswith("adb-")

    def where_short(self, result: dict[str, Any]) -> str:
        return f"{result.get('target', 'target')} over adb, {result['backend'][4:]}"
