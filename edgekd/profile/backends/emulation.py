"""ARM CPUs without a board: the target's [emulation] table turns qemu instruction counts into an
estimate. Not chosen by a target's runtime or connection: profile() adds it when asked (emulate=)."""

from __future__ import annotations

import inspect
from typing import Any

from edgekd.backends import Backend, register_backend
from edgekd.errors import EdgeKDError
from edgekd.profile.request import ProfileRequest

NAME = "qemu-emulation"


def _arm_env_ready() -> bool:
    try:
        from edgekd.emulate import arm_env_available
    except ImportError:
        return False
    return bool(arm_env_available())


def _emulate(req: ProfileRequest) -> list[dict[str, Any]]:
    """Issue 9's qemu estimate; runs=None lets it pick (its instruction count repeats exactly)."""
    try:
        from edgekd.emulate import emulate_profile
    except ImportError:
        raise EdgeKDError("--emulate needs edgekd.emulate (aarch64 under qemu-user), which this install lacks") from None
    t = req.target
    if t.emulation is None:
        raise EdgeKDError(f"target {t.name} has no [emulation] table: nothing to emulate")
    params = inspect.signature(emulate_profile).parameters
    kwargs = {k: v for k, v in (("sample", req.sample), ("runs", req.user_runs), ("warmup", req.user_warmup))
              if k in params and v is not None}
    out = emulate_profile(req.model, t, **kwargs)
    out = out if isinstance(out, list) else [out]
    return [o.to_dict() if hasattr(o, "to_dict") else dict(o) for o in out]


@register_backend(NAME)
class QemuEmulation(Backend):
    def profile(self, request: ProfileRequest) -> list[dict[str, Any]]:
        """emulate=True: errors are errors; "auto": only where the target has [emulation] and the ARM
        environment is installed, a failure becomes a note (one missing extra must not lose the rest)."""
        if request.emulate is True:
            return _emulate(request)
        if request.emulate != "auto" or request.target.emulation is None or not _arm_env_ready():
            return []
        try:
            return _emulate(request)
        except EdgeKDError as exc:
            request.notes.append(f"ARM emulation estimate skipped: {exc}")
            return []

    def where_short(self, result: dict[str, Any]) -> str:
        return f"qemu {result.get('qemu_cpu', 'aarch64')} instruction count"

    def figures(self, result: dict[str, Any]) -> list[str]:
        n = result.get("emulated_instructions")
        return [] if n is None else [f"{n:,.0f} aarch64 instructions/inference"]
