"""report.json (stable schema, see README) and report.md from the run's artifacts."""

from __future__ import annotations

import json
from typing import Any

from edgekd.core import Artifact, atomic_write_text

REPORT_SCHEMA = 1


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def latency_label(lat: dict[str, Any] | None) -> str:
    """The full sentence: kind, runtime, threads, runs, where, and the figures beyond p50/p90."""
    if not lat:
        return "—"
    where = lat.get("where", "?")
    runs = f"{lat['runs']} runs, " if lat.get("runs") else ""
    label = f"{lat.get('kind', '?')}: {lat.get('runtime', '?')}, {lat.get('threads', '?')} thr, {runs}{where}"
    figs = figures(lat)
    return f"{label} — {figs}" if figs else label


def where_short(lat: dict[str, Any]) -> str:
    """A few words on where a figure comes from; the full sentence stays in `where`."""
    backend, target = lat.get("backend", ""), lat.get("target", "target")
    if backend == "host-fallback":
        return f"this host, NOT the {target} device (none reachable)"
    if backend == "host" or (lat.get("kind") == "measured" and str(lat.get("where", "")).startswith("host")):
        return "this host"
    if backend == "ssh":
        return f"{target} over ssh"
    if backend.startswith("adb-"):
        return f"{target} over adb, {backend[4:]}"
    if backend == "qnn-htp":
        return "QNN HTP simulator"
    if backend == "vela":
        return f"Vela model of {(lat.get('delegates') or [target])[0]}"
    if backend == "qemu-emulation":
        return f"qemu {lat.get('qemu_cpu', 'aarch64')} instruction count"
    return target


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def figures(lat: dict[str, Any]) -> str:
    """What a result has beyond p50/p90, in a few words (each backend has different figures)."""
    f = []
    if lat.get("available") is False:
        return f"unavailable: {lat.get('error', '?')}"
    if lat.get("emulated_instructions") is not None:
        f.append(f"{lat['emulated_instructions']:,.0f} aarch64 instructions/inference")
    if lat.get("cycles_total") is not None:
        f.append(f"{lat['cycles_total']:,.0f} cycles")
    if lat.get("compute_nodes_on_htp") is not None:
        on, off = lat["compute_nodes_on_htp"], lat.get("compute_nodes_on_cpu") or 0
        f.append(f"{on}/{on + off} compute nodes on the HTP")
        agr = (lat.get("agreement") or {}).get("vs_cpu_same_qdq_model") or {}
        if agr.get("top1_agreement") is not None:
            n = str((lat.get("agreement") or {}).get("inputs", "")).split(" ")[0]
            on = f" on {n} inputs" if n.isdigit() else ""
            f.append(f"top-1 agreement with CPU {agr['top1_agreement']:.0%}{on} (max diff {agr['max_abs_diff']:.2g})")
        if lat.get("context_binary_bytes"):
            f.append(f"context binary {_kib(lat['context_binary_bytes'])}")
    if lat.get("npu_ops") is not None:
        f.append(f"{lat['npu_ops']} NPU / {lat.get('cpu_ops', 0)} CPU ops")
    if lat.get("sram_used_bytes") is not None:
        f.append(f"SRAM {_kib(lat['sram_used_bytes'])}")
    if lat.get("off_chip_flash_used_bytes"):
        f.append(f"flash {_kib(lat['off_chip_flash_used_bytes'])}")
    if lat.get("kind") == "measured":
        if lat.get("p99_ms") is not None:
            f.append(f"p99 {lat['p99_ms']:.3f} ms")
        if lat.get("init_ms") is not None:
            f.append(f"init {lat['init_ms']:.1f} ms")
        if lat.get("peak_rss_mb") is not None:
            f.append(f"peak RSS {lat['peak_rss_mb']:.1f} MB")
    return ", ".join(f)


def result_summary(lat: dict[str, Any], with_p50: bool = True) -> str:
    """One result in a table cell: kind, where (short), p50 when asked, figures."""
    p50 = f"p50 {lat['p50_ms']:.3f} ms" if with_p50 and lat.get("p50_ms") is not None else ""
    figs = ", ".join(x for x in (p50, figures(lat)) if x)
    how = f", {lat.get('runtime')} {lat.get('threads')} thr" if lat.get("kind") == "measured" else ""
    return f"{lat.get('kind', '?')}, {where_short(lat)}{how}" + (f": {figs}" if figs else "")


def artifact_rows(artifacts: list[Artifact]) -> list[list[str]]:
    rows = []
    for a in artifacts:
        lat = a.latency or {}
        cells = [result_summary(lat, with_p50=False)] if lat else ["—"]
        cells += [f"also {result_summary(o)}" for o in (a.extra or {}).get("other_latencies", [])]
        rows.append([
            a.name, _fmt(a.accuracy), _fmt(a.size_bytes / 1024 if a.size_bytes else None, ".1f"),
            _fmt(lat.get("p50_ms"), ".3f"), _fmt(lat.get("p90_ms"), ".3f"), "; ".join(cells),
        ])
    return rows


