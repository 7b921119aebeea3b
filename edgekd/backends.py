"""The target-backend registry: one entry per way of running a target (host, ssh, adb, qnn-htp, vela, ...).

A backend is one module (built-ins: edgekd/profile/backends/) whose class carries @register_backend. It
validates the part of a target file it reads, profiles a model file, says which ops an NPU takes (for the
gate) and describes its results in reports. A target is served by the backend that owns its runtime (an
NPU compiler such as "qnn"), else by the one that reaches its connection kind ("local", "ssh", "adb").

This module sits beside targets.py, below the stages, and imports nothing of edgekd but errors: the
built-in backends register into it as plugins do, imported by name on first use (so targets.py can ask
them to validate without importing the profile stage).
"""

from __future__ import annotations

import importlib
from typing import Any

from edgekd.errors import EdgeKDError

BUILTIN_BACKENDS = "edgekd.profile.backends"  # importing it registers host, ssh, adb, qnn-htp, vela, qemu-emulation

_REGISTRY: dict[str, "Backend"] = {}


class Backend:
    """Override what the backend does; the defaults are "nothing to check / no NPU / no own figures".

    `target` arguments are edgekd.targets.Target, `request` is edgekd.profile.request.ProfileRequest and
    `result` a latency dict (edgekd.profile.report.make_result); not imported here to keep this module
    at the bottom of the import graph.
    """

    name: str = ""
    runtime: str = ""  # a runtime only this backend runs; it wins over the connection kind
    connections: tuple[str, ...] = ()  # connection kinds this backend reaches
    default_format: str = "tflite"  # what a target of its runtime ships when it lists no [[ships]]
    remote_dir: str = "/tmp/edgekd"  # default connection.remote_dir for its connection kinds

    def validate(self, target: Any, tables: Any) -> None:
        """Check the target's fields this backend reads; raise tables.<table>.fail(key, why)."""

    def profile(self, request: Any) -> list[dict[str, Any]]:
        raise EdgeKDError(f"backend {self.name} cannot profile")

    def npu_placement(self, path: Any, target: Any) -> dict[str, Any] | None:
        """{"on_npu", "off_npu", "fallback_ops", "cycles", "tool", "kind", ...}; None: no NPU to place on."""
        return None

    def describes(self, result_backend: str) -> bool:
        """Whether a result's "backend" field names this backend."""
        return result_backend == self.name

    def where_short(self, result: dict[str, Any]) -> str:
        """A few words on where the figure comes from (report tables)."""
        return result.get("target", "target")

    def figures(self, result: dict[str, Any]) -> list[str]:
        """This backend's own figures beyond p50/p90, each in a few words."""
        return []


def register_backend(name: str, *, runtime: str = "", connections: tuple[str, ...] = ()):
    """Class decorator: `@register_backend("vela", runtime="vela") class Vela(Backend): ...`."""

    def add(cls: type[Backend]) -> type[Backend]:
        taken = [b.name for b in _REGISTRY.values()
                 if b.name == name or (runtime and b.runtime == runtime) or set(b.connections) & set(connections)]
        if taken:
            raise ValueError(f"backend {name!r} clashes with registered backend {taken[0]!r} (name, runtime or connection)")
        backend = cls()
        backend.name, backend.runtime, backend.connections = name, runtime, tuple(connections)
        _REGISTRY[name] = backend
        return cls

    return add


def unregister_backend(name: str) -> None:
    """Tests that register a toy backend remove it again."""
    _REGISTRY.pop(name, None)


def _registry() -> dict[str, Backend]:
    importlib.import_module(BUILTIN_BACKENDS)  # cached after the first call
    return _REGISTRY


def get_backend(name: str) -> Backend:
    reg = _registry()
    if name not in reg:
        raise EdgeKDError(f"unknown backend {name!r}; registered: {', '.join(reg)}")
    return reg[name]


def owned_runtimes() -> tuple[str, ...]:
    return tuple(b.runtime for b in _registry().values() if b.runtime)


def connection_kinds() -> tuple[str, ...]:
    return tuple(k for b in _registry().values() for k in b.connections)


def backends_for(runtime: str, connection: str) -> list[Backend]:
    """The backend owning the runtime (if any), then the one reaching the connection: both validate."""
    reg = _registry().values()
    found = [b for b in reg if b.runtime == runtime] + [b for b in reg if connection in b.connections]
    return list(dict.fromkeys(found))


def backend_for(target: Any) -> Backend:
    """The backend that profiles `target`."""
    found = backends_for(target.runtime, target.connection.kind)
    if not found:
        raise EdgeKDError(f"target {target.name}: no backend runs runtime {target.runtime!r} "
                          f"over connection {target.connection.kind!r}")
    return found[0]


def backend_of_result(result: dict[str, Any]) -> Backend | None:
    """The backend that produced a latency dict (by its "backend" field), None if unknown."""
    tag = str(result.get("backend") or "")
    return next((b for b in _registry().values() if b.describes(tag)), None)
