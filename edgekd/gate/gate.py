"""`gate(candidate, baseline, target)`: deterministic hard checks, then an interleaved A/B wall-time test."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

from edgekd.errors import EdgeKDError, UsageError
from edgekd.gate.checks import Limits, budget_checks, deterministic_checks
from edgekd.gate.report import Check, GateReport
from edgekd.gate.timing import reference_ms
from edgekd.runtime.machine import machine_where, pick_cpus, pinned
from edgekd.runtime.timing import TimingSettings, measure_ab, measure_one

MODEL_SUFFIXES = (".onnx", ".tflite", ".pte")
ArmCounter = Callable[[Path, Any], dict]  # (model path, target) -> {"per_inference": float, "how": str, ...}


def gate(
    candidate: str | Path,
    baseline: str | Path | None,
    target: Any = "host",
    *,
    max_regression: float = 0.05,
    limits: Limits | None = None,
    threads: int | None = None,
    timing: TimingSettings | None = None,
    measure: bool = True,
    instructions: bool = False,
    instructions_runs: int = 20,
    arm_instructions: bool | ArmCounter = False,
    npu: bool | None = None,
    input_shape: tuple[int, ...] | None = None,
    strict_absolute: bool = False,
) -> GateReport:
    """Compare `candidate` against `baseline` (model file, stored gate JSON, or None) for `target`.

    Hard checks (size, MACs, Transpose/custom/Flex ops, NPU placement, instruction counts, budgets)
    fail deterministically. Wall time is an A/B in this process: fail only when the lower bound of
    the bootstrap CI of the median candidate/baseline ratio exceeds 1 + max_regression, twice.
    """
    t0 = time.perf_counter()
    if not 0 < max_regression < 1:
        raise UsageError(f"max_regression must be between 0 and 1 (0.05 = 5 %), got {max_regression}")
    limits = replace(limits or Limits(), max_regression=max_regression)
    timing = timing or TimingSettings()
    tgt = _load_target(target)
    cand_path = _model_path(candidate, "candidate")
    cand_info = _info(cand_path)

    base_kind, base_path, stored, base_info = _resolve_baseline(baseline, cand_info)

    local = tgt.connection.kind == "local"
    n_threads = threads or (tgt.threads if local else 1)
    if n_threads < 1:
        raise UsageError(f"threads must be >= 1, got {n_threads}")
    notes: list[str] = []

    use_npu = (tgt.kind == "npu") if npu is None else npu
    _add_tool_facts(tgt, cand_path, cand_info, base_path, base_info, npu=use_npu, instructions=instructions,
                    instructions_runs=instructions_runs, arm_instructions=arm_instructions, input_shape=input_shape)

    checks: list[Check] = []
    if base_info is not None:
        checks += deterministic_checks(base_info, cand_info, limits)
    else:
        notes.append("no baseline: only the target's budgets are checked; save this JSON as the next baseline")

    # ---- wall time
    timing_out, cand_latency = None, None
    settings = {
        "max_regression": max_regression, "threads": n_threads, "limits": asdict(limits),
        "timing": asdict(timing), "instructions": instructions, "arm_instructions": bool(arm_instructions),
    }
    if measure:
        timing_out, cand_latency = _wall_time(checks, base_kind, base_path, cand_path, base_info, cand_info, stored,
                                              n_threads, timing, limits, input_shape, strict_absolute)
        if not local:
            notes.append(f"wall time measured on this machine as a proxy for {tgt.name} ({tgt.arch}); "
                         "the ratio, not the milliseconds, carries over")
    else:
        checks.append(Check("latency", "skip", "wall-time measurement disabled (--no-measure)", "measured"))

    checks += budget_checks(tgt, cand_info, cand_latency, local)
    if tgt.ships and cand_info["format"] not in {s.format for s in tgt.ships}:
        notes.append(f"{tgt.name} ships {', '.join(sorted({s.format for s in tgt.ships}))}; the candidate is {cand_info['format']}")

    return GateReport(
        candidate={"path": str(cand_path), "sha256": _sha(cand_path), "info": cand_info, "latency": cand_latency,
                   "reference_ms": (timing_out or {}).get("reference_ms")},
        baseline=_baseline_entry(base_kind, base_path, base_info, stored, timing_out, baseline),
        target=tgt.name,
        checks=checks,
        settings=settings,
        timing=timing_out,
        notes=notes,
        seconds=round(time.perf_counter() - t0, 3),
    )


def _resolve_baseline(baseline, cand_info: dict):
    """(kind "none" | "json" | "model", model path, stored gate JSON, its info), checked comparable."""
    if baseline is None:
        return "none", None, None, None
    bp = Path(baseline)
    if bp.suffix.lower() == ".json":
        stored = _load_stored(bp)
        base_kind, base_path, base_info = "json", None, stored["info"]
    else:
        stored, base_kind, base_path = None, "model", _model_path(bp, "baseline")
        base_info = _info(base_path)
    _check_comparable(base_info, cand_info)
    return base_kind, base_path, stored, base_info


def _add_tool_facts(tgt, cand_path, cand_info, base_path, base_info, *, npu, instructions, instructions_runs,
                    arm_instructions, input_shape) -> None:
    """Extra deterministic facts that need their tools (NPU compiler, valgrind, qemu); each is optional."""
    if npu:
        from edgekd.gate.npu import npu_analysis

        cand_info["npu"] = npu_analysis(cand_path, tgt)
        if base_path is not None:
            base_info["npu"] = npu_analysis(base_path, tgt)
    if instructions:
        from concurrent.futures import ThreadPoolExecutor

        from edgekd.gate.instructions import count_instructions

        # Two valgrind processes side by side: a count does not care that they share the CPUs.
        paths = [cand_path] + ([base_path] if base_path is not None else [])
        with ThreadPoolExecutor(len(paths)) as pool:
            counts = list(pool.map(lambda p: count_instructions(p, runs=instructions_runs, input_shape=input_shape), paths))
        cand_info["instructions"] = counts[0]
        if base_path is not None:
            base_info["instructions"] = counts[1]
    if arm_instructions:
        try:
            counter = arm_instructions if callable(arm_instructions) else _default_arm_counter()
        except EdgeKDError as exc:  # emulator not installed: the check reports itself skipped, with why
            counter = _failing_counter(str(exc))
        cand_info["arm_instructions"] = _safe_count(counter, cand_path, tgt)
        if base_path is not None:
            base_info["arm_instructions"] = _safe_count(counter, base_path, tgt)


def _wall_time(checks: list, base_kind, base_path, cand_path, base_info, cand_info, stored, n_threads, timing, limits,
               input_shape, strict_absolute):
    """A/B against a baseline model, or absolute against a stored JSON / the budgets; appends its check."""
    cpus = pick_cpus(n_threads) if timing.pin else None
    where = machine_where()
    with pinned(cpus) as cpus:  # None when pinning was refused
        if base_kind == "model":
            timing_out, check = _ab(base_path, cand_path, base_info, cand_info, n_threads, timing, limits, input_shape)
            checks.append(check)
            cand_latency = _latency(timing_out["final"]["candidate"], timing_out, n_threads, where, cpus, cand_info)
            timing_out["baseline_latency"] = _latency(timing_out["final"]["baseline"], timing_out, n_threads, where,
                                                      cpus, base_info)
            return timing_out, cand_latency
        timing_out, check, cand_latency = _absolute(cand_path, cand_info, stored, n_threads, timing, limits,
                                                    input_shape, strict_absolute, where, cpus)
        if check is not None:
            checks.append(check)
        return timing_out, cand_latency


# ---------------------------------------------------------------- inputs


def _load_target(target: Any):
    from edgekd.targets import load_target

    try:
        return load_target(target)
    except UsageError:
        raise
    except EdgeKDError as exc:
        raise UsageError(str(exc)) from None


def _model_path(p: str | Path, role: str) -> Path:
    path = Path(p)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        extra = " or a .json from an earlier gate run" if role == "baseline" else ""
        raise UsageError(f"{role} {path.name}: expected a .onnx, .tflite or .pte file{extra}")
    from edgekd.core.inputs import check_model_file

    try:
        return check_model_file(path, f"{role} model file")
    except EdgeKDError as exc:
        raise UsageError(str(exc)) from None


def _info(path: Path) -> dict[str, Any]:
    from edgekd.inspect import model_info

    try:
        return model_info(path)
    except EdgeKDError as exc:
        raise UsageError(str(exc)) from None


def _sha(path: Path) -> str:
    from edgekd.core import sha256_file

    return sha256_file(path)


def _load_stored(path: Path) -> dict[str, Any]:
    """A baseline from an earlier `edgekd gate --json` (its candidate) or an `edgekd inspect --json`."""
    from edgekd.core.inputs import require_file

    try:
        require_file(path, "baseline file")
    except EdgeKDError as exc:
        raise UsageError(str(exc)) from None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"baseline {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and data.get("format") == "edgekd-gate/1" and isinstance(data.get("candidate"), dict):
        c = data["candidate"]
        info = c.get("info")
        if not isinstance(info, dict):
            raise UsageError(f"baseline {path.name}: gate report has no candidate info")
        _check_info_fields(info, path)
        return {"info": info, "latency": c.get("latency"), "reference_ms": c.get("reference_ms"),
                "path": c.get("path"), "sha256": c.get("sha256"), "settings": data.get("settings", {})}
    if isinstance(data, dict) and data.get("format") in ("onnx", "tflite") and "ops" in data:
        _check_info_fields(data, path)
        return {"info": data, "latency": None, "reference_ms": None, "path": data.get("path"), "sha256": None, "settings": {}}
    raise UsageError(f"baseline {path.name} is neither an `edgekd gate --json` report nor an `edgekd inspect --json` file")


_COUNTS = ("size_bytes", "macs", "params", "num_ops", "transpose_ops")  # a number >= 0, or absent / null
_OP_TABLES = ("ops", "custom_ops", "flex_ops")  # {op name: count}


def _check_info_fields(info: dict, path: Path) -> None:
    """The fields the checks read have the types `edgekd inspect --json` writes: a hand-edited or foreign file
    fails here in one line, not as a TypeError deep in a check."""
    def bad(key: str, want: str):
        return UsageError(f"baseline {path.name}: field '{key}' must be {want}, got {json.dumps(info[key])[:60]}")

    for key in _COUNTS:
        v = info.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            raise bad(key, "a number >= 0")
    for key in _OP_TABLES:
        v = info.get(key)
        if v is not None and (not isinstance(v, dict) or not all(isinstance(n, int) for n in v.values())):
            raise bad(key, "an object of op counts")
    for key in ("inputs", "outputs"):
        v = info.get(key)
        if v is not None and (not isinstance(v, list) or not all(
                isinstance(e, dict) and isinstance(e.get("shape") or [], list) for e in v)):
            raise bad(key, "a list of {name, shape, dtype} objects")


def _elements(entries: list) -> list[int | None]:
    out = []
    for e in entries or []:
        dims = e.get("shape") or []
        if all(isinstance(d, int) and d > 0 for d in dims[1:]):
            n = 1
            for d in dims[1:]:
                n *= d
            out.append(n)
        else:
            out.append(None)
    return out


def _check_comparable(base: dict, cand: dict) -> None:
    """Same number of inputs carrying the same number of values per sample (NCHW vs NHWC is fine); two KV-cache
    decoders are comparable whatever their layer counts (each is timed per decoded token)."""
    from edgekd.runtime.decoder import is_kv_decoder

    if is_kv_decoder(base.get("inputs")) and is_kv_decoder(cand.get("inputs")):
        return
    b, c = _elements(base.get("inputs")), _elements(cand.get("inputs"))
    if len(b) != len(c) or any(x is not None and y is not None and x != y for x, y in zip(b, c)):
        raise UsageError(f"candidate and baseline take different inputs ({_shapes(cand)} vs {_shapes(base)}): not comparable")


def _shapes(info: dict) -> str:
    return "; ".join(f"{e.get('name')} {e.get('shape')}" for e in info.get("inputs") or []) or "no inputs listed"


def _safe_count(counter: ArmCounter, path: Path, tgt: Any) -> dict[str, Any]:
    try:
        return counter(path, tgt)
    except EdgeKDError as exc:
        return {"per_inference": None, "error": str(exc)}


def _failing_counter(why: str) -> ArmCounter:
    def count(path: Path, tgt: Any) -> dict:
        raise EdgeKDError(why)

    return count


def _default_arm_counter() -> ArmCounter:
    """Issue 9's emulated aarch64 instruction count, when edgekd.emulate provides it."""
    from edgekd.gate.arm import arm_counter

    return arm_counter()


