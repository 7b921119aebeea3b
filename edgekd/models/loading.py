"""Load user models safely: an entrypoint the user names, a torch.export .pt2 file, or a built-in name.

User code runs only from the entrypoint the user names; weights load with weights_only=True (no pickle code)
through edgekd.models.checkpoint.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from edgekd.errors import EdgeKDError


def parse_entrypoint(spec: str) -> tuple[str, str]:
    """'pkg.module:factory' or 'path/to/file.py:factory' -> (module or file, attribute)."""
    if spec.startswith("hf:"):
        raise EdgeKDError(f"'{spec}' is a Hugging Face model: it goes through `edgekd hf-compress` (or `edgekd compress "
                          "--teacher hf:PATH`), which distil, export, quantize and profile it; this command takes "
                          "PyTorch models")
    if ":" not in spec:
        raise EdgeKDError(f"'{spec}' is not an entrypoint; expected 'package.module:factory' or 'file.py:factory'")
    mod, _, attr = spec.rpartition(":")
    if not mod or not attr.isidentifier():
        raise EdgeKDError(f"'{spec}' is not an entrypoint; expected 'package.module:factory' or 'file.py:factory'")
    return mod, attr


def _import_module(mod: str):
    if mod.endswith(".py"):
        path = Path(mod).expanduser().resolve()
        if not path.is_file():
            raise EdgeKDError(f"entrypoint file {mod} does not exist")
        name = f"edgekd_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the user's file itself fails (a missing dependency, a syntax error, ...)
            sys.modules.pop(name, None)
            raise EdgeKDError(f"entrypoint file {mod} cannot be imported: {_one_line(exc)}") from None
        return module
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like `python -m`, so a user's local package is found
    try:
        return importlib.import_module(mod)
    except Exception as exc:
        raise EdgeKDError(f"entrypoint module '{mod}' cannot be imported: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:240]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_entrypoint(spec: str):
    mod, attr = parse_entrypoint(spec)
    module = _import_module(mod)
    factory = getattr(module, attr, None)
    if factory is None:
        raise EdgeKDError(f"entrypoint '{spec}': module '{mod}' has no attribute '{attr}'")
    if not callable(factory):
        raise EdgeKDError(f"entrypoint '{spec}' is not callable")
    return factory


def _check_not_a_misspelt_name(spec: str) -> None:
    """A bare word is a built-in name, mistyped: say which names there are, not what an entrypoint looks like."""
    if ":" in spec or spec.startswith("hf:"):
        return
    if spec.endswith(".py"):
        raise EdgeKDError(f"'{spec}' is a Python file: name its factory too, e.g. '{spec}:build'")
    import difflib

    from edgekd.models.factory import list_models

    names = list_models()
    close = difflib.get_close_matches(spec, names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise EdgeKDError(f"'{spec}' is not a built-in model: {hint}built-in: {', '.join(names)} (`edgekd models`), "
                      "or give an entrypoint 'package.module:factory' or 'file.py:factory'")


def load_model(spec: str, weights: str | Path | None = None, *, in_channels: int = 1, num_classes: int = 10):
    """Build a model from `spec` and optionally load `weights`; returns an nn.Module in eval mode.

    spec: a built-in student name (see `edgekd.models.list_models()`), 'pkg.module:factory',
    'file.py:factory', or a torch.export '.pt2' file (weights are inside it).
    """
    import torch

    from edgekd.models.factory import create_model, is_registered

    if spec.endswith(".pt2"):
        from edgekd.core.inputs import one_line, require_file

        path = require_file(spec, "exported program")
        _require_pt2_archive(path)
        try:
            program = torch.export.load(str(path)).module()
        except Exception as exc:
            raise EdgeKDError(f"exported program {path} is not a loadable torch.export program (truncated, or "
                              f"another format: {one_line(exc, 80)})") from None
        from edgekd.models.exported import ExportedModule

        return ExportedModule(program)
    if spec.endswith((".onnx", ".tflite")):
        path = Path(spec).expanduser()
        if weights:
            raise EdgeKDError(f"{path.name} holds its own weights: drop the --*-weights option")
        from edgekd.models.file_teacher import FileTeacher

        return FileTeacher(path).eval()
    if is_registered(spec):
        model = create_model(spec, in_channels=in_channels, num_classes=num_classes)
    else:
        _check_not_a_misspelt_name(spec)
        factory = load_entrypoint(spec)
        try:
            model = factory()
        except Exception as exc:
            raise EdgeKDError(f"entrypoint '{spec}' failed: {_one_line(exc)}") from None
        if not isinstance(model, torch.nn.Module):
            raise EdgeKDError(f"entrypoint '{spec}' returned {type(model).__name__}, not a torch.nn.Module")
    if weights:
        from edgekd.models.checkpoint import load_portable

        model = load_portable(model, weights)  # a plain state_dict, or derive / prune / TA-chain output
    return model.eval()


def _require_pt2_archive(path: Path) -> None:
    """A .pt2 is a zip with an archive_format record. Checked before torch.export.load, which (torch 2.14)
    logs a full traceback as a warning for a broken file before raising."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            ok = any(n.endswith("archive_format") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        ok = False
    if not ok:
        raise EdgeKDError(f"exported program {path} is not a torch.export archive (truncated, or another "
                          "format): write it with torch.export.save")
