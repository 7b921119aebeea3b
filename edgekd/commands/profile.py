"""`edgekd profile MODEL --target T` and `edgekd targets`."""

from pathlib import Path
from typing import Optional

import typer

from edgekd.commands.gate import _parse_shape


def _ms(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if v < 0.1 else f"{v:.3f}" if v < 10 else f"{v:.1f}"


def profile_cmd(
    model: Path = typer.Argument(..., help="model file to profile (.onnx, .tflite, .pte; .mlpackage: says why it cannot)"),
    target: str = typer.Option("host", "--target", "-t", help="built-in target name or a target .toml file"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
    runs: Optional[int] = typer.Option(None, "--runs", help="timed runs (default: the target's)"),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="warm-up runs (default: the target's)"),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: the target's)"),
    emulate: bool = typer.Option(False, "--emulate", help="also estimate ARM latency under qemu (edgekd.emulate)"),
    sample: Optional[Path] = typer.Option(None, "--sample", help=".npy/.npz real input (float32 NCHW); random if not given"),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="keep compiled NPU files here (QNN context binary, Vela tflite)"),
    require_device: bool = typer.Option(False, "--require-device", help="fail instead of measuring on the host when the adb/ssh device is unreachable"),
    benchmark_model: Optional[Path] = typer.Option(None, "--benchmark-model", help="android: host path of TFLite's benchmark_model to push"),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="shape for inputs with dynamic dims besides the batch, e.g. 1,128 (token ids) or 1,3,224,224"),
) -> None:
    """Profile a model file for a target: measured (host, ssh, adb), simulated (Qualcomm HTP) or estimated (Ethos-U)."""
    from edgekd.profile import profile

    rep = profile(model, target, sample=sample, runs=runs, warmup=warmup, threads=threads, emulate=emulate,
                  output_dir=output_dir, require_device=require_device,
                  benchmark_model=str(benchmark_model) if benchmark_model else "",
                  input_shape=_parse_shape(input_shape))
    if json_out:
        import json

        print(json.dumps(rep.to_dict(), indent=2, default=str))
        if rep.budgets_failed:
            raise typer.Exit(1)
        return
    from rich.console import Console
    from rich import box
    from rich.table import Table

    table = Table(title=f"{Path(rep.model).name} on {rep.target}", caption="times in ms",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("kind", "backend", "p50", "p90", "p99", "mean", "runs", "thr"):
        table.add_column(col, justify="left" if col in ("kind", "backend") else "right", no_wrap=True,
                         min_width={"kind": 9, "backend": 7, "runs": 4, "thr": 3}.get(col, 6))
    lines = []
    for r in rep.results:
        extra = []
        if r.get("emulated_instructions") is not None:
            extra.append(f"{r['emulated_instructions']:,.0f} aarch64 instructions/inference")
            if r.get("calibration_source"):
                extra.append(f"calibration: {r['calibration_source']}")
        if r.get("cycles_total") is not None:
            extra.append(f"{r['cycles_total']:.0f} cycles")
        if "npu_ops" in r:
            cpu_types = ", ".join(f"{k} x{v}" for k, v in (r.get("cpu_op_types") or {}).items())
            extra.append(f"NPU ops {r['npu_ops']}, CPU ops {r['cpu_ops']}" + (f" ({cpu_types})" if cpu_types else ""))
        if r.get("op_cycles"):
            top = sorted(r["op_cycles"], key=lambda o: -o["cycles"])[:3]
            extra.append("top ops by cycles: " + ", ".join(f"{o['name']} {o['percent']:.0f}%" for o in top
                                                           if o.get("percent") is not None))
        if "compute_nodes_on_htp" in r:
            extra.append(f"HTP nodes {r['compute_nodes_on_htp']}, CPU fallback {r['compute_nodes_on_cpu']} (excl. Q/DQ)")
            agr = r.get("agreement", {}).get("vs_cpu_same_qdq_model", {})
            if agr:
                extra.append(f"max|HTP-CPU| {agr['max_abs_diff']:.2g}, top-1 agreement {agr.get('top1_agreement', 0):.0%}")
            if r.get("context_binary_bytes"):
                extra.append(f"EP context binary {r['context_binary_bytes'] / 1024:.1f} KiB")
        if r.get("op_types"):
            top = sorted(r["op_types"], key=lambda t: -(t.get("percent") or 0))[:3]
            extra.append("top ops: " + ", ".join(f"{t['type']} {t['percent']:.0f}%" for t in top if t.get("percent") is not None))
        if r.get("available") is False:
            extra.append(f"unavailable: {r.get('error')}")
        if r.get("sram_used_bytes") is not None:
            extra.append(f"SRAM {r['sram_used_bytes'] / 1024:.1f} KiB")
        if r.get("inputs") and r["kind"] == "measured":
            extra.append("input " + ", ".join(f"{i.get('name', '')} {'x'.join(map(str, i['shape']))} {i['dtype']}".strip()
                                              for i in r["inputs"]) + f" ({r.get('input_source', 'random')})")
        if r.get("warmup") is not None and r["kind"] == "measured":
            extra.append(f"warm-up {r['warmup']}")
        if r.get("init_ms") is not None:
            extra.append(f"init {_ms(r['init_ms'])} ms")
        if r.get("peak_rss_mb") is not None:
            extra.append(f"peak RSS {r['peak_rss_mb']:.1f} MB"
                         + (f" (model +{r['model_rss_mb']:.1f} MB)" if r.get("model_rss_mb") is not None else ""))
        if r.get("file_size_bytes") is not None:
            extra.append(f"file {r['file_size_bytes'] / 1024:.1f} KiB")
        table.add_row(r["kind"], r.get("backend", ""), _ms(r.get("p50_ms")), _ms(r.get("p90_ms")), _ms(r.get("p99_ms")),
                      _ms(r.get("mean_ms")), str(r.get("runs") or "-"), str(r.get("threads") or "-"))
        lines.append(f"{r.get('backend', '')} ({r['kind']}): {r['where']}" + (f"\n    {'; '.join(extra)}" if extra else ""))
    console = Console()
    console.print(table)
    for ln in lines:
        console.print(ln, highlight=False, markup=False)
    for n in rep.notes:
        console.print(f"note: {n}", highlight=False, markup=False)
    for b in rep.budgets:
        val = "-" if b["value"] is None else f"{b['value']:.4g}"
        why = f" (skipped: {b['why']})" if b["why"] else ""
        console.print(f"budget {b['budget']} <= {b['limit']:g}: {val} [{b['backend']}, {b['kind']}] "
                      f"{b['status'].upper()}{why}", highlight=False, markup=False)
    if rep.budgets_failed:
        raise typer.Exit(1)  # a CI step fails when the target's budget is not met


def targets_cmd(json_out: bool = typer.Option(False, "--json", help="print the targets as JSON")) -> None:
    """List the built-in deployment targets."""
    from edgekd.targets import list_targets

    targets = list_targets()
    if json_out:
        import json

        print(json.dumps([t.to_dict() for t in targets], indent=2))
        return
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="edgekd targets", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("name", "kind", "ships", "runtime", "thr", "reached by", "budgets"):
        table.add_column(col, no_wrap=col in ("name", "ships", "kind", "thr"))
    for t in targets:
        conn = t.connection
        how = {"ssh": f"ssh {conn.user + '@' if conn.user else ''}{conn.host}:{conn.port}",
               "adb": f"adb {conn.serial or '(only device)'}", "offline": f"offline ({conn.compiler})"}.get(conn.kind, conn.kind)
        budgets = ", ".join(f"{k}={v}" for k, v in vars(t.budgets).items() if v is not None) or "-"
        rt = t.runtime + (f" [{', '.join(t.delegates + t.optional_delegates)}]" if t.delegates or t.optional_delegates else "")
        table.add_row(*map(escape, (t.name, t.kind, ", ".join(f"{s.format} {s.precision}" for s in t.ships), rt,
                                    str(t.threads), how, budgets)))
    console = Console()
    console.print(table)
    for t in targets:
        console.print(f"{t.name}: {t.description}", highlight=False, markup=False)
    console.print("Use one with --target NAME, or pass your own .toml file (see targets/README.md).",
                  highlight=False, markup=False)
