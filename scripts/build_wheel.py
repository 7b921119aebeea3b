"""Build edgekd's wheel from a clean copy of the source tree.

    python scripts/build_wheel.py --out dist                  # isolated build, as `pip install edgekd` would
    python scripts/build_wheel.py --out dist --no-isolation   # use this interpreter's setuptools (offline)

setuptools builds in place (build/lib, *.egg-info) and a stale build/lib would leak deleted files into the
wheel, so the tree is copied (symlinks kept: edgekd/_targets and edgekd/_example point into it) first.
Prints the wheel's path.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# what a checkout may hold besides the source: environments, build outputs, runs, caches
SKIP = (".git", ".venv*", "build", "dist", "*.egg-info", "runs", "__pycache__", ".pytest_cache", "tmp")


def build_wheel(out: Path, *, isolation: bool = True) -> Path:
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgekd-wheel-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(*SKIP))
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(Path(tmp) / "wheel"), str(src)]
        if not isolation:
            cmd.insert(4, "--no-build-isolation")
        subprocess.run(cmd, check=True)
        (built,) = (Path(tmp) / "wheel").glob("edgekd-*.whl")
        wheel = out / built.name
        shutil.move(built, wheel)  # replaces an older build of the same version
    return wheel


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    ap.add_argument("--no-isolation", action="store_true", help="build with this interpreter's setuptools")
    args = ap.parse_args(argv)
    print(build_wheel(args.out, isolation=not args.no_isolation))


if __name__ == "__main__":
    main()
