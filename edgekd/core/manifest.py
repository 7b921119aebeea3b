"""The run directory and its manifest.json: what every stage read, decided, wrote and measured.

A stage is skipped on a rerun when its fingerprint (settings + hashes of its inputs) matches the
recorded one and every artifact it wrote is still on disk with the same hash. That makes a run
resumable, comparable (diff two manifests) and shippable (the manifest names every file by hash).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgekd.core.files import atomic_write_text, ensure_output_dir, path_size, sha256_file
from edgekd.errors import EdgeKDError

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


@dataclass
class Artifact:
    """One model file (or the in-memory teacher) with its figures; the unit of report.json."""

    name: str
    path: str  # relative to the run directory when inside it
    format: str  # pytorch | onnx | tflite | ...
    precision: str = "fp32"  # fp32 | fp16 | int8 | dynamic-int8 | mixed ...
    accuracy: float | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    latency: dict[str, Any] | None = None  # see edgekd.profile: p50_ms, p90_ms, kind, where, ...
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Artifact":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class StageResult:
    artifacts: list[Artifact] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def fingerprint(obj: Any) -> str:
    """Stable hash of JSON-able settings (dict order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class RunDir:
    """A run directory holding stage outputs and manifest.json."""

    def __init__(self, root: str | Path, pipeline: str | None = None):
        """pipeline: which command's run this is ("compress", "hf-compress"); a directory holding another
        pipeline's run is refused rather than mixed into (its stages and files would sit beside the new ones)."""
        # absolute: stage code may hand back run.path(...) results, which must not be joined to a relative root twice
        self.root = ensure_output_dir(Path(root).expanduser().absolute())
        self.manifest_path = self.root / MANIFEST_NAME
        self.manifest: dict[str, Any] = self._load()
        self.reused: list[str] = []  # stages this process skipped because nothing they depend on changed
        if pipeline is not None:
            had = self.manifest.get("pipeline")
            if had is None and self.manifest["stages"]:
                had = "hf-compress" if any(k.startswith("hf-") for k in self.manifest["stages"]) else "compress"
            if had is not None and had != pipeline:
                raise EdgeKDError(f"output directory {root} holds an `edgekd {had}` run; give `edgekd {pipeline}` "
                                  "another --output (or delete that directory)")
            self.manifest["pipeline"] = pipeline

    def _load(self) -> dict[str, Any]:
        if self.manifest_path.exists():
            try:
                data = json.loads(self.manifest_path.read_text())
                if data.get("schema") == SCHEMA_VERSION:
                    return data
            except (OSError, json.JSONDecodeError):
                pass  # unreadable manifest: start over rather than trust it
        return {
            "schema": SCHEMA_VERSION,
            "tool": "edgekd",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": {"machine": platform.machine(), "python": platform.python_version(), "node": platform.node()},
            "inputs": {},
            "stages": {},
        }

    def save(self) -> None:
        atomic_write_text(self.manifest_path, json.dumps(self.manifest, indent=2, default=str) + "\n")

    def path(self, rel: str | Path) -> Path:
        return self.root / rel

    def rel(self, p: str | Path) -> str:
        p = Path(p)
        try:
            return str(p.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(p)

    def record_input(self, name: str, info: dict[str, Any] | None) -> None:
        """Record an input of this run; None forgets one an earlier run of this directory recorded."""
        if info is None:
            self.manifest["inputs"].pop(name, None)
        else:
            self.manifest["inputs"][name] = info
        self.save()

    def stage_record(self, name: str) -> dict[str, Any] | None:
        return self.manifest["stages"].get(name)

    def _still_valid(self, rec: dict[str, Any], key: str) -> bool:
        if rec.get("fingerprint") != key or rec.get("status") != "done":
            return False
        for a in rec.get("artifacts", []):
            p = self.root / a["path"]
            if not p.exists() or (a.get("sha256") and sha256_file(p) != a["sha256"]):
                return False
        return True

    def run_stage(
        self,
        name: str,
        settings: dict[str, Any],
        fn: Callable[[], StageResult],
        *,
        force: bool = False,
    ) -> tuple[StageResult, bool]:
        """Run `fn` unless an identical earlier run of this stage is recorded; returns (result, skipped).

        `settings` must contain everything the stage's output depends on, including upstream
        artifact hashes, so a changed input re-runs the stage and everything after it.
        """
        key = fingerprint(settings)
        rec = self.stage_record(name)
        if not force and rec and self._still_valid(rec, key):
            arts = [Artifact.from_dict(a) for a in rec.get("artifacts", [])]
            self.reused.append(name)
            return StageResult(artifacts=arts, metrics=rec.get("metrics", {})), True
        self.manifest["stages"][name] = {"status": "running", "fingerprint": key, "settings": settings}
        self.save()
        t0 = time.perf_counter()
        result = fn()
        for a in result.artifacts:
            p = self.root / a.path if not Path(a.path).is_absolute() else Path(a.path)
            if p.is_file() or p.is_dir():  # a directory: a model package (.mlpackage)
                a.path = self.rel(p)
                a.size_bytes = path_size(p)
                a.sha256 = sha256_file(p)
        self.manifest["stages"][name] = {
            "status": "done",
            "fingerprint": key,
            "settings": settings,
            "seconds": round(time.perf_counter() - t0, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "artifacts": [a.to_dict() for a in result.artifacts],
            "metrics": result.metrics,
        }
        self.save()
        return result, False
