"""`edgekd models`: the built-in student families."""

from __future__ import annotations

import typer


def models_cmd(
    input_size: int = typer.Option(28, help="Square input size used to count MACs."),
    channels: int = typer.Option(1, help="Input channels used to count MACs."),
) -> None:
    """List built-in student models with their MACs and parameters."""
    from rich.console import Console
    from rich.table import Table

    from edgekd.models import count_macs_params, create_model, list_models

    table = Table(title=f"built-in students (MACs at {channels}x{input_size}x{input_size})")
    for col in ("name", "MACs", "params"):
        table.add_column(col, justify="left" if col == "name" else "right")
    for name in list_models():
        macs, params = count_macs_params(create_model(name, in_channels=channels), (channels, input_size, input_size))
        table.add_row(name, f"{macs:,}", f"{params:,}")
    Console().print(table)
