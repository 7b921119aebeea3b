"""Instructions per inference on this CPU under valgrind/callgrind: a count, so load on the machine cannot move it.

The worker runs warm-up invokes, then calls os.getppid() right before and after the timed loop;
callgrind's --dump-before=getppid cuts the profile there, so the middle part holds exactly the
loop (imports, session creation and exit are excluded). Start-up runs uninstrumented when vgdb is
there (see _instr_worker); the counted loop still runs ~50x slower than native.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgekd.errors import UsageError

WORKER = "edgekd.gate._instr_worker"


def _totals(dump: Path) -> int:
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split(":", 1)[1].split()[0])
    raise UsageError(f"callgrind output {dump.name} has no totals line")


def count_instructions(model: str | Path, *, runs: int = 20, input_shape: tuple[int, ...] | None = None,
                       timeout_s: float = 1200.0) -> dict[str, Any]:
    """{"per_inference", "runs", "how"}: guest instructions of `runs` invokes / runs, single thread."""
    from edgekd.inspect import model_info

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise UsageError("--instructions needs valgrind on PATH (Debian/Ubuntu: apt-get install valgrind)")
    if runs < 1:
        raise UsageError(f"instruction-count runs must be >= 1, got {runs}")
    model = Path(model).resolve()
    info = model_info(model)
    with tempfile.TemporaryDirectory(prefix="edgekd-cg-") as tmp:
        tmpd = Path(tmp)
        (tmpd / "info.json").write_text(json.dumps({"info": info, "input_shape": input_shape}))
        out = tmpd / "cg.out"
        vgdb = shutil.which("vgdb")  # ships with valgrind; lets start-up run uninstrumented
        cmd = [valgrind, "--tool=callgrind", "--dump-before=getppid", f"--callgrind-out-file={out}"]
        cmd += ["--instr-atstart=no"] if vgdb else []
        cmd += [sys.executable, "-m", WORKER, str(model), str(runs), str(tmpd / "info.json")] + ([vgdb] if vgdb else [])
        # One thread everywhere and a fixed hash seed: the count then repeats run to run.
        env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise UsageError(f"callgrind on {model.name} took over {timeout_s:.0f} s; lower --instructions-runs") from None
        loop = out.with_name("cg.out.2")  # part 1: start-up, part 2: the loop, final file: shutdown
        if proc.returncode != 0 or not loop.is_file():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise UsageError(f"callgrind run of {model.name} failed (rc {proc.returncode}): {tail}")
        total = _totals(loop)
    return {"per_inference": total / runs, "total": total, "runs": runs, "threads": 1,
            "how": f"valgrind/callgrind Ir of {runs} invokes after warm-up, {Path(valgrind).name} on this CPU, 1 thread",
            "kind": "deterministic"}
