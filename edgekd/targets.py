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

from edgekd import backends
from edgekd.errors import EdgeKDError

FORMATS = ("onnx", "tflite", "pte", "coreml")
PRECISIONS = ("fp32", "fp16", "int8", "dynamic-int8")
KINDS = ("cpu", "npu")
COREML_INPUTS = ("image", "tensor")  # [coreml] input (edgekd/export/coreml_image.py)
COREML_COLOR_LAYOUTS = ("RGB", "BGR")  # [coreml] color_layout: the order of a 3-channel model's channels
WEIGHT_GRANULARITIES = ("per-channel", "per-tensor")  # [quantize] weights: int8 scales per output channel | per tensor
# What the CPU runners (host, ssh, adb) execute, and the format each ships by default; NPU runtimes and
# all connection kinds come from the backends (edgekd/backends.py).
CPU_RUNTIMES = {"onnxruntime": "onnx", "litert": "tflite"}


@dataclass(frozen=True)
class Ship:
    format: str  # onnx | tflite | pte | coreml
    precision: str  # fp32 | fp16 | int8 | dynamic-int8
    # precisions that ship instead when faster on the target's figure of record (edgekd.pipeline.precision)
    candidates: tuple[str, ...] = ()


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
class CoreMLInput:
    """[coreml]: how a shipped .mlpackage takes its input (edgekd/export/coreml_image.py)."""

    input: str = "tensor"  # image: a ct.ImageType of raw 0..255 pixels (normalisation folded) | tensor
    color_layout: str = "RGB"  # the order of a 3-channel model's channels: RGB | BGR


