"""The `edgekd` command line. Thin: each command lives in edgekd/commands/<stage>.py and calls the same
function the Python API exposes. Every user error becomes one `error: ...` line and a non-zero exit."""

from __future__ import annotations

import os
import sys

import typer

app = typer.Typer(
    name="edgekd",
    help="Distill, prune, quantize, export and profile PyTorch models for phones, boards and NPUs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from edgekd.commands.compress import compress_cmd

    app.command("compress")(compress_cmd)
    for module, names in _STAGE_COMMANDS:
        mod = __import__(f"edgekd.commands.{module}", fromlist=["*"])
        for cli_name, fn_name in names:
            app.command(cli_name)(getattr(mod, fn_name))


# (module in edgekd/commands, [(command name, function)]) in the order `edgekd --help` lists them.
_STAGE_COMMANDS: list[tuple[str, list[tuple[str, str]]]] = []


def main(argv: list[str] | None = None) -> None:
    import click

    from edgekd.errors import EdgeKDError

    _register()
    try:
        rv = app(args=argv, standalone_mode=False)
    except click.exceptions.UsageError as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except EdgeKDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # last resort: one line, the traceback only on request
        if os.environ.get("EDGEKD_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"error: internal error ({type(exc).__name__}: {first}); rerun with EDGEKD_DEBUG=1 for the traceback", file=sys.stderr)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
