"""Issue 5 "done when": the built-in example's student profiled for each of the six built-in targets,
through `edgekd compress --target T` exactly as a user runs it. Writes benchmarks/results/profile_targets.json
(summary) and benchmarks/results/profiles/<target>.json (each run's report.json).

    nice -n 5 .venv/bin/python benchmarks/profile_targets.py [--work /tmp/edgekd-profile-targets] [--epochs 1]

1. A base run: `edgekd compress` of the built-in Fashion-MNIST teacher (examples/fashion_mnist/teacher.pt)
   into the default cnn-s student (skipped when --work already holds it).
2. For each target the base run is copied and `edgekd compress --target T` rerun on the copy: distillation
   and exports are reused (unchanged fingerprints); what the target ships is quantized if needed and
   profiled on it. raspberry-pi-5 is the built-in target file with its [connection] pointed at an OpenSSH
   server this script starts on 127.0.0.1 (key auth): edgekd copies its profiler over ssh and runs it
   there, so the "board" is this x86 host and the JSON says so. android has no phone here: a host
   measurement labelled host-fallback, plus the qemu cortex-a76 estimate when `make arm-env` was run.
3. int8 vs fp32 on the host (ONNX Runtime and LiteRT), interleaved A B A B ..., median ratio of p50s.
~3-6 min wall on 2 shared cores (most of it the base distillation).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.profile.local_sshd import start_local_sshd  # noqa: E402
RESULTS = ROOT / "benchmarks" / "results"
EDGEKD = [str(Path(sys.executable).parent / "edgekd")]  # the venv's console script
TARGETS = ["host", "android", "raspberry-pi-5", "qualcomm-htp", "ethos-u55-128", "ethos-u65-256"]
# what the summary keeps of each result (the per-target files keep everything)
KEEP = ("kind", "backend", "where", "runtime", "threads", "runs", "warmup", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
        "init_ms", "peak_rss_mb", "model_rss_mb", "file_size_bytes", "cycles_total", "compute_nodes_on_htp",
        "compute_nodes_on_cpu", "op_types_htp", "op_types_cpu", "context_binary_bytes", "agreement", "npu_ops",
        "cpu_ops", "cpu_op_types", "sram_used_bytes", "off_chip_flash_used_bytes", "core_clock_hz",
        "emulated_instructions", "calibration_source", "fallback_reason", "compiled_files")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pi_via_local_sshd(tmp: Path, port: int) -> Path:
    """The built-in raspberry-pi-5 target file, its [connection] table replaced by the local sshd."""
    text = (ROOT / "targets" / "raspberry-pi-5.toml").read_text()
    conn = (f'[connection]\nkind = "ssh"\nhost = "127.0.0.1"\nuser = "{getpass.getuser()}"\nport = {port}\n'
            f'key = "{tmp / "user"}"\nknown_hosts = "{tmp / "known_hosts"}"\npython = "{sys.executable}"\n'
            f'remote_dir = "{tmp / "board"}"\n\n')
    start, end = text.index("[connection]"), text.index("[benchmark]")
    p = tmp / "raspberry-pi-5.toml"
    p.write_text(text[:start] + conn + text[end:])
    return p


def compress(args: argparse.Namespace, target: str, out: Path) -> dict:
    cmd = [*EDGEKD, "compress", "--epochs", str(args.epochs), "--eval-samples", str(args.eval_samples),
           "--target", target, "--output", str(out), "--json"]
    env = dict(os.environ, OMP_NUM_THREADS="1")  # torch on one thread (shared machine); profilers set their own
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        raise SystemExit(f"error: edgekd compress --target {target} failed: {tail}")
    return json.loads((out / "report.json").read_text())


def summarize(report: dict) -> dict:
    arts = {a["name"]: a for a in report["artifacts"]}
    shipped = [a for a in report["artifacts"] if (a.get("extra") or {}).get("shipped")]
    out = {"target": report["target"], "shipped": []}
    for a in shipped:
        results = [a["latency"]] + (a["extra"].get("other_latencies") or [])
        out["shipped"].append({
            "artifact": a["name"], "file": a["path"], "size_bytes": a["size_bytes"], "accuracy": a["accuracy"],
            "results": [{k: r.get(k) for k in KEEP if r.get(k) is not None} for r in results if r],
            "budgets": a["extra"].get("budgets", []), "notes": a["extra"].get("profile_notes", []),
        })
    out["fp32_student_on_host"] = {k: (arts.get(f"student {f} fp32") or {}).get("latency", {}).get("p50_ms")
                                   for k, f in (("onnx_p50_ms", "onnx"), ("tflite_p50_ms", "tflite"))}
    return out


def ab_ratio(a: Path, b: Path, rounds: int, runs: int) -> dict:
    """p50 of b over a on the host, 1 thread, measured interleaved a b a b ... (the machine is noisy)."""
    from edgekd.profile import profile

    pa, pb = [], []
    for _ in range(rounds):
        pa.append(profile(a, "host", runs=runs, warmup=10, threads=1).primary["p50_ms"])
        pb.append(profile(b, "host", runs=runs, warmup=10, threads=1).primary["p50_ms"])
    ratios = [y / x for x, y in zip(pa, pb)]
    return {"a": a.name, "b": b.name, "a_p50_ms": pa, "b_p50_ms": pb, "median_ratio_b_over_a": statistics.median(ratios),
            "rounds": rounds, "runs_per_round": runs, "kind": "measured",
            "where": f"host {platform.machine()}, 1 thread, interleaved A/B, fresh process per measurement"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgekd-profile-targets")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--eval-samples", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved int8/fp32 rounds on the host")
    ap.add_argument("--runs", type=int, default=100, help="timed runs per round")
    ap.add_argument("--targets", default=",".join(TARGETS))
    a = ap.parse_args()
    from edgekd.core import atomic_write_text

    t0 = time.time()
    base = a.work / "base"
    log(f"base run: edgekd compress (built-in Fashion-MNIST teacher -> cnn-s, {a.epochs} epoch(s)) into {base}")
    compress(a, "android", base)
    summary = {"what": "the built-in example's student (cnn-s distilled from examples/fashion_mnist/teacher.pt) "
                       "profiled per target through `edgekd compress --target T`",
               "command": f"benchmarks/profile_targets.py --epochs {a.epochs} --eval-samples {a.eval_samples}",
               "host": {"machine": platform.machine(), "processor": platform.processor(), "cores": os.cpu_count(),
                        "loadavg_at_start": os.getloadavg()},
               "teacher": json.loads((ROOT / "examples" / "fashion_mnist" / "teacher.json").read_text()),
               "targets": {}}
    (RESULTS / "profiles").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgekd-bench-ssh-") as tmp:
        tmp = Path(tmp)
        (tmp / "board").mkdir()
        try:
            server = start_local_sshd(tmp)
        except EdgeKDError as exc:
            sys.exit(f"error: {exc}")
        proc, port = server.proc, server.port
        log(f"local sshd on 127.0.0.1:{port} stands in for the Raspberry Pi")
        try:
            for name in a.targets.split(","):
                run_dir = a.work / name
                shutil.rmtree(run_dir, ignore_errors=True)
                shutil.copytree(base, run_dir, ignore=shutil.ignore_patterns("npu", "report.*"))
                target = str(pi_via_local_sshd(tmp, port)) if name == "raspberry-pi-5" else name
                ts = time.time()
                rep = compress(a, target, run_dir)
                s = summarize(rep)
                s["seconds"] = round(time.time() - ts, 1)
                if name == "raspberry-pi-5":
                    s["board"] = (f"OpenSSH sshd on 127.0.0.1:{port} (key auth) started by this script; the 'board' is "
                                  "this x86_64 host, so the figures are real over-ssh measurements but not a Pi's speed")
                summary["targets"][name] = s
                atomic_write_text(RESULTS / "profiles" / f"{name}.json", json.dumps(rep, indent=2, default=str) + "\n")
                for sh in s["shipped"]:
                    for r in sh["results"]:
                        p50 = r.get("p50_ms")
                        log(f"{name:15s} {sh['artifact']:20s} {r['kind']:9s} {r['backend']:15s} p50 "
                            f"{'-' if p50 is None else f'{p50:.4f} ms':>12s}  {r['where'][:100]}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    ab = {}
    for fmt in ("onnx", "tflite"):
        log(f"host int8 vs fp32 ({fmt}), {a.rounds} interleaved rounds x {a.runs} runs")
        ab[fmt] = ab_ratio(base / f"student_fp32.{fmt}", base / f"student_int8.{fmt}", a.rounds, a.runs)
        log(f"  int8/fp32 p50 ratio {ab[fmt]['median_ratio_b_over_a']:.3f}")
    summary["host_int8_over_fp32"] = ab
    summary["seconds"] = round(time.time() - t0, 1)
    atomic_write_text(RESULTS / "profile_targets.json", json.dumps(summary, indent=2, default=str) + "\n")
    log(f"wrote {RESULTS / 'profile_targets.json'} in {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
