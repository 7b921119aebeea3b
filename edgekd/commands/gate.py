"""`edgekd gate` (CI latency-regression gate) and `edgekd inspect` (what a model file contains)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgekd.commands.config_file import config_callback


def _parse_shape(text: Optional[str]) -> Optional[tuple]:
    if not text:
        return None
    from edgekd.errors import UsageError

    try:
        dims = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise UsageError(f"--input-shape expects positive integers like 1,3,224,224, got {text!r}")
    return dims


def gate_cmd(
    candidate: Path = typer.Argument(..., help="Candidate model file (.onnx, .tflite or .pte)."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", "-b", help="Baseline model file (A/B timing), or the JSON of an earlier `edgekd gate --json`/`--output` run (weaker: absolute times)."),
    target: str = typer.Option("host", "--target", "-t", help="Target name (`edgekd targets`) or .toml file: budgets, threads, NPU analysis.", rich_help_panel="Gate"),
    max_regression: float = typer.Option(0.05, help="Allowed slowdown: fail when the CI lower bound of the time ratio exceeds 1 + this.", rich_help_panel="Gate"),
    max_size_growth: Optional[float] = typer.Option(None, help="Allowed relative file-size growth (default: --max-regression).", rich_help_panel="Gate"),
    max_macs_growth: Optional[float] = typer.Option(None, help="Allowed relative MAC growth (default: --max-regression).", rich_help_panel="Gate"),
    max_new_transposes: int = typer.Option(0, min=0, help="Transpose ops the candidate may add.", rich_help_panel="Gate"),
    threads: Optional[int] = typer.Option(None, min=1, help="Runtime threads for the A/B (default: the target's if local, else 1).", rich_help_panel="Gate"),
    budget_s: float = typer.Option(5.0, min=0.5, help="Seconds of interleaved timing per attempt.", rich_help_panel="Gate"),
    max_pairs: int = typer.Option(1000, min=10, help="Most ABBA pairs per attempt.", rich_help_panel="Gate"),
    input_shape: Optional[str] = typer.Option(None, help="Shape for inputs with dynamic dims, e.g. 1,128.", rich_help_panel="Gate"),
    measure: bool = typer.Option(True, "--measure/--no-measure", help="Run the wall-time comparison.", rich_help_panel="Gate"),
    pin: bool = typer.Option(True, "--pin/--no-pin", help="Pin the process to fixed CPUs while timing.", rich_help_panel="Gate"),
    instructions: bool = typer.Option(False, "--instructions", help="Also count instructions per inference under valgrind/callgrind (hard check; ~1 min per model).", rich_help_panel="Gate"),
    instructions_runs: int = typer.Option(20, min=1, help="Invokes counted under callgrind.", rich_help_panel="Gate"),
    arm_instructions: bool = typer.Option(False, "--arm-instructions", help="Also compare emulated aarch64 instructions per inference (edgekd.emulate, qemu-user).", rich_help_panel="Gate"),
    npu: Optional[bool] = typer.Option(None, "--npu/--no-npu", help="NPU placement checks (default: on for NPU targets).", rich_help_panel="Gate"),
    strict_absolute: bool = typer.Option(False, help="With a JSON baseline, fail (not warn) on an absolute-time regression.", rich_help_panel="Gate"),
    config: Optional[Path] = typer.Option(None, "--config", is_eager=True, callback=config_callback, help="A TOML file whose [gate] section sets these limits (the same file `edgekd compress --config` reads); flags override it."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON (usable later as --baseline)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the JSON report to this file."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write a JUnit XML file (one test case per check)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML report (checks, and the A/B ratio distribution with its interval and limit; also saved as a PNG beside it)."),
    github: bool = typer.Option(False, "--github", help="Print GitHub Actions annotations (::error ...) and append to $GITHUB_STEP_SUMMARY."),
) -> None:
    """Fail CI when CANDIDATE regresses against BASELINE: hard checks, then an interleaved A/B timing.

    Exit 0: pass; 1: regression; 2: usage error.
    """
    import os

    from edgekd.core import atomic_write_text, check_output_file
    from edgekd.gate import Limits, TimingSettings, gate

    for flag, path in (("--output", output), ("--junit", junit), ("--html", html)):
        if path is not None:  # before the timing, not after it
            check_output_file(path, flag, reads=[candidate])
    limits = Limits(max_regression=max_regression, max_size_growth=max_size_growth,
                    max_macs_growth=max_macs_growth, max_new_transposes=max_new_transposes)
    timing = TimingSettings(budget_s=budget_s, max_pairs=max_pairs, pin=pin)
    report = gate(candidate, baseline, target, max_regression=max_regression, limits=limits, threads=threads,
                  timing=timing, measure=measure, instructions=instructions, instructions_runs=instructions_runs,
                  arm_instructions=arm_instructions, npu=npu, input_shape=_parse_shape(input_shape),
                  strict_absolute=strict_absolute)
    if output is not None:
        atomic_write_text(output, report.to_json() + "\n")
    if junit is not None:
        atomic_write_text(junit, report.to_junit())
    if html is not None:
        from edgekd.gate.figures import write_gate_html

        write_gate_html(report, html)
    if github:
        for line in report.github_annotations():
            print(line)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a") as fh:
                fh.write(report.markdown())
    if json_out:
        print(report.to_json())
    else:
        print_report(report)
    if not report.passed:
        raise typer.Exit(code=1)


_KIND = {"deterministic": "det", "measured": "meas", "simulated": "sim", "estimated": "est"}


def print_report(report) -> None:
    from rich.console import Console
    from rich.table import Table

    style = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}
    table = Table(title=f"edgekd gate: {Path(report.candidate['path']).name} vs "
                        f"{Path(report.baseline['path']).name if report.baseline.get('path') else '(no baseline)'} "
                        f"- target {report.target}")
    table.add_column("result", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("kind")
    table.add_column("details (baseline -> candidate, limit)", overflow="fold")
    for c in report.checks:
        table.add_row(f"[{style[c.status]}]{c.status.upper()}[/]", c.name, _KIND.get(c.kind, c.kind), c.message)
    console = Console()
    console.print(table)
    console.print("kind: det = read from the file / counted (repeatable), meas = measured here, "
                  "sim = simulator or emulator (HTP, qemu), est = static estimate (Vela)")
    for n in report.notes:
        console.print(f"note: {n}")
    console.print(f"[{'green' if report.passed else 'bold red'}]{report.summary()}[/] ({report.seconds:.1f} s)")


def inspect_cmd(
    model: Path = typer.Argument(..., help="A .onnx, .tflite, .pte or .mlpackage file."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (usable as a gate --baseline for the deterministic checks)."),
) -> None:
    """Show a model file's size, inputs/outputs, op counts (custom/Flex marked), parameters and MACs."""
    import json

    from edgekd.inspect import model_info

    info = model_info(model)
    if json_out:
        print(json.dumps(info, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    from edgekd.gate.checks import fmt_num

    console = Console()
    console.print(f"[bold]{model}[/]  {info['format']}  {fmt_num(info['size_bytes'])}B  "
                  f"params {fmt_num(info['params']) if info['params'] is not None else 'n/a'}  "
                  f"MACs {fmt_num(info['macs']) if info['macs'] is not None else 'n/a'}")
    if info.get("delegation"):
        d = info["delegation"]
        console.print(f"  delegation: {d['delegated_ops']} ops in XNNPACK, {d['portable_ops']} in portable kernels"
                      + (f" (share {d['share']:.1%})" if d["share"] is not None else ""), highlight=False)
    if info.get("validation"):
        console.print(f"  Core ML, compute {info['compute_precision']}, weights {info.get('weights')}: "
                      f"{info['validation']}", highlight=False)
    for role in ("inputs", "outputs"):
        for e in info[role]:
            q = f"  quant scale={e['quant']['scale']:.4g} zp={e['quant']['zero_point']}" if e.get("quant") else ""
            console.print(f"  {role[:-1]:6} {e['name']}: {e['shape']} {e['dtype']}{q}")
    table = Table(title=f"{info['num_ops']} ops")
    table.add_column("op")
    table.add_column("count", justify="right")
    for op, n in sorted(info["ops"].items(), key=lambda kv: -kv[1]):
        mark = " [red](custom)[/]" if op in info["custom_ops"] else ""
        table.add_row(op + mark, str(n))
    console.print(table)