@dataclass(frozen=True)
class QuantizeSettings:
    """[quantize]: how the target's int8 ONNX files are made (edgekd.quantize). Per-tensor weights (one scale per
    weight tensor) are what many DSP / NPU toolchains take; ONNX Runtime's QDQ writes either."""

    weights: str = "per-channel"  # per-channel | per-tensor

    @property
    def per_channel(self) -> bool:
        return self.weights == "per-channel"


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
    coreml: CoreMLInput = field(default_factory=CoreMLInput)
    quantize: QuantizeSettings = field(default_factory=QuantizeSettings)
    source: str = ""  # file it was read from

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists). [coreml] and [quantize] only when not the defaults: a stage
        fingerprinted on the target (profile, student search) keeps its cache for targets written before the
        tables existed."""
        d = json.loads(json.dumps(dataclasses.asdict(self)))
        for key, default in (("coreml", CoreMLInput()), ("quantize", QuantizeSettings())):
            if getattr(self, key) == default:
                del d[key]
        return d




# --- locating files ---------------------------------------------------------------------------

def targets_dir() -> Path:
    """Built-in targets: edgekd/_targets (a symlink to the repository's targets/; a built wheel holds the
    files themselves), else targets/ beside the package (a checkout made without symlinks)."""
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

class TableReader:
    """Pulls typed fields out of one table, naming file + field in every error (backends use it too)."""

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

    def sub(self, key: str, required: bool = False) -> "TableReader | None":
        val = self.get(key, dict, ... if required else None)
        return None if val is None else TableReader(self.path, val, f"{self.prefix}{key}.")

    def done(self) -> None:
        extra = sorted(set(self.table) - self.used)
        if extra:
            raise self.fail(extra[0], "is not a known field (typo?)")


@dataclass(frozen=True)
class SubTables:
    """What a backend's validate() may read: the [connection] and [npu] tables (npu is free-form until a
    backend reads it; one that does calls npu.done() so typos surface)."""

    connection: TableReader
    npu: TableReader


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise EdgeKDError(f"target file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeKDError(f"target file {path} cannot be read: {exc}") from None


def _name(r: TableReader) -> str:
    name = r.get("name", str)
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise r.fail("name", f"must be a non-empty name of letters, digits, '-' or '_', got {name!r}")
    return name


def _ships(r: TableReader) -> list[Ship]:
    ships_raw = r.get("ships", list, None)  # None: the caller's default (int8 in the runtime's own format)
    if ships_raw is not None and not ships_raw:
        raise r.fail("ships", "must list at least one {format, precision}")
    ships = []
    for i, s in enumerate(ships_raw or []):
        if not isinstance(s, dict):
            raise r.fail(f"ships[{i}]", "must be a table with format and precision")
        sr = TableReader(r.path, s, f"ships[{i}].")
        fmt, precision = sr.get("format", str, choices=FORMATS), sr.get("precision", str, choices=PRECISIONS)
        cands = tuple(sr.str_list("candidates"))
        if bad := [c for c in cands if c not in PRECISIONS or c == precision]:
            raise sr.fail("candidates", f"{bad[0]!r} is not another precision: choose from "
                                        f"{', '.join(p for p in PRECISIONS if p != precision)}")
        ships.append(Ship(fmt, precision, cands))
        sr.done()
    return ships


def _runtime(r: TableReader) -> dict[str, Any]:
    rt = r.sub("runtime", required=True)
    fields = {
        "runtime": rt.get("name", str, choices=(*CPU_RUNTIMES, *backends.owned_runtimes())),
        "delegates": rt.str_list("delegates"),
        "optional_delegates": rt.str_list("optional_delegates"),
        "threads": rt.positive("threads", int, 1),
        "cpu_affinity": rt.get("cpu_affinity", str, ""),
    }
    affinity = fields["cpu_affinity"]
    if affinity and affinity != "auto":
        try:
            int(affinity, 16)
        except ValueError:
            raise rt.fail("cpu_affinity", f"must be a hex CPU mask (e.g. f0) or auto, got {affinity!r}") from None
    rt.done()
    return fields


def _connection(cr: TableReader, remote_dir: str) -> Connection:
    """remote_dir: the default of the backend that reaches this kind of connection."""
    conn = Connection(
        kind=cr.get("kind", str),  # checked against the backends' kinds by the caller
        host=cr.get("host", str, ""),
        user=cr.get("user", str, ""),
        port=cr.positive("port", int, 22),
        key=cr.get("key", str, ""),
        known_hosts=cr.get("known_hosts", str, ""),
        python=cr.get("python", str, "python3"),
        remote_dir=cr.get("remote_dir", str, remote_dir),
        serial=cr.get("serial", str, ""),
        benchmark_model=cr.get("benchmark_model", str, ""),
        compiler=cr.get("compiler", str, ""),
    )
    if conn.remote_dir and not conn.remote_dir.startswith("/"):
        raise cr.fail("remote_dir", f"must be an absolute path on the device, got {conn.remote_dir!r}")
    cr.done()
    return conn


def _benchmark(r: TableReader) -> Benchmark:
    bench = Benchmark()
    br = r.sub("benchmark")
    if br is None:
        return bench
    bench = Benchmark(
        runs=br.positive("runs", int, bench.runs),
        warmup=br.positive("warmup", int, bench.warmup, allow_zero=True),
        max_seconds=float(br.positive("max_seconds", (int, float), bench.max_seconds)),
    )
    br.done()
    return bench


def _budgets(r: TableReader) -> Budgets:
    bu = r.sub("budgets")
    if bu is None:
        return Budgets()
    lat = bu.positive("latency_ms", (int, float), None)
    mem = bu.positive("peak_memory_mb", (int, float), None)
    budgets = Budgets(
        latency_ms=None if lat is None else float(lat),
        size_bytes=bu.positive("size_bytes", int, None),
        peak_memory_mb=None if mem is None else float(mem),
    )
    bu.done()
    return budgets


def _emulation(r: TableReader) -> Emulation | None:
    er = r.sub("emulation")
    if er is None:
        return None
    emulation = Emulation(
        qemu_cpu=er.get("qemu_cpu", str),
        clock_ghz=float(er.positive("clock_ghz", (int, float))),
        instructions_per_cycle=float(er.positive("instructions_per_cycle", (int, float))),
        source=er.get("source", str),
    )
    er.done()
    return emulation


def _coreml(r: TableReader) -> CoreMLInput:
    cr = r.sub("coreml")
    if cr is None:
        return CoreMLInput()
    opts = CoreMLInput(input=cr.get("input", str, "tensor", COREML_INPUTS),
                       color_layout=cr.get("color_layout", str, "RGB", COREML_COLOR_LAYOUTS))
    cr.done()
    return opts


def _quantize(r: TableReader, ships: list[Ship]) -> QuantizeSettings:
    qr = r.sub("quantize")
    if qr is None:
        return QuantizeSettings()
    opts = QuantizeSettings(weights=qr.get("weights", str, "per-channel", WEIGHT_GRANULARITIES))
    if not opts.per_channel and not any(s.format == "onnx" for s in ships):
        raise qr.fail("weights", f"= {opts.weights!r} applies to int8 .onnx files (ONNX Runtime QDQ), and this target "
                                 f"ships {', '.join(sorted({s.format for s in ships}))}: its quantizers write "
                                 "per-channel weights")
    qr.done()
    return opts


def _parse(path: Path) -> Target:
    r = TableReader(path, _read_toml(path), "")
    name = _name(r)
    description = r.get("description", str, "")
    kind = r.get("kind", str, "cpu", KINDS)
    arch = r.get("arch", str, "native")
    ships = _ships(r)
    runtime = _runtime(r)

    cr = r.sub("connection") or TableReader(path, {"kind": "local"}, "connection.")  # no table: this machine
    ckind = cr.get("kind", str, choices=backends.connection_kinds())
    serving = backends.backends_for(runtime["runtime"], ckind)  # the runtime's owner first, then the connection's
    reacher = next((b for b in serving if ckind in b.connections), None)
    conn = _connection(cr, reacher.remote_dir if reacher else backends.Backend.remote_dir)
    if not ships:
        fmt = CPU_RUNTIMES.get(runtime["runtime"]) or serving[0].default_format
        ships = [Ship(fmt, "int8")]

    target = Target(
        name=name, description=description, kind=kind, arch=arch, ships=tuple(ships), connection=conn,
        benchmark=_benchmark(r), budgets=_budgets(r), emulation=_emulation(r), coreml=_coreml(r), quantize=_quantize(r, ships), npu=dict(r.get("npu", dict, {})),
        source=str(path), **runtime,
    )
    tables = SubTables(connection=cr, npu=TableReader(path, target.npu, "npu."))
    for backend in serving:
        backend.validate(target, tables)
    r.done()
    return target
