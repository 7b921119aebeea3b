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
    try:
        # Standalone mode: typer itself reports usage errors (exit 2) and --help; our errors come out here.
        app(args=argv)
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


if __name__ == "__main__":
    main()
