"""Where the ARM emulation environment lives and whether it is ready.

Layout of the cache (default ~/.cache/edgekd/arm, or $EDGEKD_ARM_HOME), written by
`python -m edgekd.emulate.setup` (`make arm-env`):
  root/            arm64 Debian bookworm with python3.11 (debootstrap + dpkg-deb, no chroot)
  site/            aarch64 wheels of numpy, ai-edge-litert, onnxruntime (pip --target)
  lib/libedgekd_insncount.so   the QEMU TCG plugin built from insncount.c
  cpus/<cpu>-<n>/  per-CPU views of root/ with an ARM /proc/cpuinfo (qemu -L redirects the read there)
  env.json         what was installed (versions), written last: its presence means "ready"
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgekd.emulate.cpus import cpuinfo_text
from edgekd.errors import EdgeKDError

ENABLE_HINT = "run `make arm-env` (or `python -m edgekd.emulate.setup`) once to build it"
PYTHON_IN_ROOT = "usr/bin/python3.11"
VIEW_ENTRIES = ("usr", "etc", "lib", "bin", "sbin", "lib64")


def arm_home() -> Path:
    env = os.environ.get("EDGEKD_ARM_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgekd" / "arm"


@dataclass(frozen=True)
class ArmEnv:
    home: Path
    info: dict  # env.json: versions of qemu, python, wheels

    @property
    def root(self) -> Path:
        return self.home / "root"

    @property
    def site(self) -> Path:
        return self.home / "site"

    @property
    def plugin(self) -> Path:
        return self.home / "lib" / "libedgekd_insncount.so"

    @property
    def python(self) -> Path:
        return self.root / PYTHON_IN_ROOT

    def cpu_root(self, cpu: str) -> Path:
        """A view of root/ whose /proc/cpuinfo describes `cpu` (LiteRT's cpuinfo crashes on x86's)."""
        ncpu = os.cpu_count() or 1
        view = self.home / "cpus" / f"{cpu}-{ncpu}.v2"
        text = cpuinfo_text(cpu, ncpu)
        marker = view / "proc" / "cpuinfo"
        if marker.is_file() and marker.read_text() == text:
            return view
        # build beside and rename, so concurrent runs never see a half-made view
        tmp = view.with_name(f".{view.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "proc").mkdir(parents=True)
        # only what the loader and Python need: a view entry such as /tmp or /root that links back
        # into the host tree makes path canonicalisation (ONNX Runtime's external data) loop forever
        for name in VIEW_ENTRIES:
            entry = self.root / name
            if entry.is_symlink():
                (tmp / name).symlink_to(entry.readlink())  # merged-/usr links are relative: keep them so
            elif entry.exists():
                (tmp / name).symlink_to(entry.resolve())
        (tmp / "proc" / "cpuinfo").write_text(text)
        shutil.rmtree(view, ignore_errors=True)
        try:
            tmp.rename(view)
        except OSError:  # another process won the race with an identical view
            shutil.rmtree(tmp, ignore_errors=True)
        return view


def qemu_binary() -> str:
    exe = shutil.which("qemu-aarch64")
    if not exe:
        raise EdgeKDError("qemu-aarch64 not found (Debian package qemu-user); " + ENABLE_HINT)
    return exe


def find_arm_env(home: Path | None = None) -> ArmEnv:
    """The ready environment, or an EdgeKDError saying how to build it."""
    home = Path(home) if home else arm_home()
    info_file = home / "env.json"
    if not info_file.is_file():
        raise EdgeKDError(f"ARM emulation environment not found in {home}; {ENABLE_HINT}")
    try:
        info = json.loads(info_file.read_text())
    except (OSError, ValueError) as exc:
        raise EdgeKDError(f"ARM emulation environment {home} is damaged ({exc}); {ENABLE_HINT}") from None
    env = ArmEnv(home, info)
    for need in (env.python, env.site, env.plugin):
        if not need.exists():
            raise EdgeKDError(f"ARM emulation environment {home} lacks {need.name}; {ENABLE_HINT}")
    qemu_binary()
    return env


def arm_env_available(home: Path | None = None) -> bool:
    try:
        find_arm_env(home)
        return True
    except EdgeKDError:
        return False
