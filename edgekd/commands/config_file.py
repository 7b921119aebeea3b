"""`--config edgekd.toml`: every option of `edgekd compress`, and the gate's limits, in one TOML file.

The keys are the commands' own options, listed nowhere else: an option with a help panel is a key of the
section named by the panel (`Distill` -> `[distill]`), panel `Run` being the file's top level, and the key is
the flag's name (`--max-drop` -> `max_drop`; dashes are accepted too). The file's values become the
command's defaults (click's default_map), so a flag given on the command line wins over the file.

Parameters are duck-typed (typer >= 0.29 vendors its own click, older ones use click itself).
"""

from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path
from typing import Any

import typer

from edgekd.errors import UsageError

TOP = "run"  # the panel whose options sit at the file's top level
CONFIG_NAME = "config.toml"  # the resolved configuration in a run directory
_META = "edgekd.config"  # ctx.meta key: the loaded file, for the resolved copy


def section_of(param: Any) -> str | None:
    panel = getattr(param, "rich_help_panel", None)
    return panel.lower() if getattr(param, "param_type_name", "") == "option" and panel else None


def key_of(param: Any) -> str:
    """The file's key: the long flag's name (`--set` -> `set`, `--max-drop` -> `max_drop`)."""
    longs = [o for o in param.opts if o.startswith("--")]
    return (longs[0][2:] if longs else param.name).replace("-", "_")


def dotted(section: str, key: str) -> str:
    return key if section == TOP else f"{section}.{key}"


def file_options(command: Any) -> dict[str, Any]:
    """'section.key' (or 'key' at the top level) -> the option, for every option of `command` in a panel."""
    return {dotted(s, key_of(p)): p for p in command.params if (s := section_of(p))}


def _nearest(name: str, valid: list[str]) -> str:
    """', did you mean X?' — by the whole dotted name, else by the key alone (a key put in the wrong section)."""
    best = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if not best:
        bare = {v.rsplit(".", 1)[-1]: v for v in valid}
        near = difflib.get_close_matches(name.rsplit(".", 1)[-1], list(bare), n=1, cutoff=0.6)
        best = [bare[near[0]]] if near else []
    return f"; did you mean '{best[0]}'?" if best else ""


def _flatten(value: Any, prefix: str = "") -> list[str]:
    """A `set` table ({"kd": {"temperature": 2}} or {"kd.temperature": 2}) as KEY=VALUE strings."""
    out = []
    for k, v in value.items():
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}={toml_value(v)}")
    return out


def _convert(ctx, path: Path, name: str, param: Any, value: Any) -> Any:
    if param.multiple and isinstance(value, dict):
        value = _flatten(value)
    if param.multiple and not isinstance(value, list):
        raise UsageError(f"{path}: '{name}' must be a list (or a table of KEY = VALUE)")
    if isinstance(value, (dict, list)) and not param.multiple:
        raise UsageError(f"{path}: '{name}' must be a single value, got {type(value).__name__}")
    try:
        return param.process_value(ctx, value)  # the option's own type and range checks
    except typer.BadParameter as exc:
        raise UsageError(f"{path}: '{name}': {exc.message}") from None


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist (`edgekd init` writes a starter file)")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None


