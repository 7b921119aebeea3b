"""Profile the built-in example's student on the six built-in targets and write the figures to
benchmarks/results/profiles/<target>.json plus summary.json (issue 5, closing note).

    .venv/bin/python benchmarks/profile_targets.py RUN_DIR [--runs 100] [--rounds 5] [--no-emulate]

RUN_DIR is an `edgekd compress` output holding student_int8.onnx / student_int8.tflite (+ fp32 files).
Each target gets the file it ships. raspberry-pi-5 runs through a real OpenSSH server started on
127.0.0.1 (this x86 host stands in for the board, and `where` says so); android has no phone here, so
its figure is a host measurement labelled as such, plus (with the ARM environment from `make
arm-env`) a qemu instruction-count estimate. Also measures int8 vs fp32 on the host, interleaved
(A B A B ...) over --rounds rounds, and reports the median ratio.
Takes ~2-4 min on 2 shared cores (most of it the QNN simulator, qemu and the A/B rounds).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgekd.profile import profile
from edgekd.targets import load_target, targets_dir

OUT = Path(__file__).parent / "results" / "profiles"
TARGETS = ["host", "android", "raspberry-pi-5", "qualcomm-htp", "ethos-u55-128", "ethos-u65-256"]


def start_local_sshd(tmp: Path):
    """An OpenSSH server on 127.0.0.1 with key auth, standing in for the board."""
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    (tmp / "authorized_keys").write_text((tmp / "user.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sftp = next(p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server") if os.path.exists(p))
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host'}\nAuthorizedKeysFile {tmp / 'authorized_keys'}\n"
        f"PidFile {tmp / 'sshd.pid'}\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n"
        f"PermitRootLogin prohibit-password\nSubsystem sftp {sftp}\nLogLevel ERROR\n")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(tmp / "sshd_config")])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    pub = (tmp / "host.pub").read_text().split()
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    return proc, port


def pi_via_local_sshd(tmp: Path, port: int) -> Path:
    """The built-in raspberry-pi-5 target with its connection pointed at the local sshd."""
    text = (targets_dir() / "raspberry-pi-5.toml").read_text()
    conn = (f'[connection]\nkind = "ssh"\nhost = "127.0.0.1"\nuser = "{getpass.getuser()}"\nport = {port}\n'
            f'key = "{tmp / "user"}"\nknown_hosts = "{tmp / "known_hosts"}"\npython = "{sys.executable}"\n'
            f'remote_dir = "/tmp/edgekd-board"\n')
    start, end = text.index("[connection]"), text.index("[benchmark]")
    p = tmp / "raspberry-pi-5.toml"
    p.write_text(text[:start] + conn + "\n" + text[end:])
    return p


def load_sample(run_dir: Path) -> tuple[np.ndarray | None, str]:
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        inputs = manifest["inputs"]
        spec = (inputs.get("config") or {}).get("data") or inputs["data"]["name"]
        from edgekd.data import load_data

        return load_data(spec, seed=0).test.x[:32], f"{spec} test[:32]"
    except Exception as exc:  # a benchmark, not a product path: fall back to random inputs, said in the output
        return None, f"random (could not load the run's data: {exc})"


def ab_ratio(a: Path, b: Path, rounds: int, runs: int, sample) -> dict:
    """p50 of b over a, measured interleaved a b a b ... on the host, 1 thread."""
    pa, pb = [], []
    for _ in range(rounds):
        pa.append(profile(a, "host", runs=runs, warmup=10, threads=1, sample=sample).primary["p50_ms"])
        pb.append(profile(b, "host", runs=runs, warmup=10, threads=1, sample=sample).primary["p50_ms"])
    ratios = [y / x for x, y in zip(pa, pb)]
    return {"a": a.name, "b": b.name, "a_p50_ms": pa, "b_p50_ms": pb, "median_ratio_b_over_a": statistics.median(ratios),
            "rounds": rounds, "runs_per_round": runs, "kind": "measured",
            "where": f"host {platform.machine()}, 1 thread, interleaved A/B"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-emulate", action="store_true")
    a = ap.parse_args()
    run_dir = a.run_dir
    files = {"onnx": run_dir / "student_int8.onnx", "tflite": run_dir / "student_int8.tflite"}
    for f in files.values():
        if not f.is_file():
            sys.exit(f"error: {f} not found (run `edgekd compress` first)")
    sample, sample_src = load_sample(run_dir)
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    summary = {"run_dir": str(run_dir), "sample": sample_src, "host": platform.processor() or platform.machine(),
               "targets": {}}

    from edgekd.emulate import arm_env_available

    emulate_ok = not a.no_emulate and arm_env_available()
    with tempfile.TemporaryDirectory(prefix="edgekd-bench-") as tmp:
        tmp = Path(tmp)
        proc, port = start_local_sshd(tmp)
        try:
            for name in TARGETS:
                target = pi_via_local_sshd(tmp, port) if name == "raspberry-pi-5" else name
                t = load_target(target)
                model = files[t.ships[0].format]
                emulate = emulate_ok and t.emulation is not None
                ts = time.time()
                rep = profile(model, target, sample=sample, runs=a.runs if t.kind == "cpu" else None, emulate=emulate,
                              output_dir=tmp / "npu" / name)
                d = rep.to_dict()
                d["seconds"] = round(time.time() - ts, 1)
                d["model_file"] = model.name
                for r in d["results"]:  # keep the JSON readable: per-layer rows stay, file paths go
                    r.pop("context_files", None)
                    r.pop("compiled_file", None)
                (OUT / f"{name}.json").write_text(json.dumps(d, indent=2, default=str) + "\n")
                summary["targets"][name] = [
                    {k: r.get(k) for k in ("kind", "backend", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "runs", "threads",
                                           "cycles_total", "emulated_instructions", "npu_ops", "cpu_ops",
                                           "compute_nodes_on_htp", "compute_nodes_on_cpu", "peak_rss_mb", "where")}
                    for r in d["results"]]
                for r in d["results"]:
                    p50 = r.get("p50_ms")
                    print(f"{name:15s} {r['kind']:9s} {r.get('backend', ''):15s} p50 "
                          f"{'-' if p50 is None else f'{p50:.4f} ms':>12s}  {r['where'][:110]}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    ab = {}
    for fmt in ("onnx", "tflite"):
        fp32 = run_dir / f"student_fp32.{fmt}"
        if fp32.is_file():
            ab[fmt] = ab_ratio(fp32, files[fmt], a.rounds, a.runs, sample)
            print(f"host {fmt}: int8/fp32 p50 ratio {ab[fmt]['median_ratio_b_over_a']:.3f} "
                  f"(median of {a.rounds} interleaved rounds x {a.runs} runs)", flush=True)
    summary["host_int8_vs_fp32"] = ab
    summary["seconds"] = round(time.time() - t0, 1)
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"wrote {OUT} in {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
