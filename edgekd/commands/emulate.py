"""`edgekd emulate MODEL --target T` (aarch64 kernels under qemu-user) and `edgekd arm-env` (its setup)."""

from pathlib import Path
from typing import Optional

import typer


def emulate_cmd(
    model: Path = typer.Argument(..., help="model file (.tflite or .onnx)"),
    target: str = typer.Option("android", "--target", "-t", help="ARM target with an [emulation] table (name or .toml)"),
    runs: int = typer.Option(3, "--runs", min=1, help="counted invokes (the count is deterministic: a few suffice)"),
    warmup: int = typer.Option(1, "--warmup", min=0, help="uncounted invokes first"),
    data: Optional[str] = typer.Option(None, "--data", help="real samples for numerics: fashion-mnist | digits | folder | .npz"),
    samples: int = typer.Option(8, "--samples", min=1, help="how many samples to compare with the host"),
    count_only: bool = typer.Option(False, "--count-only", help="only the instruction count (no numerics, no host run)"),
    timeout: float = typer.Option(900.0, "--timeout", min=1, help="seconds before the emulated run is stopped"),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Run a model on the target's ARM core under qemu: numerics vs host, emulated instructions, estimated latency."""
    from edgekd.emulate import emulate_profile, instruction_count

    if count_only:
        res = instruction_count(model, target, runs=runs, warmup=warmup, timeout_s=timeout)
    else:
        res = emulate_profile(model, target, sample=data, runs=runs, warmup=warmup, samples=samples,
                              timeout_s=timeout)[0]
    if json_out:
        import json

        print(json.dumps(res, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{model.name} on {res['target']} ({res['qemu_cpu']}, emulated)", show_header=False)
    table.add_row("emulated instructions / inference", f"{res['emulated_instructions']:,}")
    table.add_row("run-to-run spread", f"{res['instructions_spread'] * 100:.3f} % over {len(res['instructions_runs'])} runs")
    table.add_row("runtime", res["runtime"])
    if "numerics" in res:
        num = res["numerics"]
        table.add_row("estimated latency (1 thread)", f"{res['p50_ms']:.3f} ms  [estimated, not measured]")
        table.add_row("calibration", res["calibration_source"])
        table.add_row(f"numerics vs host ({num['samples']} {num['inputs']} inputs)",
                      f"max |diff| {num['max_abs_error']:.3g}, top-1 agreement {num['top1_agreement'] * 100:.1f} %")
        table.add_row("emulation wall time", f"{res['emulation_wall_s']:.1f} s")
    Console().print(table)


def arm_env_cmd(
    home: Optional[Path] = typer.Option(None, "--home", help="cache dir (default $EDGEKD_ARM_HOME or ~/.cache/edgekd/arm)"),
    force: bool = typer.Option(False, "--force", help="rebuild everything"),
) -> None:
    """Build the ARM emulation environment once (arm64 Python sysroot, aarch64 wheels, qemu plugin)."""
    from edgekd.emulate.setup import setup

    setup(home, force)
