"""Issue 21 part 4: one `--student auto --latency-budget` search, as a user runs it, with its table.

Runs `edgekd compress --data digits --student auto --latency-budget BUDGET --target android --recipe hinton
--epochs 2` (the built-in example teacher, real scikit-learn digits) and writes every candidate tried (MACs,
latency on the figure of record and its kind, probe accuracy), what was chosen, and the shipped file's accuracy to
benchmarks/results/latency_budget_search.json. With no phone attached, android's figure of record is the
emulated aarch64 estimate (`make arm-env`), never this x86 host. Rerunning with the same --output reuses the run.
Usage: .venv/bin/python benchmarks/latency_budget_search.py [--budget 0.015ms] [--output runs/latency_budget]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "latency_budget_search.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", default="0.015ms")
    ap.add_argument("--target", default="android")
    ap.add_argument("--output", default="runs/latency_budget")
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "edgekd.cli", "compress", "--data", "digits", "--student", "auto",
           "--latency-budget", args.budget, "--target", args.target, "--recipe", "hinton", "--epochs", "2",
           "--output", args.output, "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    report = json.loads(proc.stdout)
    search = report["student"]["search"]
    shipped = [a for a in report["artifacts"] if a["extra"].get("shipped")]
    manifest = json.loads((Path(args.output) / "manifest.json").read_text())
    out = {
        "benchmark": "latency_budget_search", "command": " ".join(["edgekd", *cmd[3:]]),
        "host": {"machine": platform.machine(), "processor": platform.processor()},
        "search_seconds": manifest["stages"]["student-search"].get("seconds"),
        "run_seconds_this_call": round(time.perf_counter() - t0, 1),
        "search": search,
        "shipped": [{"name": a["name"], "accuracy": a["accuracy"], "size_bytes": a["size_bytes"],
                     "latency": {k: a["latency"].get(k) for k in ("p50_ms", "kind", "where")},
                     "other_latencies": [{k: o.get(k) for k in ("p50_ms", "kind", "where", "emulated_instructions")}
                                         for o in a["extra"].get("other_latencies", [])]} for a in shipped],
        "teacher_test_acc": next(a["accuracy"] for a in report["artifacts"] if a["name"] == "teacher"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["search"], indent=2))


if __name__ == "__main__":
    main()