def budget_lines(report: dict[str, Any], artifacts: list[Artifact]) -> list[str]:
    """The profile's own budget rows (pass / fail / skip with why) per shipped artifact."""
    out = []
    for a in artifacts:
        for b in (a.extra or {}).get("budgets", []):
            val = "—" if b.get("value") is None else f"{b['value']:.4g}"
            why = f" (skipped: {b['why']})" if b.get("why") else ""
            out.append(f"{a.name}: {b['budget']} {val} vs limit {b['limit']:g} — {b['status'].upper()}{why} "
                       f"({b.get('kind')}, {b.get('backend')})")
    return out


HEADERS = ["artifact", "accuracy %", "size KiB", "p50 ms", "p90 ms", "latency"]


def _macs(n: int) -> str:
    # Torch-Pruning's counter sees nn modules only: a torch.export program or a model file counts 0
    return f"{n:,} MACs" if n else "MACs not counted (no nn.Conv/nn.Linear modules)"


def _params(n: int) -> str:
    return f"{n:,} params" if n else "parameters inside the file, not counted"


def write_reports(run, report: dict[str, Any], artifacts: list[Artifact]) -> dict[str, Any]:
    """Write report.json and report.md; returns exactly what report.json holds."""
    report = {"schema": REPORT_SCHEMA, **report, "artifacts": [a.to_dict() for a in artifacts]}
    atomic_write_text(run.path("report.json"), json.dumps(report, indent=2, default=str) + "\n")
    lines = [f"# edgekd compress — target `{report['target']['name']}`", ""]
    lines += [f"- data: {report['data']['name']} ({report['data']['test']} test "
              f"{'samples' if report['data'].get('layout') == 'NF' else 'images'})",
              f"- teacher: `{report['teacher']['spec']}` ({_macs(report['teacher']['macs'])}, "
              f"{_params(report['teacher']['params'])})",
              f"- student: `{report['student']['spec']}` ({_macs(report['student']['macs'])}, {report['student']['params']:,} params)",
              f"- distillation: recipe `{report['distill'].get('recipe')}`{_auto_choice(report['distill'])}, "
              f"{report['distill'].get('epochs')} epochs"]
    if report.get("baseline"):
        b = report["baseline"]
        lines.append(f"- baseline (labels only, same budget): {b['scratch_test_acc']:.2f} % vs distilled "
                     f"{b['distilled_test_acc']:.2f} % ({b['gain_points']:+.2f} points)")
    data = report["data"]
    if data.get("normalisation"):  # what an app must do to pixels before calling the shipped file
        norm = data["normalisation"]
        values = (f"mean {[round(m, 4) for m in norm['mean']]}, std {[round(v, 4) for v in norm['std']]}"
                  if len(norm["mean"]) <= 8 else f"the {len(norm['mean'])} means and stds in report.json (data.normalisation)")
        how = f"then (x - mean) / std with {values} (--normalize {data.get('normalize', 'dataset')})"
        if data.get("layout") == "NF":
            lines.append(f"- model input: vectors of {data['input_shape'][0]} features as stored in the data, {how}")
        else:
            c, h, w = data["input_shape"]
            lines.append(f"- model input: {c}x{h}x{w} images (NCHW; TFLite files NHWC), pixels in [0, 1] {how}")
    derived = report["student"].get("derived") or {}
    if derived.get("macs_before"):
        lines.append(f"- student derived from the teacher ({derived.get('mode')}): {derived['macs_before']:,} -> "
                     f"{derived['macs_after']:,} MACs, dropped blocks {derived.get('dropped_blocks') or 'none'}, "
                     f"channels rounded to multiples of {derived.get('round_to')}")
    lines.append("")
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in artifact_rows(artifacts)]
    lines += ["", "## How each figure was obtained", ""]
    for a in artifacts:
        lines.append(f"- **{a.name}**: {latency_label(a.latency)}")
        for extra in (a.extra or {}).get("other_latencies", []):
            lines.append(f"  - also p50 {_fmt(extra.get('p50_ms'), '.3f')} ms, {latency_label(extra)}")
        for f in (a.extra or {}).get("compiled_files", []):
            lines.append(f"  - compiled for the target: `{f}`")
        for n in (a.extra or {}).get("profile_notes", []):
            lines.append(f"  - note: {n}")
    budgets = budget_lines(report, artifacts)
    if budgets:
        lines += ["", "## Budgets", ""] + [f"- {b}" for b in budgets]
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    atomic_write_text(run.path("report.md"), "\n".join(lines) + "\n")
    return report


def _auto_choice(distill: dict) -> str:
    """What `auto` picked and why, for the report's header."""
    auto = distill.get("auto")
    if not auto:
        return ""
    return (f" → `{auto['chosen']}` at lr {auto['lr']:.2g} (probe: {len(auto['tried'])} trials of "
            f"{auto['steps_per_candidate']} steps, {auto['seconds']:.0f} s; {auto['reason']})")
