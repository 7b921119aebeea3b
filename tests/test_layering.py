"""The import layering of pyproject.toml's [tool.importlinter] holds: no upward imports, no cycles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.is_file(), f"{lint} is missing: install the dev extra (pip install -c constraints.txt -e '.[dev]')"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    # --no-cache: the graph is cheap to build (well under a second), and no cache directory lands in the tree
    proc = subprocess.run([str(lint), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"lint-imports found broken import contracts:\n{proc.stdout}\n{proc.stderr}"
