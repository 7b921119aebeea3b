"""The int8 TFLite edgekd ships for the built-in example's student vs the same student through peers.

Student: `cnn-s` on real Fashion-MNIST (weights from a run's student.pt, or trained briefly here).
Files compared, all from the same PyTorch weights:
  edgekd        export_tflite (litert-torch, NHWC input) + quantize(mode=int8) — the calls `edgekd compress
                --target android` makes (ai-edge-quantizer, 256 real calibration images, float I/O)
  onnx2tf       torch.onnx -> onnx2tf with its defaults (NHWC conversion); int8 = its integer_quant file
                (float I/O, the analogue of edgekd's), calibrated on the same 256 images (-cind; onnx2tf
                would otherwise download MS-COCO samples)
  litert-torch  litert_torch.convert(model, (x,)) with defaults (NCHW input); int8 = PT2E with
                PT2EQuantizer().set_global(get_symmetric_quantization_config()), calibrated on the same images
fp32 files of each route are listed too. Latency: measured on this host, LiteRT + XNNPACK, 1 thread, one real
test image per invoke, all files interleaved round-robin in one process (ratios; absolute ms are noisy here).

    .venv/bin/python benchmarks/export_peers.py [--weights RUN/student.pt]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks/results/export_peers.json"


def student(bundle, weights: str | None, train_samples: int, seed: int):
    """cnn-s with the given weights, or trained here for one short supervised epoch."""
    import torch

    from edgekd.models import load_model

    if weights:
        return load_model("cnn-s", weights, in_channels=1, num_classes=10).eval(), f"weights {weights}"
    torch.manual_seed(seed)
    m = load_model("cnn-s", None, in_channels=1, num_classes=10)
    sub = bundle.train.subset(train_samples, seed)
    x, y = torch.from_numpy(sub.x), torch.from_numpy(sub.y).long()
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    m.train()
    for i in range(0, len(x), 128):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x[i : i + 128]), y[i : i + 128]).backward()
        opt.step()
    return m.eval(), f"trained here: 1 epoch, {len(x)} real training images, Adam 3e-3 (no distillation)"


def edgekd_files(model, bundle, calib, work: Path) -> dict[str, Path]:
    from edgekd.export import export_tflite
    from edgekd.quantize import quantize

    f32, q8 = work / "edgekd_fp32.tflite", work / "edgekd_int8.tflite"
    export_tflite(model, bundle.test.x[:32], f32)
    quantize(f32, q8, mode="int8", calib=calib)
    return {"edgekd fp32": f32, "edgekd int8": q8}


def onnx2tf_files(model, calib, work: Path) -> dict[str, Path]:
    import onnx2tf
    import torch

    from edgekd.export.onnx2tf_backend import _offline_images

    onnx_path = work / "student.onnx"
    torch.onnx.export(model, (torch.from_numpy(calib[:1]),), str(onnx_path), dynamo=True, input_names=["input"])
    npy = work / "calib.npy"
    np.save(npy, calib.transpose(0, 2, 3, 1).astype(np.float32))  # onnx2tf calibrates in NHWC
    out = work / "onnx2tf"
    with _offline_images(None):  # never download sample images: the calibration data is given
        onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(out), non_verbose=True,
                        output_integer_quantized_tflite=True,
                        custom_input_op_name_np_data_path=[["input", str(npy), np.zeros(1, np.float32), np.ones(1, np.float32)]])
    return {"onnx2tf fp32": out / "student_float32.tflite", "onnx2tf int8": out / "student_integer_quant.tflite"}


def litert_files(model, calib, work: Path) -> dict[str, Path]:
    import litert_torch
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    x = (torch.from_numpy(calib[:1]),)
    f32, q8 = work / "litert_fp32.tflite", work / "litert_int8.tflite"
    litert_torch.convert(model, x).export(str(f32))
    q = PT2EQuantizer().set_global(get_symmetric_quantization_config())
    m = prepare_pt2e(torch.export.export(model, x).module(), q)
    with torch.no_grad():
        for i in range(len(calib)):
            m(torch.from_numpy(calib[i : i + 1]))
    m = convert_pt2e(m, fold_quantize=False)
    litert_torch.convert(m, x, quant_config=QuantConfig(pt2e_quantizer=q)).export(str(q8))
    return {"litert-torch fp32": f32, "litert-torch int8": q8}


def interleaved(paths: dict[str, Path], x: np.ndarray, rounds: int, runs: int) -> dict[str, list[float]]:
    from edgekd.runtime import load_runner

    runners = {k: load_runner(p, threads=1) for k, p in paths.items()}
    prepared = {k: r.prepare(x[:1]) for k, r in runners.items()}
    for k, r in runners.items():
        for _ in range(20):
            r.run_once(prepared[k])
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for k, r in runners.items():  # A B C ... A B C: drifts in machine load hit every file alike
            for _ in range(runs):
                t = time.perf_counter()
                r.run_once(prepared[k])
                times[k].append((time.perf_counter() - t) * 1e3)
    return times


def peer_args(doc: str, out: Path) -> argparse.ArgumentParser:
    """The options every peer benchmark takes: the student (given or trained briefly), rounds, runs, output."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--weights", help="student.pt of an `edgekd compress` run on fashion-mnist (default: train briefly)")
    ap.add_argument("--train-samples", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--eval-samples", type=int, default=2000)
    ap.add_argument("--out", default=str(out))
    return ap


def main(argv=None) -> int:
    ap = peer_args(__doc__, OUT)
    ap.add_argument("--shipped", help="that run's student_int8.tflite: timed as 'edgekd int8' (the rebuilt file is kept as a row)")
    ap.add_argument("--save-student", help="also save the student's state_dict here (to try `edgekd quantize` on it)")
    args = ap.parse_args(argv)

    import torch

    from edgekd.core import atomic_write_text
    from edgekd.data import load_data
    from edgekd.inspect import count_ops, model_info, transpose_count
    from edgekd.runtime import accuracy, load_runner

    torch.set_num_threads(1)
    bundle = load_data("fashion-mnist", seed=0)
    model, origin = student(bundle, args.weights, args.train_samples, 0)
    if args.save_student:
        torch.save(model.state_dict(), args.save_student)
    calib = bundle.calibration(256, seed=0)
    test = bundle.test.subset(args.eval_samples, seed=0)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="edgekd-peers-") as d:
        work = Path(d)
        paths: dict[str, Path] = {}
        for route, fn in (("edgekd", lambda: edgekd_files(model, bundle, calib, work)),
                          ("onnx2tf", lambda: onnx2tf_files(model, calib, work)),
                          ("litert-torch", lambda: litert_files(model, calib, work))):
            t = time.perf_counter()
            print(f"converting: {route}", flush=True)
            try:
                paths.update(fn())
            except Exception as exc:  # a peer that fails is a result too
                rows[f"{route} int8"] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
            print(f"  {route}: {time.perf_counter() - t:.1f} s", flush=True)
        if args.shipped:  # the file a real `edgekd compress` run wrote, next to the one rebuilt here
            paths["edgekd int8 (rebuilt here)"] = paths.pop("edgekd int8")
            paths = {"edgekd int8": Path(args.shipped), **paths}
        torch_acc = accuracy(load_runner(model), test.x, test.y)
        for k, p in paths.items():
            ops = count_ops(p)
            r = load_runner(p, threads=1)
            inp = model_info(p)["inputs"][0]
            rows[k] = {"ok": True, "ops": sum(ops.values()), "transpose_ops": transpose_count(ops), "op_types": ops,
                       "size_bytes": p.stat().st_size, "input_shape": inp["shape"], "input_dtype": inp["dtype"],
                       "accuracy": round(accuracy(r, test.x, test.y), 2)}
        print("timing (interleaved) ...", flush=True)
        times = interleaved(paths, test.x, args.rounds, args.runs)
    where = (f"host {platform.machine()} ({platform.node()}), ai-edge-litert + XNNPACK, 1 thread, "
             f"interleaved {args.rounds} rounds x {args.runs} runs per file, 20 warm-up")
    for k, v in times.items():
        a = np.asarray(v)
        rows[k]["latency"] = {"p50_ms": round(float(np.median(a)), 4), "p90_ms": round(float(np.percentile(a, 90)), 4),
                              "mean_ms": round(float(a.mean()), 4), "runs": len(a), "threads": 1,
                              "kind": "measured", "where": where}
    base = rows.get("edgekd int8", {}).get("latency", {}).get("p50_ms")
    for k, r in rows.items():
        if base and r.get("latency"):
            r["p50_vs_edgekd_int8"] = round(r["latency"]["p50_ms"] / base, 3)
    import importlib.metadata as md

    versions = {p: md.version(p) for p in ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "onnx2tf",
                                           "tensorflow-cpu", "onnxruntime")}
    result = {"student": "cnn-s", "data": "fashion-mnist", "weights": origin, "edgekd_int8_file": args.shipped or "rebuilt here with export_tflite + quantize(mode='int8')", "pytorch_accuracy": round(torch_acc, 2),
              "eval_samples": len(test.x), "calib_samples": len(calib), "files": rows, "versions": versions,
              "note": "ratio = p50 / p50 of edgekd int8 (>1: slower than edgekd's file); accuracy in % on real test images"}
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    for k, r in rows.items():
        if r.get("ok"):
            print(f"{k:20s} p50 {r['latency']['p50_ms']:.4f} ms  x{r.get('p50_vs_edgekd_int8')}  Transpose {r['transpose_ops']}"
                  f"/{r['ops']} ops  {r['size_bytes'] / 1024:.1f} KiB  acc {r['accuracy']}%  in {r['input_shape']} {r['input_dtype']}")
        else:
            print(f"{k:20s} FAILED: {r['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
