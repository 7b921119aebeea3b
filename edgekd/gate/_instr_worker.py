"""Runs inside valgrind: load, warm up, then invoke N times between two os.getppid() markers.

With a vgdb path as 4th argument, callgrind was started with --instr-atstart=no: start-up (imports,
session creation) then runs at plain-valgrind speed, and vgdb switches instrumentation on just
before the markers (measured: ~40 s -> ~5 s CPU per model for a small ONNX file).
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    model, runs, info_file = argv[0], int(argv[1]), argv[2]
    spec = json.loads(open(info_file).read())
    from edgekd.gate.inputs import make_invoke
    from edgekd.runtime import load_runner

    shape = tuple(spec["input_shape"]) if spec.get("input_shape") else None
    invoke = make_invoke(load_runner(model, threads=1), spec["info"], shape)
    for _ in range(3):  # first invokes allocate and pack weights: not steady state
        invoke()
    if len(argv) > 3:
        import subprocess

        # vgdb reaches this process while it waits in this syscall; it returns once callgrind obeyed.
        subprocess.run([argv[3], f"--pid={os.getpid()}", "instrumentation", "on"], check=True, capture_output=True)
    os.getppid()  # marker: callgrind dumps here (--dump-before=getppid)
    for _ in range(runs):
        invoke()
    os.getppid()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
