"""Build the ARM emulation environment once: `python -m edgekd.emulate.setup` (what `make arm-env` runs).

Steps (each skipped when its result is already there, so re-running is cheap):
  1. root/  arm64 Debian bookworm with python3.11: `debootstrap --foreign` downloads the packages,
            `dpkg-deb -x` unpacks them (no chroot, no binfmt needed; qemu -L points at it)
  2. site/  aarch64 wheels of ai-edge-litert, onnxruntime and numpy from PyPI (pip download + --target)
  3. lib/   the instruction-counting TCG plugin, compiled against qemu-plugin.h taken from Debian's
            source package of the installed qemu (apt-get source with private lists; the system's apt
            configuration is not touched)
  4. a smoke test: the emulated Python imports everything (and leaves .pyc files, so later runs start faster)
Needs root only for debootstrap. Debian packages: qemu-user, debootstrap, gcc (plus apt, dpkg, tar, xz-utils).
Takes about 1.5 min on a fresh machine (downloads ~100 MB); about 1 s when everything is cached.
Nothing here runs at profile time: emulate_profile only reads this directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from edgekd.emulate.env import PYTHON_IN_ROOT, ArmEnv, arm_home
from edgekd.errors import EdgeKDError

SUITE = "bookworm"
MIRROR = os.environ.get("EDGEKD_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY = os.environ.get("EDGEKD_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
GUEST_PACKAGES = "python3.11,python3-minimal,libpython3.11-stdlib"
# the host pins: the ARM run must use the same runtime versions as the x86 one it is compared with
WHEELS = ("ai-edge-litert==2.3.0", "onnxruntime==1.32.0")
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")


def log(msg: str) -> None:
    print(f"[arm-env] {msg}", flush=True)


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise EdgeKDError(f"{Path(argv[0]).name} failed (exit {proc.returncode}): {' | '.join(tail)[:400]}")
    return proc


def need_tools() -> None:
    missing = [(tool, pkg) for tool, pkg in (("qemu-aarch64", "qemu-user"), ("debootstrap", "debootstrap"),
               ("dpkg-deb", "dpkg"), ("gcc", "gcc"), ("apt-get", "apt")) if not shutil.which(tool)]
    if missing:
        pkgs = " ".join(p for _, p in missing)
        raise EdgeKDError(f"missing {', '.join(t for t, _ in missing)}: apt-get install -y {pkgs}")


def build_root(home: Path) -> bool:
    root = home / "root"
    if (root / PYTHON_IN_ROOT).is_file() and (root / ".edgekd-ok").is_file():
        log("sysroot: cached")
        return False
    if os.geteuid() != 0:
        raise EdgeKDError("building the arm64 sysroot needs root (debootstrap); run `make arm-env` as root once")
    tmp = home / "root.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"sysroot: debootstrap --arch=arm64 {SUITE} (downloads ~40 MB)")
    run(["debootstrap", "--arch=arm64", "--foreign", "--variant=minbase", f"--include={GUEST_PACKAGES}",
         SUITE, str(tmp), MIRROR], timeout=900)
    debs = sorted((tmp / "var/cache/apt/archives").glob("*.deb"))
    log(f"sysroot: unpacking {len(debs)} packages")
    for deb in debs:
        run(["dpkg-deb", "-x", str(deb), str(tmp)], timeout=300)
        deb.unlink()  # the unpacked tree is what is used; keep the cache small
    if not (tmp / PYTHON_IN_ROOT).is_file():
        raise EdgeKDError(f"sysroot has no {PYTHON_IN_ROOT} after unpacking")
    (tmp / ".edgekd-ok").write_text(SUITE + "\n")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return True


def _numpy_pin() -> str:
    # the guest's numpy is the host's version, so both sides round the same way
    try:
        import numpy

        return f"numpy=={numpy.__version__}"
    except ImportError:
        return "numpy"


def fetch_wheels(home: Path) -> tuple[list[str], bool]:
    site = home / "site"
    wanted = [*WHEELS, _numpy_pin()]
    stamp = site / ".edgekd-ok"
    if stamp.is_file() and stamp.read_text().split() == wanted:
        log("aarch64 wheels: cached")
        return wanted, False
    wheels = home / "wheels"
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    common = ["--only-binary=:all:", *plat, "--python-version", "3.11", "--implementation", "cp"]
    log(f"aarch64 wheels: pip download {' '.join(wanted)}")
    run([sys.executable, "-m", "pip", "download", "-q", *common, "-d", str(wheels), *wanted], timeout=900)
    tmp = home / "site.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels), "--target",
         str(tmp), *common, *wanted], timeout=900)
    (tmp / ".edgekd-ok").write_text("\n".join(wanted) + "\n")
    shutil.rmtree(site, ignore_errors=True)
    tmp.rename(site)
    return wanted, True


def _apt_opts(apt: Path) -> list[str]:
    # private source list, package lists and cache: deb-src entries without editing /etc/apt
    return [
        "-o", f"Dir::Etc::SourceList={apt / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/nonexistent",
        "-o", f"Dir::State::Lists={apt / 'lists'}",
        "-o", f"Dir::Cache={apt / 'cache'}",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=" + ("root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")),
    ]


def plugin_header(home: Path) -> Path:
    """qemu-plugin.h from Debian's source package of the qemu that is installed."""
    inc = home / "include" / "qemu-plugin.h"
    if inc.is_file():
        return inc
    src_version = run(["dpkg-query", "-W", "-f=${source:Version}", "qemu-user"]).stdout.strip()
    if not src_version:
        raise EdgeKDError("qemu-user is not installed as a Debian package: apt-get install -y qemu-user")
    apt = home / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "src"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(
        f"deb-src [signed-by={KEYRING}] {MIRROR} {SUITE} main\n"
        f"deb-src [signed-by={KEYRING}] {MIRROR} {SUITE}-updates main\n"
        f"deb-src [signed-by={KEYRING}] {SECURITY} {SUITE}-security main\n"
    )
    log(f"plugin header: apt-get source qemu={src_version} (~24 MB, hashes checked by apt)")
    run(["apt-get", *_apt_opts(apt), "-qq", "update"], timeout=600)
    run(["apt-get", *_apt_opts(apt), "-qq", "source", "--download-only", f"qemu={src_version}"],
        cwd=apt / "src", timeout=600)
    tarballs = sorted((apt / "src").glob("qemu_*.orig.tar.*"))
    if not tarballs:
        raise EdgeKDError("apt-get source qemu left no .orig tarball")
    out = apt / "src" / "x"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    run(["tar", "-xf", str(tarballs[0]), "-C", str(out), "--wildcards", "*/include/qemu/qemu-plugin.h"], timeout=600)
    found = sorted(out.glob("*/include/qemu/qemu-plugin.h"))
    if not found:
        raise EdgeKDError("qemu-plugin.h not found in the qemu source package")
    inc.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found[0], inc)
    shutil.rmtree(apt / "src", ignore_errors=True)  # 24 MB tarball: only the header is needed
    return inc


