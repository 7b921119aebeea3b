"""The ExecuTorch .pte edgekd ships (android-executorch) vs the same student through ExecuTorch's own export script.

Student: `cnn-s` on real Fashion-MNIST (weights from a run's student.pt, or trained briefly here; the same
helper as benchmarks/export_peers.py). Files, all from the same PyTorch weights:
  edgekd      export_pte: torch.export -> to_edge_transform_and_lower(XnnpackPartitioner); int8 = PT2E with
              XNNPACKQuantizer (per-channel symmetric), calibrated on 256 real training images
  executorch  the defaults of ExecuTorch's examples/xnnpack/aot_compiler.py (shipped in the wheel): its
              quantize() (STATIC_PER_TENSOR, calibrated on the one example input, here one real test image),
              get_transform_passes(), _skip_dim_order=True, extract_delegate_segments=False
Figures: size, ops delegated to XNNPACK vs portable kernels (read from each .pte), accuracy on real test images
in ExecuTorch's runtime, and host latency: measured on this host, ExecuTorch + XNNPACK, 1 thread, all files
interleaved round-robin in one process (ratios; absolute ms are noisy here, and this is not a phone).

    .venv/bin/python benchmarks/pte_peers.py [--weights RUN/student.pt]
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks/results/pte_peers.json"


def edgekd_files(model, bundle, calib, work: Path) -> dict[str, Path]:
    from edgekd.export import export_pte

    f32, q8 = work / "edgekd_fp32.pte", work / "edgekd_int8.pte"
    export_pte(model, bundle.test.x[:32], f32)
    export_pte(model, bundle.test.x[:32], q8, precision="int8", calib=calib)
    return {"edgekd fp32": f32, "edgekd int8": q8}


def executorch_files(model, example: np.ndarray, work: Path) -> dict[str, Path]:
    """What `python -m examples.xnnpack.aot_compiler [-q]` does, with our student in place of its model zoo."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.utils.configs import get_transform_passes
    from executorch.examples.xnnpack.quantization.utils import quantize
    from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge_transform_and_lower

    inputs = (torch.from_numpy(example[:1]),)
    out = {}
    for quant in (False, True):
        ep = torch.export.export(model, inputs, strict=False)
        if quant:
            ep = torch.export.export(quantize(ep.module(), inputs), inputs, strict=False)
        edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()], transform_passes=get_transform_passes(),
                                           compile_config=EdgeCompileConfig(_check_ir_validity=not quant, _skip_dim_order=True))
        prog = edge.to_executorch(config=ExecutorchBackendConfig(extract_delegate_segments=False))
        path = work / f"executorch_{'q8' if quant else 'fp32'}.pte"
        path.write_bytes(prog.buffer)
        out[f"executorch-defaults {'int8' if quant else 'fp32'}"] = path
    return out


def main(argv=None) -> int:
    from export_peers import peer_args

    args = peer_args(__doc__, OUT).parse_args(argv)

    import torch

    from export_peers import interleaved, student

    from edgekd.core import atomic_write_text
    from edgekd.data import load_data
    from edgekd.inspect import model_info
    from edgekd.runtime import accuracy, load_runner

    torch.set_num_threads(1)
    bundle = load_data("fashion-mnist", seed=0)
    model, origin = student(bundle, args.weights, args.train_samples, 0)
    calib = bundle.calibration(256, seed=0)
    test = bundle.test.subset(args.eval_samples, seed=0)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="edgekd-pte-peers-") as d:
        work = Path(d)
        paths: dict[str, Path] = {}
        for route, fn in (("edgekd", lambda: edgekd_files(model, bundle, calib, work)),
                          ("executorch-defaults", lambda: executorch_files(model, bundle.test.x[:1], work))):
            t = time.perf_counter()
            print(f"converting: {route}", flush=True)
            paths.update(fn())
            print(f"  {route}: {time.perf_counter() - t:.1f} s", flush=True)
        torch_acc = accuracy(load_runner(model), test.x, test.y)
        for k, p in paths.items():
            info = model_info(p)
            d8 = info["delegation"]
            rows[k] = {"size_bytes": info["size_bytes"], "ops": info["ops"], "delegated_ops": d8["delegated_ops"],
                       "portable_ops": d8["portable_ops"], "fallback_ops": d8["fallback_ops"], "delegation_share": d8["share"],
                       "accuracy": round(accuracy(load_runner(p, threads=1), test.x, test.y), 2)}
        print("timing (interleaved) ...", flush=True)
        times = interleaved(paths, test.x, args.rounds, args.runs)
    where = (f"host {platform.machine()} ({platform.node()}), ExecuTorch Python runtime + XNNPACK, 1 thread, "
             f"interleaved {args.rounds} rounds x {args.runs} runs per file, 20 warm-up; NOT a phone")
    for k, v in times.items():
        a = np.asarray(v)
        rows[k]["latency"] = {"p50_ms": round(float(np.median(a)), 4), "p90_ms": round(float(np.percentile(a, 90)), 4),
                              "runs": len(a), "threads": 1, "kind": "measured", "where": where}
    base = rows["edgekd int8"]["latency"]["p50_ms"]
    for r in rows.values():
        r["p50_vs_edgekd_int8"] = round(r["latency"]["p50_ms"] / base, 3)
    import importlib.metadata as md

    result = {"student": "cnn-s", "data": "fashion-mnist", "weights": origin, "pytorch_accuracy": round(torch_acc, 2),
              "eval_samples": len(test.x), "calib_samples": len(calib), "files": rows,
              "versions": {p: md.version(p) for p in ("torch", "executorch", "torchao")},
              "note": "ratio = p50 / p50 of edgekd int8 (>1: slower than edgekd's file); accuracy in % on real test "
                      "images, run in ExecuTorch's runtime"}
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    for k, r in rows.items():
        print(f"{k:26s} p50 {r['latency']['p50_ms']:.4f} ms  x{r['p50_vs_edgekd_int8']}  {r['size_bytes'] / 1024:.1f} KiB  "
              f"XNNPACK {r['delegated_ops']} / portable {r['portable_ops']}  acc {r['accuracy']}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
