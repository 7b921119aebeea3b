"""Deployment targets: one TOML file each, read and validated here (built-in by name, or a user's own file).

A target says what to ship (format + precision), how to run it (runtime, delegates, threads), how to
reach it (local, ssh, adb, offline compiler), how long to benchmark, optional budgets, NPU compiler
settings and, for ARM CPUs, how to emulate it under qemu. Unknown keys are errors so typos surface.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError

FORMATS = ("onnx", "tflite")
PRECISIONS = ("fp32", "fp16", "int8", "dynamic-int8")
KINDS = ("cpu", "npu")
RUNTIMES = ("onnxruntime", "litert", "qnn", "vela")
CONNECTIONS = ("local", "ssh", "adb", "offline")


@dataclass(frozen=True)
class Ship:
    format: str  # onnx | tflite
    precision: str  # fp32 | fp16 | int8 | dynamic-int8


@dataclass(frozen=True)
class Connection:
    kind: str  # local | ssh | adb | offline
    host: str = ""
    user: str = ""
    port: int = 22
    key: str = ""  # ssh identity file
    known_hosts: str = ""  # ssh known_hosts file; empty: the user's own
    python: str = "python3"  # interpreter on the board (needs numpy + ai-edge-litert or onnxruntime)
    remote_dir: str = ""
    serial: str = ""  # adb device serial
    benchmark_model: str = ""  # host path of an android benchmark_model binary to push
    compiler: str = ""  # offline: onnxruntime-qnn | vela


@dataclass(frozen=True)
class Benchmark:
    runs: int = 50
    warmup: int = 10
    max_seconds: float = 30.0  # stop timing early (after warmup + 10 runs) past this


@dataclass(frozen=True)
class Budgets:
    latency_ms: float | None = None
    size_bytes: int | None = None
    peak_memory_mb: float | None = None


@dataclass(frozen=True)
class Emulation:
    """How issue 9 (edgekd/emulate) turns qemu instruction counts into an estimated latency."""

    qemu_cpu: str
    clock_ghz: float
    instructions_per_cycle: float
    source: str  # where the calibration comes from (or that it is an assumption)


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    kind: str  # cpu | npu
    arch: str  # native | aarch64 | hexagon | ethos-u
    ships: tuple[Ship, ...]
    runtime: str
    delegates: tuple[str, ...]
    threads: int
    connection: Connection
    optional_delegates: tuple[str, ...] = ()
    cpu_affinity: str = ""  # taskset mask; "auto" = fastest cores
    benchmark: Benchmark = field(default_factory=Benchmark)
    budgets: Budgets = field(default_factory=Budgets)
    emulation: Emulation | None = None
    npu: dict[str, Any] = field(default_factory=dict)  # compiler settings (soc_model, accelerator_config ...)
    source: str = ""  # file it was read from

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


# --- locating files ---------------------------------------------------------------------------

def targets_dir() -> Path:
    """Built-in targets: edgekd/_targets in an installed wheel, else the repository's targets/."""
    pkg = Path(__file__).resolve().parent  # this module sits in the package (edgekd.__file__ may be None)
    for cand in (pkg / "_targets", pkg.parent / "targets"):
        if cand.is_dir():
            return cand
    raise EdgeKDError(f"built-in targets directory not found (looked in {pkg / '_targets'} and {pkg.parent / 'targets'})")


def _builtin_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(targets_dir().glob("*.toml"))}


def list_targets() -> list[Target]:
    return [load_target(p) for p in _builtin_files().values()]


def load_target(name_or_path: str | Path | Target) -> Target:
    """A built-in target by name ("android") or a user's own .toml file by path."""
    if isinstance(name_or_path, Target):
        return name_or_path
    spec = str(name_or_path)
    path = Path(spec).expanduser()
    if spec.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise EdgeKDError(f"target file {spec} does not exist")
        return _parse(path)
    files = _builtin_files()
    if spec not in files:
        raise EdgeKDError(f"unknown target {spec!r}; built-in targets: {', '.join(files)} (or pass a .toml file)")
    return _parse(files[spec])


# --- validation -------------------------------------------------------------------------------

class _Reader:
    """Pulls typed fields out of one table, naming file + field in every error."""

    def __init__(self, path: Path, table: dict[str, Any], prefix: str):
        self.path, self.table, self.prefix, self.used = path, table, prefix, set()

    def fail(self, key: str, why: str) -> EdgeKDError:
        return EdgeKDError(f"target file {self.path}: field {self.prefix}{key} {why}")

    def get(self, key: str, typ: type | tuple, default: Any = ..., choices: tuple | None = None) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise self.fail(key, "is missing")
            return default
        val = self.table[key]
        types = typ if isinstance(typ, tuple) else (typ,)
        # bool is an int in Python: refuse it where a number is wanted
        if not isinstance(val, types) or (isinstance(val, bool) and bool not in types):
            names = "/".join(t.__name__ for t in types)
            raise self.fail(key, f"must be {names}, got {type(val).__name__} {val!r}")
        if choices is not None and val not in choices:
            raise self.fail(key, f"must be one of {', '.join(map(str, choices))}, got {val!r}")
        return val

    def positive(self, key: str, typ: type | tuple, default: Any = ..., allow_zero: bool = False) -> Any:
        val = self.get(key, typ, default)
        if val is not None and (val < 0 or (val == 0 and not allow_zero)):
            raise self.fail(key, f"must be {'>= 0' if allow_zero else '> 0'}, got {val!r}")
        return val

    def str_list(self, key: str) -> tuple[str, ...]:
        val = self.get(key, list, [])
        if not all(isinstance(v, str) for v in val):
            raise self.fail(key, "must be a list of strings")
        return tuple(val)

    def sub(self, key: str, required: bool = False) -> "_Reader | None":
        val = self.get(key, dict, ... if required else None)
        return None if val is None else _Reader(self.path, val, f"{self.prefix}{key}.")

    def done(self) -> None:
        extra = sorted(set(self.table) - self.used)
        if extra:
            raise self.fail(extra[0], "is not a known field (typo?)")