def build_plugin(home: Path) -> bool:
    src = Path(__file__).with_name("insncount.c")
    lib = home / "lib" / "libedgekd_insncount.so"
    stamp = lib.with_suffix(".src")
    if lib.is_file() and stamp.is_file() and stamp.read_text() == src.read_text():
        log("plugin: cached")
        return False
    header = plugin_header(home)
    lib.parent.mkdir(parents=True, exist_ok=True)
    tmp = lib.with_name(lib.name + ".partial")
    log("plugin: gcc insncount.c")
    run(["gcc", "-O2", "-shared", "-fPIC", "-Wall", "-I", str(header.parent), "-o", str(tmp), str(src)], timeout=300)
    tmp.rename(lib)
    stamp.write_text(src.read_text())
    return True


def smoke_test(home: Path) -> dict:
    from edgekd.emulate.qemu import _clean_env, qemu_argv, qemu_version

    env = ArmEnv(home, {})
    code = ("import platform, numpy, onnxruntime; from ai_edge_litert.interpreter import Interpreter; "
            "print(platform.machine(), platform.python_version(), numpy.__version__, onnxruntime.__version__)")
    log("smoke test: importing numpy, onnxruntime, ai_edge_litert in the emulated Python")
    marks = home / "smoke-marks.txt"
    proc = run(qemu_argv(env, "cortex-a76", marks, ["-c", code]), env=_clean_env(env), timeout=600)
    machine, pyver, np_ver, ort_ver = proc.stdout.split()[-4:]
    if machine != "aarch64":
        raise EdgeKDError(f"the emulated Python reports machine {machine}, expected aarch64")
    total = [ln for ln in marks.read_text().splitlines() if ln.startswith("total")]
    if not total or int(total[0].split()[1]) <= 0:
        raise EdgeKDError("the instruction-counting plugin recorded nothing")
    marks.unlink()
    return {"qemu": qemu_version(), "guest_python": pyver, "numpy": np_ver, "onnxruntime": ort_ver}


def setup(home: Path | None = None, force: bool = False) -> Path:
    """Build (or reuse) the environment under `home`; returns it. Raises EdgeKDError on failure."""
    home = Path(home) if home else arm_home()
    t0 = time.monotonic()
    need_tools()
    home.mkdir(parents=True, exist_ok=True)
    if force:
        for sub in ("root", "site", "lib", "include", "cpus", "wheels", "env.json"):
            p = home / sub
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    info_file = home / "env.json"
    changed = build_root(home)
    wheels, fetched = fetch_wheels(home)
    changed = build_plugin(home) or fetched or changed
    if not changed and info_file.is_file():
        log(f"ready in {home} (everything cached, {time.monotonic() - t0:.1f} s)")
        return home
    info_file.unlink(missing_ok=True)  # absent until every step has passed
    info = smoke_test(home)
    info.update({"suite": SUITE, "wheels": wheels, "setup_s": round(time.monotonic() - t0, 1)})
    info_file.write_text(json.dumps(info, indent=2) + "\n")
    log(f"ready in {home} ({info['setup_s']} s): {info}")
    return home


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgekd.emulate.setup", description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None, help="cache dir (default $EDGEKD_ARM_HOME or ~/.cache/edgekd/arm)")
    ap.add_argument("--force", action="store_true", help="rebuild everything")
    args = ap.parse_args(argv)
    try:
        setup(args.home, args.force)
    except EdgeKDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
