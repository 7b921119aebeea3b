"""File helpers: write to a temporary name then rename, so no half-written model file is ever left."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from edgekd.errors import EdgeKDError


PACKAGE_SUFFIXES = {".mlpackage"}  # model formats that are directories: an existing one is replaced whole


def check_output_file(path: str | os.PathLike, what: str = "output",
                      reads: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Fail early, in one line, when a file cannot be written at `path`: it is an existing directory, a parent
    is a file, the directory is read-only, or it is one of the files this run `reads` (the rename would replace
    the user's input). Call it before the long work whose result goes there."""
    final = Path(path).expanduser()
    for src in reads:
        if src is not None and _same_file(final, Path(src).expanduser()):
            raise EdgeKDError(f"{what} {final} is the input file {src}: writing it would replace that file; "
                              "give another path")
    if final.is_dir() and final.suffix.lower() not in PACKAGE_SUFFIXES:
        raise EdgeKDError(f"{what} {final} is an existing directory; give a file path")
    parent = final.parent
    while not parent.exists() and parent != parent.parent:  # a parent still to be made: check what it is made in
        parent = parent.parent
    if not parent.is_dir():
        raise EdgeKDError(f"{what} {final} cannot be written: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise EdgeKDError(f"{what} {final} cannot be written: directory {parent} is not writable")
    return final


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on error delete it.

    The temporary keeps the final suffix because converters pick the format from it. A writer may replace
    it with a directory (a Core ML .mlpackage is one): that is renamed into place the same way. Every way
    the output cannot be written (a directory in the way, a read-only or missing parent) is one EdgeKDError.
    """
    final = check_output_file(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".partial{final.suffix}", dir=final.parent)
    except OSError as exc:  # read-only file system, out of space, a parent that is a file
        raise EdgeKDError(f"output {final} cannot be written: {exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_dir():
            if not any(tmp_path.rglob("*")):
                raise EdgeKDError(f"writing {final.name} produced no data")
            _replace_dir(tmp_path, final)
            return
        if not tmp_path.exists() or tmp_path.stat().st_size == 0:
            raise EdgeKDError(f"writing {final.name} produced no data")
        if final.is_dir():  # made while we worked; os.replace would fail with a bare IsADirectoryError
            raise EdgeKDError(f"output {final} is an existing directory; give a file path")
        # mkstemp makes the file 0600; a shipped model should get the usual permissions (umask applied).
        os.chmod(tmp_path, 0o666 & ~_umask())
        try:
            os.replace(tmp_path, final)
        except OSError as exc:
            raise EdgeKDError(f"output {final} cannot be written: {exc.strerror or exc}") from None
    finally:
        remove_path(tmp_path)


def remove_path(path: Path) -> None:
    """Delete a file or a directory tree (a model package) if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _replace_dir(tmp: Path, final: Path) -> None:
    """A directory cannot be renamed over a non-empty one: move the old one aside first, then drop it."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        remove_path(old)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        remove_path(old)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    if Path(path).is_dir():  # a model package: every file's relative path and contents, in sorted order
        for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
            h.update(f.relative_to(path).as_posix().encode() + b"\0" + sha256_file(f, chunk).encode())
        return h.hexdigest()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def path_size(path: str | os.PathLike) -> int:
    """Bytes of a file, or of every file in a model package directory."""
    p = Path(path)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create the output directory and prove it is writable, or fail with one clear line."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise EdgeKDError(f"output directory {out} is an existing file; give a directory path")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".edgekd-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise EdgeKDError(f"output directory {out} is not writable: {exc.strerror or exc}") from None
    return out
