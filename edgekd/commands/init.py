"""`edgekd init`: a commented starter configuration file holding every option, at its default."""

from __future__ import annotations

from pathlib import Path

import typer


def init_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(Path("edgekd.toml"), help="Where to write the file."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented edgekd.toml with every option of `edgekd compress` and the gate's limits."""
    from edgekd.commands.config_file import defaults_of, file_options, render
    from edgekd.core import atomic_write_text
    from edgekd.errors import UsageError

    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    commands = {n: c for n, c in ctx.find_root().command.commands.items() if file_options(c)}
    header = ["edgekd configuration: `edgekd compress --config edgekd.toml` (and `edgekd gate --config` for [gate]).",
              "Every key is an option of the command (see `edgekd compress --help`); a flag given on the command",
              "line overrides the file. Lines starting with '#' are defaults left unset. Paths are relative to",
              "the directory you run edgekd from. Recipe fields: [distill] set = { \"kd.temperature\" = 2 }."]
    atomic_write_text(path, render(commands, {n: defaults_of(c) for n, c in commands.items()}, header=header,
                                   with_help=True))
    typer.echo(f"wrote {path}: edit it, then run `edgekd compress --config {path}`")
