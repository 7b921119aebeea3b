"""Build TFLite benchmark_model command lines and parse what it prints (timings, memory, op profile)."""

from __future__ import annotations

import re
from typing import Any

_STAT = re.compile(r"count=(\d+)((?:\s+\w+=[-\d.e+]+(?:\(all same\))?)*)")
_KV = re.compile(r"(\w+)=([-\d.e+]+)")
_FLOAT = r"([-\d.e+]+)"

DELEGATE_FLAGS = {
    "xnnpack": ["--use_xnnpack=true"],
    "cpu": ["--use_xnnpack=false"],  # plain TFLite kernels
    "gpu": ["--use_xnnpack=false", "--use_gpu=true"],
    "nnapi": ["--use_xnnpack=false", "--use_nnapi=true"],
    "hexagon": ["--use_xnnpack=false", "--use_hexagon=true"],
}


def command(binary: str, graph: str, *, threads: int, runs: int, warmup: int, max_seconds: float,
            delegate: str = "xnnpack", op_profiling: bool = True) -> list[str]:
    """The argv for one benchmark_model run (run on the device, optionally under taskset)."""
    if delegate not in DELEGATE_FLAGS:
        raise ValueError(f"unknown benchmark_model delegate {delegate!r}; known: {', '.join(DELEGATE_FLAGS)}")
    return [
        binary, f"--graph={graph}", f"--num_threads={threads}", *DELEGATE_FLAGS[delegate],
        f"--warmup_runs={warmup}", "--warmup_min_secs=0",
        f"--num_runs={runs}", "--min_secs=0", f"--max_secs={max_seconds:g}",
        f"--enable_op_profiling={'true' if op_profiling else 'false'}",
        "--report_peak_memory_footprint=true",
    ]


def _lines(text: str) -> list[str]:
    # some builds prefix log lines with "INFO: " (and the tables not); strip it so both parse alike
    return [ln[6:] if ln.startswith("INFO: ") else ln for ln in text.splitlines()]


def _stat(line: str) -> dict[str, float]:
    m = _STAT.search(line)
    if not m:
        return {}
    out = {"count": float(m.group(1))}
    out.update({k: float(v) for k, v in _KV.findall(m.group(2))})
    return out


def _table(lines: list[str], start: int) -> tuple[list[str], list[list[str]]]:
    """Tab-separated table right after a ==== header line: ([column names], rows)."""
    i = start + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines):
        return [], []
    header = [c.strip().strip("[]") for c in lines[i].split("\t") if c.strip()]
    rows = []
    for ln in lines[i + 1:]:
        if not ln.strip() or ln.startswith("=") or "\t" not in ln:
            break
        rows.append([c.strip() for c in ln.split("\t") if c.strip()])
    return header, rows


def _num(s: str) -> float | None:
    try:
        return float(s.rstrip("%"))
    except ValueError:
        return None


def parse(text: str) -> dict[str, Any]:
    """Figures from benchmark_model's stdout. Raises ValueError when it holds no inference timings."""
    lines = _lines(text)
    res: dict[str, Any] = {}
    runs_stat: dict[str, float] = {}
    for ln in lines:
        if ln.strip().startswith("count="):
            st = _stat(ln)
            if st:
                runs_stat = st  # the last stat line before the op tables is the timed runs
        m = re.search(r"Inference timings in us: Init: " + _FLOAT + r", First inference: " + _FLOAT
                      + r", Warmup \(avg\): " + _FLOAT + r", Inference \(avg\): " + _FLOAT, ln)
        if m:
            res["init_ms"] = float(m.group(1)) / 1e3
            res["first_run_ms"] = float(m.group(2)) / 1e3
            res["warmup_mean_ms"] = float(m.group(3)) / 1e3
            res["mean_ms"] = float(m.group(4)) / 1e3
        m = re.search(r"Memory footprint delta from the start of the tool \(MB\): init=" + _FLOAT
                      + r" overall=" + _FLOAT, ln)
        if m:
            res["model_rss_mb"] = float(m.group(2))
        m = re.search(r"Overall peak memory footprint \(MB\) via periodic monitoring: " + _FLOAT, ln)
        if m:
            res["peak_rss_mb"] = float(m.group(1))
        m = re.search(r"max resident set size = " + _FLOAT + " MB", ln)
        if m and "peak_rss_mb" not in res:
            res["peak_rss_mb"] = float(m.group(1))
        m = re.search(r"The input model file size \(MB\): " + _FLOAT, ln)
        if m:
            res["file_size_mb"] = float(m.group(1))
        if "Operator-wise Profiling Info" in ln:
            break
    if "mean_ms" not in res:
        raise ValueError("benchmark_model output holds no 'Inference timings in us' line")
    if runs_stat:
        us = 1e-3
        res["runs"] = int(runs_stat["count"])
        for key, name in (("min", "min_ms"), ("max", "max_ms"), ("std", "std_ms"), ("avg", "mean_ms"),
                          ("p5", "p5_ms"), ("median", "p50_ms"), ("p95", "p95_ms")):
            if key in runs_stat:
                res[name] = runs_stat[key] * us
    res["ops"], res["op_types"] = _op_profile(lines)
    return res


def _op_profile(lines: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-node and per-type rows of the 'Regular Benchmark Runs' op profile (empty when not enabled)."""
    try:
        start = next(i for i, ln in enumerate(lines) if "Operator-wise Profiling Info for Regular Benchmark Runs" in ln)
    except StopIteration:
        return [], []
    ops: list[dict[str, Any]] = []
    types: list[dict[str, Any]] = []
    for i in range(start, len(lines)):
        ln = lines[i]
        if "Run Order" in ln and ln.startswith("=") and not ops:
            header, rows = _table(lines, i)
            for r in rows:
                row = dict(zip(header, r))
                ops.append({"type": row.get("node type"), "name": row.get("Name"),
                            "avg_ms": _num(row.get("avg ms", "")), "percent": _num(row.get("%", "")),
                            "mem_kb": _num(row.get("mem KB", ""))})
        elif "Summary by node type" in ln and ln.startswith("="):
            header, rows = _table(lines, i)
            for r in rows:
                row = dict(zip(header, r))
                types.append({"type": row.get("Node type"), "count": int(_num(row.get("count", "0")) or 0),
                              "avg_ms": _num(row.get("avg ms", "")), "percent": _num(row.get("avg %", ""))})
            break
    return ops, types
