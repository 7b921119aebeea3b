"""ARM boards over SSH: the runner is copied to the board and measures the file there."""

from __future__ import annotations

from typing import Any

from edgekd.backends import Backend, register_backend
from edgekd.profile.backends.host import host_fallback
from edgekd.profile.report import make_result
from edgekd.profile.request import ProfileRequest


@register_backend("ssh", connections=("ssh",))
class Ssh(Backend):
    def validate(self, target, tables) -> None:
        if not target.connection.host:
            raise tables.connection.fail("host", "is required when kind = \"ssh\"")

    def profile(self, request: ProfileRequest) -> list[dict[str, Any]]:
        from edgekd.profile.ssh import HostUnreachable, profile_ssh

        req = request
        try:
            data = profile_ssh(req.model, req.target.connection, runs=req.runs, warmup=req.warmup, threads=req.threads,
                               max_seconds=req.max_seconds, inputs=req.inputs, xnnpack=req.xnnpack,
                               op_profile=req.op_profile, shape=req.input_shape)
        except HostUnreachable as exc:
            if req.require_device:
                raise
            req.notes.append(str(exc))
            return [host_fallback(req, f"ssh host not reachable: {exc}")]
        where = data.pop("where")
        return [make_result("measured", where, "ssh", **data)]

    def where_short(self, result: dict[str, Any]) -> str:
        return f"{result.get('target', 'target')} over ssh"