def load_config(ctx, path: Path, commands: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per command name, {param name: value} from the file; any key no command has is an error."""
    options = {cmd: file_options(c) for cmd, c in commands.items()}
    owner = {k: cmd for cmd, opts in options.items() for k in opts}
    sections = {k.split(".", 1)[0] for k in owner if "." in k}
    out: dict[str, dict[str, Any]] = {cmd: {} for cmd in commands}
    for name, value in _entries(path, read_toml(path), sections, set(owner)):
        norm = name.replace("-", "_")
        if norm not in owner:
            raise UsageError(f"{path}: unknown key '{name}'{_nearest(norm, sorted(owner))}")
        param = options[owner[norm]][norm]
        out[owner[norm]][param.name] = _convert(ctx, path, name, param, value)
    return out


def _entries(path: Path, raw: dict[str, Any], sections: set[str], keys: set[str]):
    """(dotted key, value) for every value in the file; sub-tables of a section are values (a `set` table)."""
    for top, value in raw.items():
        if isinstance(value, dict) and top.replace("-", "_") in sections:
            for key, v in value.items():
                yield f"{top}.{key}", v
        elif isinstance(value, dict) and top.replace("-", "_") not in keys:
            near = difflib.get_close_matches(top, sorted(sections), n=1, cutoff=0.6)
            hint = f"; did you mean [{near[0]}]?" if near else f"; sections: {', '.join(sorted(sections))}"
            raise UsageError(f"{path}: unknown section [{top}]{hint}")
        else:
            yield top, value


def config_callback(ctx: typer.Context, param: Any, value: Path | None) -> Path | None:
    """--config FILE (eager): the file's values become this command's defaults; flags still win."""
    if value is None:
        return None
    commands = getattr(ctx.find_root().command, "commands", {}) or {ctx.command.name: ctx.command}
    loaded = load_config(ctx, Path(value), commands)
    ctx.default_map = {**(ctx.default_map or {}), **loaded.get(ctx.command.name, {})}
    ctx.meta[_META] = {"path": str(value), "values": loaded}
    return value


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def _comment(text: str | None) -> list[str]:
    import textwrap

    return [f"# {line}" for line in textwrap.wrap(" ".join((text or "").split()), 100, break_on_hyphens=False)]


def _key_line(key: str, value: Any, note: str = "") -> str:
    if value is None:
        return f"# {key} =   (not set: the default applies)"
    if isinstance(value, (list, tuple)) and not value and not note:
        return f"{key} = []"
    return f"{key} = {toml_value(value)}" + (f"   # {note}" if note else "")


def render(commands: dict[str, Any], values: dict[str, dict[str, Any]], *, header: list[str],
           notes: dict[str, dict[str, str]] | None = None, with_help: bool = False, sparse: set[str] = frozenset()) -> str:
    """A TOML file of every option of `commands` ({command: {param name: value}}), top level first;
    a command in `sparse` contributes only the keys it has values for."""
    by_section: dict[str, list[str]] = {}
    for cmd, command in commands.items():
        for name, p in file_options(command).items():
            if cmd in sparse and p.name not in values.get(cmd, {}):
                continue
            section = name.split(".", 1)[0] if "." in name else TOP
            lines = by_section.setdefault(section, [])
            if with_help:
                lines += _comment(p.help)
            note = (notes or {}).get(cmd, {}).get(p.name, "")
            lines.append(_key_line(key_of(p), values.get(cmd, {}).get(p.name), note))
            if with_help:
                lines.append("")
    out = [f"# {h}" for h in header] + [""]
    out += by_section.pop(TOP, [])
    for section, lines in by_section.items():
        out += ["", f"[{section}]", *lines]
    return "\n".join(out).rstrip() + "\n"


def defaults_of(command: Any) -> dict[str, Any]:
    return {p.name: (list(p.default) if p.multiple else p.default)
            for p in command.params if section_of(p) and not callable(p.default)}


def resolved(ctx: typer.Context, commands: dict[str, Any]) -> str:
    """The run's own configuration: this command's values as used (file, flags, defaults), plus the other
    commands' sections from the given file; `edgekd <command> --config` on it reruns the run."""
    loaded = ctx.meta.get(_META) or {"path": None, "values": {}}
    values = {cmd: dict(v) for cmd, v in loaded["values"].items()}
    values[ctx.command.name] = {p.name: _plain(ctx.params.get(p.name)) for p in ctx.command.params if section_of(p)}
    notes = {ctx.command.name: {n: "from the command line" for n in values[ctx.command.name]
                                if getattr(ctx.get_parameter_source(n), "name", "") == "COMMANDLINE"}}
    header = [f"Resolved configuration of this run (`edgekd {ctx.command.name}`"
              + (f" --config {loaded['path']}" if loaded["path"] else "") + ", flags applied).",
              f"Rerun it with: edgekd {ctx.command.name} --config {CONFIG_NAME} (paths are relative to where you ran it)."]
    others = {cmd for cmd in commands if cmd != ctx.command.name}
    return render(commands, values, header=header, notes=notes, sparse=others)


def _plain(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def write_resolved(ctx: typer.Context, output: Path) -> Path:
    """OUTPUT/config.toml, written before the run starts (a failed run can be rerun from it)."""
    from edgekd.core import atomic_write_text
    from edgekd.core.files import ensure_output_dir

    commands = getattr(ctx.find_root().command, "commands", {}) or {ctx.command.name: ctx.command}
    dest = ensure_output_dir(output) / CONFIG_NAME
    atomic_write_text(dest, resolved(ctx, {n: c for n, c in commands.items() if file_options(c)}))
    return dest
