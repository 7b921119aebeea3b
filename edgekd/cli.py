"""The `edgekd` command line. Thin: each command lives in edgekd/commands/<stage>.py and calls the same
function the Python API exposes. Every user error becomes one `error: ...` line and a non-zero exit."""

from __future__ import annotations

import importlib
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


def _version(value: bool) -> None:
    if value:
        from edgekd.commands.doctor import version_text

        print(version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="edgekd's version and the converters/runtimes found"),
) -> None:
    """Distill, prune, quantize, export and profile PyTorch models for phones, boards and NPUs."""


def _register() -> None:
    if app.registered_commands:  # main() may be called many times in one process (tests, notebooks)
        return
    from edgekd.commands.compress import compress_cmd

    app.command("compress")(compress_cmd)
    for module, names in _STAGE_COMMANDS:
        try:
            mod = importlib.import_module(f"edgekd.commands.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"edgekd.commands.{module}":
                raise
            continue  # that stage is not installed in this build
        for cli_name, fn_name in names:
            app.command(cli_name)(getattr(mod, fn_name))


# (module in edgekd/commands, [(command name, function)]) in the order `edgekd --help` lists them.
_STAGE_COMMANDS: list[tuple[str, list[tuple[str, str]]]] = [
    ("distill", [("distill", "distill_cmd")]),
    ("prune", [("derive", "derive_cmd"), ("prune", "prune_cmd")]),
    ("quantize", [("quantize", "quantize_cmd")]),
    ("export", [("export", "export_cmd")]),
    ("profile", [("profile", "profile_cmd"), ("targets", "targets_cmd")]),
    ("emulate", [("emulate", "emulate_cmd"), ("arm-env", "arm_env_cmd")]),
    ("gate", [("gate", "gate_cmd"), ("inspect", "inspect_cmd")]),
    ("hf", [("hf-compress", "hf_compress_cmd")]),
    ("models", [("models", "models_cmd")]),
    ("doctor", [("doctor", "doctor_cmd")]),
    ("init", [("init", "init_cmd")]),
]


def main(argv: list[str] | None = None) -> None:
    from edgekd.errors import EdgeKDError

    _register()
    click_error, no_args_help, click_abort = _click_exceptions()
    try:
        # Not standalone: click's usage errors come out here, so they print as one line like ours rather
        # than typer's multi-line box; the return value is the exit code of typer.Exit / --help.
        code = app(args=argv, standalone_mode=False)
    except no_args_help as exc:  # bare `edgekd`: the help, as before
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
        sys.exit(exc.exit_code)
    except click_error as exc:  # bad option, missing argument, value out of range
        print(f"error: {_click_line(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (click_abort, typer.Abort):
        print("aborted", file=sys.stderr)
        sys.exit(1)
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
    if code == 130:  # typer turns Ctrl-C into Exit(130)
        print("interrupted", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


class _Never(Exception):
    """Stands in for an exception this click version never raises."""


def _click_exceptions():
    """The click exceptions typer raises: its vendored copy (newer typer) or click itself (older typer)."""
    mod = importlib.import_module(typer.BadParameter.__module__)
    # click < 8.2 prints the help for a bare `edgekd` itself and raises no NoArgsIsHelpError
    return mod.ClickException, getattr(mod, "NoArgsIsHelpError", _Never), getattr(mod, "Abort", _Never)


def _click_line(exc) -> str:
    """A click error as one line, pointing at the command's --help (click's own text spans several lines)."""
    text = " ".join(exc.format_message().split())
    ctx, names = getattr(exc, "ctx", None), []
    while ctx is not None and ctx.parent is not None:  # the sub-command's own names, not `python -m ...`
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    if ctx is not None:
        text += f" (see `{' '.join(['edgekd', *names])} --help`)"
    return text


if __name__ == "__main__":
    main()