# ---------------------------------------------------------------- timing


def _runner_and_invoke(path: Path, info: dict, threads: int, input_shape, seed: int = 0):
    from edgekd.gate.inputs import make_invoke
    from edgekd.runtime import load_runner

    try:
        runner = load_runner(path, threads=threads)
        invoke = make_invoke(runner, info, input_shape, seed)
        invoke()  # fail here, with the model named, rather than inside the timing loop
    except UsageError:
        raise
    except EdgeKDError as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:  # runtime rejected the input or the graph
        raise UsageError(f"{path.name} does not run: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}") from None
    return runner, invoke


def _runtime_name(fmt: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    pkg = {"onnx": "onnxruntime", "tflite": "ai-edge-litert", "pte": "executorch"}.get(fmt, fmt)
    try:
        return f"{pkg} {version(pkg)}"
    except PackageNotFoundError:
        return pkg


def _ab(base_path, cand_path, base_info, cand_info, threads, settings: TimingSettings, limits: Limits, input_shape):
    limit = 1.0 + limits.max_regression
    _, run_b = _runner_and_invoke(base_path, base_info, threads, input_shape)
    _, run_c = _runner_and_invoke(cand_path, cand_info, threads, input_shape)
    attempts = [measure_ab(run_b, run_c, settings)]
    if attempts[0]["ci_low"] > limit:
        # A real regression survives a second, independent measurement; a burst of load rarely does twice. Fresh
        # sessions, made in the other order: a few-% bias tied to one session's memory placement (seen on tiny
        # models, repeating within a session pair) must not confirm itself.
        _, run_c = _runner_and_invoke(cand_path, cand_info, threads, input_shape)
        _, run_b = _runner_and_invoke(base_path, base_info, threads, input_shape)
        attempts.append(measure_ab(run_b, run_c, replace(settings, seed=settings.seed + 1)))
    final = attempts[-1]
    confirmed = all(a["ci_low"] > limit for a in attempts) and len(attempts) == 2
    pct = f"{final['confidence']:.0%}"
    desc = (f"wall time x{final['ratio']:.3f} ({pct} CI {final['ci_low']:.3f}-{final['ci_high']:.3f}, "
            f"{final['pairs']} ABBA pairs x{final['inner']} invokes, {threads} thread(s))")
    tps = _decode_tps(final, cand_info)
    if tps:  # KV-cache decoders: the timed call is one decode step, so a slower step is fewer tokens/s
        desc = f"decode {tps[0]:.1f} -> {tps[1]:.1f} tokens/s, time per token " + desc[len("wall time "):]
    if confirmed:
        status, msg = "fail", f"{desc}: slower than the allowed x{limit:.3f}, confirmed on re-measure"
    elif len(attempts) == 2:
        status, msg = "pass", f"{desc}: first run exceeded x{limit:.3f}, re-measure did not confirm"
    elif final["ci_high"] > limit:
        status, msg = "warn", f"{desc}: inconclusive, the interval reaches past x{limit:.3f}"
    else:
        status, msg = "pass", f"{desc}: within x{limit:.3f}"
    out = {"mode": "ab", "attempts": attempts, "final": final, "limit_ratio": limit, "warmup": settings.warmup,
           "order": "ABBA", "reference_ms": reference_ms(),  # lets this report serve later as a JSON baseline
           "runtime": {"baseline": _runtime_name(base_info["format"]), "candidate": _runtime_name(cand_info["format"])}}
    check = Check("latency.ab", status, msg, "measured", 1.0, final["ratio"], limit,
                  {"ci": [final["ci_low"], final["ci_high"]], "attempts": len(attempts),
                   **({"decode_tokens_per_s": {"baseline": tps[0], "candidate": tps[1]}} if tps else {})})
    return out, check


def _decode_tps(final: dict, info: dict) -> tuple[float, float] | None:
    """(baseline, candidate) decode tokens/s of an A/B between KV-cache decoders, else None."""
    from edgekd.runtime.decoder import is_kv_decoder

    if not is_kv_decoder(info.get("inputs")):
        return None
    return tuple(round(1000.0 / final[k]["p50_ms"], 2) for k in ("baseline", "candidate"))


def _latency(summary: dict, timing_out: dict, threads: int, where: str, cpus, info: dict) -> dict[str, Any]:
    """The project's latency dict (ARCHITECTURE.md) for one side of the measurement."""
    from edgekd.runtime import Latency

    from edgekd.gate.inputs import DECODE_CONTEXT
    from edgekd.runtime.decoder import is_kv_decoder

    final = timing_out.get("final") or timing_out
    runs = final.get("runs") or final["pairs"] * final["inner"]
    extra = ({"metric": f"ms per decoded token (one KV-cache decode step at context {DECODE_CONTEXT}, batch 1)",
              "decode_tokens_per_s": round(1000.0 / summary["p50_ms"], 2)} if is_kv_decoder(info.get("inputs")) else {})
    return Latency(**{k: summary[k] for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms")}, runs=runs,
                   warmup=timing_out.get("warmup"), threads=threads, runtime=_runtime_name(info["format"]),
                   kind="measured", where=f"{where}, pinned to CPUs {cpus}" if cpus else where, extra=extra).to_dict()


def _absolute(cand_path, cand_info, stored, threads, settings: TimingSettings, limits: Limits, input_shape,
              strict: bool, where: str, cpus):
    """No baseline model to interleave with: measure the candidate alone and compare absolute times."""
    _, run_c = _runner_and_invoke(cand_path, cand_info, threads, input_shape)
    ref = reference_ms()
    one = measure_one(run_c, settings)
    out: dict[str, Any] = {"mode": "absolute", "final": one, "reference_ms": ref, "warmup": settings.warmup}
    latency = _latency(one, out, threads, where, cpus, cand_info)
    base_lat = (stored or {}).get("latency") or None
    if stored is None:
        return out, Check("latency.absolute", "pass", f"p50 {one['p50_ms']:.3f} ms recorded (no baseline to compare)",
                          "measured", None, one["p50_ms"]), latency
    if not base_lat or base_lat.get("p50_ms") is None:
        return out, Check("latency.absolute", "skip", "stored baseline has no latency; deterministic checks only",
                          "measured", None, one["p50_ms"]), latency
    limit = 1.0 + limits.max_regression
    raw = one["p50_ms"] / base_lat["p50_ms"]
    base_ref = stored.get("reference_ms")
    # Scale by a fixed numpy workload timed in both runs: corrects a faster/slower or busier machine, roughly.
    ratio = raw * (base_ref / ref) if base_ref else raw
    weak = ("weaker than an A/B: absolute times from two different runs"
            + (", scaled by a reference workload" if base_ref else "") + "; machine load differs between them")
    over = ratio > limit
    status = "fail" if (over and strict) else ("warn" if over else "pass")
    base_threads = (stored.get("settings") or {}).get("threads")
    if base_threads and base_threads != threads:
        weak += f"; baseline used {base_threads} thread(s), this run {threads}"
    msg = (f"p50 {base_lat['p50_ms']:.3f} -> {one['p50_ms']:.3f} ms, normalised x{ratio:.3f} (limit x{limit:.3f}) - {weak}")
    if base_lat.get("decode_tokens_per_s") and latency.get("decode_tokens_per_s"):  # two KV-cache decoders
        msg = f"decode {base_lat['decode_tokens_per_s']:.1f} -> {latency['decode_tokens_per_s']:.1f} tokens/s, " + msg
    out.update(raw_ratio=raw, ratio=ratio, baseline_reference_ms=base_ref, limit_ratio=limit)
    return out, Check("latency.absolute", status, msg, "measured", base_lat["p50_ms"], one["p50_ms"], limit,
                      {"normalised_ratio": ratio, "raw_ratio": raw, "strict": strict}), latency


def _baseline_entry(kind, path, info, stored, timing_out, given) -> dict[str, Any]:
    if kind == "model":
        return {"source": "model", "path": str(path), "sha256": _sha(path), "info": info,
                "latency": (timing_out or {}).get("baseline_latency")}
    if kind == "json":
        return {"source": "json", "path": str(given), "model_path": stored.get("path"), "sha256": stored.get("sha256"),
                "info": info, "latency": stored.get("latency"), "reference_ms": stored.get("reference_ms")}
    return {"source": "none", "path": None}