def _parse(path: Path) -> Target:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise EdgeKDError(f"target file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeKDError(f"target file {path} cannot be read: {exc}") from None

    r = _Reader(path, data, "")
    name = r.get("name", str)
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise r.fail("name", f"must be a non-empty name of letters, digits, '-' or '_', got {name!r}")
    description = r.get("description", str, "")
    kind = r.get("kind", str, "cpu", KINDS)
    arch = r.get("arch", str, "native")

    ships_raw = r.get("ships", list, None)  # default below: int8 in the runtime's own format
    if ships_raw is not None and not ships_raw:
        raise r.fail("ships", "must list at least one {format, precision}")
    ships = []
    for i, s in enumerate(ships_raw or []):
        if not isinstance(s, dict):
            raise r.fail(f"ships[{i}]", "must be a table with format and precision")
        sr = _Reader(path, s, f"ships[{i}].")
        ships.append(Ship(sr.get("format", str, choices=FORMATS), sr.get("precision", str, choices=PRECISIONS)))
        sr.done()

    rt = r.sub("runtime", required=True)
    runtime = rt.get("name", str, choices=RUNTIMES)
    if not ships:
        ships = [Ship("onnx" if runtime in ("onnxruntime", "qnn") else "tflite", "int8")]
    delegates = rt.str_list("delegates")
    optional = rt.str_list("optional_delegates")
    threads = rt.positive("threads", int, 1)
    affinity = rt.get("cpu_affinity", str, "")
    if affinity and affinity != "auto":
        try:
            int(affinity, 16)
        except ValueError:
            raise rt.fail("cpu_affinity", f"must be a hex CPU mask (e.g. f0) or auto, got {affinity!r}") from None
    rt.done()

    cr = r.sub("connection") or _Reader(path, {"kind": "local"}, "connection.")  # no table: this machine
    ckind = cr.get("kind", str, choices=CONNECTIONS)
    conn = Connection(
        kind=ckind,
        host=cr.get("host", str, ""),
        user=cr.get("user", str, ""),
        port=cr.positive("port", int, 22),
        key=cr.get("key", str, ""),
        known_hosts=cr.get("known_hosts", str, ""),
        python=cr.get("python", str, "python3"),
        remote_dir=cr.get("remote_dir", str, "/data/local/tmp/edgekd" if ckind == "adb" else "/tmp/edgekd"),
        serial=cr.get("serial", str, ""),
        benchmark_model=cr.get("benchmark_model", str, ""),
        compiler=cr.get("compiler", str, ""),
    )
    if ckind == "ssh" and not conn.host:
        raise cr.fail("host", "is required when kind = \"ssh\"")
    if ckind == "offline" and not conn.compiler:
        raise cr.fail("compiler", "is required when kind = \"offline\"")
    if conn.remote_dir and not conn.remote_dir.startswith("/"):
        raise cr.fail("remote_dir", f"must be an absolute path on the device, got {conn.remote_dir!r}")
    cr.done()

    bench = Benchmark()
    br = r.sub("benchmark")
    if br is not None:
        bench = Benchmark(
            runs=br.positive("runs", int, bench.runs),
            warmup=br.positive("warmup", int, bench.warmup, allow_zero=True),
            max_seconds=float(br.positive("max_seconds", (int, float), bench.max_seconds)),
        )
        br.done()

    budgets = Budgets()
    bu = r.sub("budgets")
    if bu is not None:
        lat = bu.positive("latency_ms", (int, float), None)
        mem = bu.positive("peak_memory_mb", (int, float), None)
        budgets = Budgets(
            latency_ms=None if lat is None else float(lat),
            size_bytes=bu.positive("size_bytes", int, None),
            peak_memory_mb=None if mem is None else float(mem),
        )
        bu.done()

    emulation = None
    er = r.sub("emulation")
    if er is not None:
        emulation = Emulation(
            qemu_cpu=er.get("qemu_cpu", str),
            clock_ghz=float(er.positive("clock_ghz", (int, float))),
            instructions_per_cycle=float(er.positive("instructions_per_cycle", (int, float))),
            source=er.get("source", str),
        )
        er.done()

    npu = dict(r.get("npu", dict, {}))
    if runtime == "qnn":
        nr = _Reader(path, npu, "npu.")
        nr.positive("soc_model", int)
        nr.positive("htp_arch", int)
        nr.done()
    elif runtime == "vela":
        nr = _Reader(path, npu, "npu.")
        nr.get("accelerator_config", str)
        nr.get("system_config", str, "")
        nr.get("memory_mode", str, "")
        nr.done()
    r.done()

    return Target(
        name=name, description=description, kind=kind, arch=arch, ships=tuple(ships), runtime=runtime,
        delegates=delegates, optional_delegates=optional, threads=threads, cpu_affinity=affinity,
        connection=conn, benchmark=bench, budgets=budgets, emulation=emulation, npu=npu, source=str(path),
    )
