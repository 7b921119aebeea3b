"""Core ML (.mlpackage): nothing here can run it. coremltools executes models only on macOS, and no Mac with
Xcode is reachable, so profile returns no figure, only the note saying so; never a latency."""

from __future__ import annotations

from typing import Any

from edgekd.backends import Backend, register_backend
from edgekd.profile.request import ProfileRequest

NOT_MEASURABLE = ("not measurable here: Core ML runs only on Apple devices (no Mac with Xcode reachable); the "
                  "package was validated structurally, its numerics and latency were not checked on an Apple device")


@register_backend("coreml", runtime="coreml")
class CoreML(Backend):
    default_format = "coreml"

    def profile(self, request: ProfileRequest) -> list[dict[str, Any]]:
        request.notes.append(f"{request.model.name}: {NOT_MEASURABLE}")
        return []
