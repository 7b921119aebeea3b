"""Issue 22 parts 1-2 in one run per model: edgekd's files and the peers' files side by side.

Per EfficientNet-Lite model (real ImageNet weights, benchmarks/real_weights.py's loader, native resolution), the
same photos, views and seed for every file:
  edgekd: ONNX fp32, TFLite fp32, ONNX int8 (QDQ) / dynamic, TFLite int8 float I/O / int8 I/O / fp16 / dynamic,
          all through edgekd's own export_onnx / export_tflite / quantize with their defaults;
  peers, each with its documented defaults and the same calibration views:
          onnx2tf integer_quant (float I/O) and full_integer_quant (int8 I/O), with its float32 file;
          litert-torch PT2E int8 (PT2EQuantizer, symmetric config), with its float file;
          ai-edge-quantizer static_wi8_ai8 on litert-torch's float file (its own calibrate(), int8 I/O);
          ONNX Runtime quantize_static defaults on edgekd's ONNX fp32 file (no TFLite file: no A76 figure).
Measured on every file: agreement with fp32 PyTorch on the held-out views, size, ops; host latency at 1 and 2
threads, interleaved in one pass (load average noted: a shared 2-core VM); emulated Cortex-A76 instructions per
inference (the android target's figure of record) for every TFLite file.

The run is split in phases so that a crash loses one step, and reruns resume (each phase caches its results
in WORK/MODEL/*.json and skips what is there):
    python benchmarks/real_weights_side_by_side.py make    --model lite1   # the files (slow: converters)
    python benchmarks/real_weights_side_by_side.py measure --model lite1   # agreement + host latency
    python benchmarks/real_weights_side_by_side.py fresh   --model lite1   # agreement on never-seen photos
    python benchmarks/real_weights_side_by_side.py budget  --model lite0   # --max-drop 1 and --qat on (slow)
    python benchmarks/real_weights_side_by_side.py a76     --model lite1   # emulated A76 instructions
    python benchmarks/real_weights_side_by_side.py merge                   # -> real_weights.json side_by_side
    python benchmarks/real_weights_side_by_side.py table                   # README's markdown table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_weights as rw  # noqa: E402

PEERS = {  # summary name -> file label
    "onnx2tf integer_quant": "onnx2tf tflite int8 (integer_quant)",
    "onnx2tf full_integer_quant": "onnx2tf tflite int8 (full_integer_quant)",
    "litert-torch PT2E int8": "litert-torch tflite int8 (PT2E)",
    "ai-edge-quantizer static_wi8_ai8 (litert-torch float file)": "ai-edge-quantizer static_wi8_ai8 on litert-torch fp32",
    "onnxruntime quantize_static defaults": "onnxruntime quantize_static defaults",
}
SHIPPED = "edgekd tflite int8"  # the file edgekd ships for android (precision rule: int8 on ARM)


def _load(p: Path) -> dict:
    return json.loads(p.read_text()) if p.is_file() else {}


def _save(p: Path, doc: dict) -> None:
    from edgekd.core import atomic_write_text

    atomic_write_text(p, json.dumps(doc, indent=1, default=str) + "\n")


def _views(key: str, args, d: Path, model=None):
    """Calibration views, held-out views and fp32 logits, cached in d/views.npz (real_weights' photos, split and
    seed, so the same views as its other rows)."""
    cache = d / "views.npz"
    if cache.is_file():
        z = np.load(cache)
        return z["calib"], z["held"], z["ref"]
    import torch

    torch.set_num_threads(args.threads)
    model = model if model is not None else rw.lite_model(key)[0]
    _, cal_parts, held = rw.split_views(rw.MODELS[key][3], args.calib_views, args.held_views)
    calib = np.concatenate(cal_parts)
    ref = rw.torch_logits(model, held)
    np.savez(cache, calib=calib, held=held, ref=ref)
    return calib, held, ref


# ---- make -----------------------------------------------------------------------------------------

def make(key: str, args, log) -> None:
    d = Path(args.work) / key
    d.mkdir(parents=True, exist_ok=True)
    man_p = d / "make.json"
    man = _load(man_p) or {"paths": {}, "reports": {}, "errors": {}, "seconds": {}}
    import torch

    torch.set_num_threads(args.threads)
    model, man["model"] = rw.lite_model(key)
    calib, held, _ = _views(key, args, d, model)
    man["views"] = {"calibration": int(len(calib)), "held_out": int(len(held)),
                    "calib_views_per_photo": args.calib_views, "held_views_per_photo": args.held_views}

    def step(name, fn):
        if name in man["seconds"] and name not in man["errors"]:
            log(f"  {name}: cached")
            return
        man["errors"].pop(name, None)
        t = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # a converter failing is a result too
            man["errors"][name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        man["seconds"][name] = round(time.perf_counter() - t, 1)
        log(f"  {name}: {man['seconds'][name]} s{' ERROR ' + man['errors'][name] if name in man['errors'] else ''}")
        _save(man_p, man)

    def edgekd():
        paths, reports = rw.edgekd_files(model, calib, held, d, log)
        man["paths"].update({k: str(v) for k, v in paths.items()})
        man["reports"].update(reports)

    step("edgekd", edgekd)
    step("onnx2tf", lambda: man["paths"].update(onnx2tf_peer(model, calib, held, d, log)))
    step("litert-torch PT2E", lambda: man["paths"].update(litert_peer(model, calib, d)))
    if "litert-torch tflite fp32" in man["paths"]:
        step("ai-edge-quantizer static_wi8_ai8", lambda: man["paths"].update(aeq_peer(Path(man["paths"][
            "litert-torch tflite fp32"]), calib, d)))
    step("onnxruntime quantize_static", lambda: man["paths"].update(
        {PEERS["onnxruntime quantize_static defaults"]: str(rw.ort_defaults(Path(man["paths"]["edgekd onnx fp32"]),
                                                                             calib, d))}))
    man["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    _save(man_p, man)


def onnx2tf_peer(model, calib, held, d: Path, log) -> dict:
    """onnx2tf's own files (TF's converter), calibrated on the same views through edgekd's onnx2tf backend (which
    hands it the views instead of letting it download MS-COCO images)."""
    import onnx

    from edgekd.export import export_onnx
    from edgekd.export.onnx2tf_backend import convert

    src = d / "onnx2tf_src.onnx"
    export_onnx(model, held[:2], src, dynamic_batch=False)
    name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    nhwc = calib.transpose(0, 2, 3, 1).copy()
    _, files = convert(src, nhwc=True, images_nhwc=nhwc, calib={name: nhwc}, want="integer_quant")
    log(f"  onnx2tf wrote {sorted(files)}")
    out = {}
    for suffix, label in (("float32", "onnx2tf tflite fp32"), ("integer_quant", PEERS["onnx2tf integer_quant"]),
                          ("full_integer_quant", PEERS["onnx2tf full_integer_quant"])):
        if suffix in files:
            p = d / f"onnx2tf_{suffix}.tflite"
            p.write_bytes(files[suffix])
            out[label] = str(p)
    return out


def litert_peer(model, calib, d: Path) -> dict:
    from export_peers import litert_files

    got = litert_files(model, calib, d)
    return {"litert-torch tflite fp32": str(got["litert-torch fp32"]), PEERS["litert-torch PT2E int8"]:
            str(got["litert-torch int8"])}


def aeq_peer(f32: Path, calib, d: Path) -> dict:
    """ai-edge-quantizer as its README shows it: static_wi8_ai8 recipe, one calibrate() over all samples."""
    from ai_edge_quantizer import quantizer, recipe

    from edgekd.quantize.tflite_quant import _calibration_feed  # layout plumbing only (NCHW views -> file's input)

    q = quantizer.Quantizer(str(f32))
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    result = q.calibrate(_calibration_feed(f32, calib))
    out = d / "aeq_static_wi8_ai8.tflite"
    q.quantize(result).export_model(str(out), overwrite=True)
    return {PEERS["ai-edge-quantizer static_wi8_ai8 (litert-torch float file)"]: str(out)}


# ---- measure --------------------------------------------------------------------------------------

def measure(key: str, args, log) -> None:
    d = Path(args.work) / key
    man = _load(d / "make.json")
    if not man:
        raise SystemExit(f"{d}/make.json missing: run `make --model {key}` first")
    calib, held, ref = _views(key, args, d)
    paths = {k: Path(v) for k, v in man["paths"].items() if Path(v).is_file()}
    out_p = d / "measure.json"
    doc = _load(out_p)
    if "rows" not in doc:
        t = time.perf_counter()
        doc["rows"] = rw.agreement_rows(paths, ref, held)
        doc["agreement_seconds"] = round(time.perf_counter() - t, 1)
        _save(out_p, doc)
        log(f"  agreement: {doc['agreement_seconds']} s")
    if "latency" not in doc or args.redo_latency:
        t = time.perf_counter()
        doc["latency"] = host_latency(paths, held, args.rounds, args.runs, log)
        doc["latency"]["rounds"], doc["latency"]["runs"], doc["latency"]["settle"] = args.rounds, args.runs, 3
        doc["latency"]["order"] = "reversed every other round"
        doc["latency_seconds"] = round(time.perf_counter() - t, 1)
        _save(out_p, doc)
        log(f"  latency: {doc['latency_seconds']} s")


def host_latency(paths: dict, x: np.ndarray, rounds: int, runs: int, log, settle: int = 3) -> dict:
    """p50 per (file, threads): every file at 1 and at 2 threads, all timed in the same rounds (A@1 A@2 B@1 B@2 ...,
    then in reverse), so drifts in the shared machine's load hit every file alike; load average before each round.
    `settle` untimed runs precede each file's timed runs in every round: without them a TFLite file timed right
    after an ONNX Runtime session at 2 threads (whose worker threads spin after a run) measured 2.4x slower than
    the same graph elsewhere in the round (edgekd's and onnx2tf's fp32 TFLite files, identical A76 counts, Lite0:
    34.6 vs 14.5 ms; with settle 11.6 vs 10.3). The order reverses every other round: in a fixed order the file
    right after ONNX Runtime's dynamic-range file still measured 1.8x slower at 1 thread (edgekd's Lite0 int8 8.5 ms
    vs onnx2tf's 4.6 ms); timed A B C / C B A the same two files gave 8.47 / 8.50 ms."""
    from edgekd.runtime import load_runner

    keys = [(k, t) for k in paths for t in (1, 2)]
    runners = {kt: load_runner(paths[kt[0]], threads=kt[1]) for kt in keys}
    prepared = {kt: r.prepare(x[:1]) for kt, r in runners.items()}
    for kt, r in runners.items():
        for _ in range(5):
            r.run_once(prepared[kt])
    times: dict = {kt: [] for kt in keys}
    loads = []
    for i in range(rounds):
        loads.append([round(v, 2) for v in os.getloadavg()])
        for kt in (keys if i % 2 == 0 else keys[::-1]):  # A B C, C B A, ...: every file's position cancels out
            r = runners[kt]
            for _ in range(settle):  # untimed: outlast the previous runner (ORT's worker threads spin after a run)
                r.run_once(prepared[kt])
            for _ in range(runs):
                t = time.perf_counter()
                r.run_once(prepared[kt])
                times[kt].append((time.perf_counter() - t) * 1e3)
        log(f"  latency round {i + 1}/{rounds}, load {loads[-1]}")
    where = (f"host {platform.machine()} ({os.cpu_count()} cores, shared with other jobs), ai-edge-litert + XNNPACK / "
             f"ORT CPU, interleaved {rounds} rounds x {runs} runs per file and thread count, 5 warm-up, {settle} untimed "
             "before each file's runs in every round, order reversed every other round")
    out: dict = {k: {} for k in paths}
    for (k, t), v in times.items():
        out[k][f"threads_{t}"] = {"p50_ms": round(float(np.median(v)), 3), "p90_ms": round(float(np.percentile(v, 90)), 3),
                                  "runs": len(v), "threads": t, "kind": "measured", "where": where}
    return {"files": out, "load_average_per_round": loads}


# ---- fresh ----------------------------------------------------------------------------------------

FRESH_DIRS = ("/usr/share/backgrounds/mate/nature",)  # Debian mate-backgrounds: photos no file or choice has seen
FRESH_EXTRA = ("/usr/share/backgrounds/mate/abstract/Elephants.jpg",)  # a photo, filed under abstract


def fresh_photos() -> list[tuple[str, np.ndarray]]:
    """(name, HxWx3 uint8) for Debian's mate-backgrounds nature photos (apt-get install mate-backgrounds)."""
    from PIL import Image

    files = sorted(f for d in FRESH_DIRS if Path(d).is_dir() for f in Path(d).glob("*.jpg"))
    files += [Path(f) for f in FRESH_EXTRA if Path(f).is_file()]
    out = []
    for f in files:
        with Image.open(f) as im:
            im.draft("RGB", (1024, 1024))  # JPEG decode at reduced size: the crops are resized to 224-260 px anyway
            out.append((f"mate-backgrounds/{f.name}", np.asarray(im.convert("RGB"))))
    return out


def fresh(key: str, args, log) -> None:
    """Every file's agreement with fp32 on views of photos outside the calibration and held-out sets (calibration,
    the float head rule and the defaults were all looked at on the held-out views; these were never looked at),
    and where the disagreements are: the fp32 top-1 / top-2 probability margin of each view a file gets wrong."""
    from edgekd.quantize.evaluation import _softmax

    d = Path(args.work) / key
    man = _load(d / "make.json")
    if not man:
        raise SystemExit(f"{d}/make.json missing: run `make --model {key}` first")
    imgs = fresh_photos()
    if not imgs:
        raise SystemExit(f"no photos under {', '.join(FRESH_DIRS)}: apt-get install mate-backgrounds")
    cache = d / "fresh_views.npz"
    if cache.is_file():
        z = np.load(cache)
        x, ref = z["x"], z["ref"]
    else:
        import torch

        torch.set_num_threads(args.threads)
        rng = np.random.default_rng(0)
        x = np.concatenate([rw.preprocess(rw.views(a, args.held_views, rw.MODELS[key][3], rng)) for _, a in imgs])
        ref = rw.torch_logits(rw.lite_model(key)[0], x)
        np.savez(cache, x=x, ref=ref)
    paths = {k: Path(v) for k, v in man["paths"].items() if Path(v).is_file()}
    rows = rw.agreement_rows(paths, ref, x)
    p = np.sort(_softmax(ref.astype(np.float64)), 1)
    margin = p[:, -1] - p[:, -2]
    from edgekd.runtime import load_runner

    for k, path in paths.items():
        wrong = load_runner(path, threads=1).predict(x).argmax(1) != ref.argmax(1)
        rows[k]["fp32_margin_of_disagreements"] = [round(float(m), 4) for m in np.sort(margin[wrong])]
    doc = {"photos": [n for n, _ in imgs], "views_per_photo": args.held_views, "views": int(len(x)), "seed": 0,
           "fp32_margin_quantiles": {q: round(float(np.quantile(margin, float(q))), 4) for q in ("0.1", "0.25", "0.5")},
           "rows": rows}
    _save(d / "fresh.json", doc)
    log(f"  fresh photos: {len(imgs)} photos, {len(x)} views; {SHIPPED} {rows.get(SHIPPED, {}).get('top1')} %")


# ---- budget ---------------------------------------------------------------------------------------

QAT_LRS = (5e-4, 2e-5)  # edgekd's default (fitted on small models trained here) and a pretrained-model fine-tune LR


def budget(key: str, args, log) -> None:
    """What edgekd's own repairs buy towards the 99 % target: `quantize --max-drop 1` (the float-fallback search:
    the 1, 2, 4, ... most sensitive layers kept float) and `--qat on` (fake-quant fine-tuning distilled from the fp32
    model on more views of the calibration photos, frozen batch norm), each scored on the held-out views (the
    budget's split) and on the fresh photos (never used for any choice)."""
    from edgekd.quantize import quantize
    from edgekd.quantize.qat import quantize_qat

    d = Path(args.work) / key
    calib, held, _ = _views(key, args, d)
    out_p = d / "budget.json"
    doc = _load(out_p)
    fr = np.load(d / "fresh_views.npz") if (d / "fresh_views.npz").is_file() else None

    def fresh_top1(path: Path):
        from edgekd.runtime import load_runner

        if fr is None:
            return None
        got = load_runner(path, threads=1).predict(fr["x"])
        return round(float((got.argmax(1) == fr["ref"].argmax(1)).mean() * 100), 3)

    def keep(rep, path: Path) -> dict:
        r = rep.__dict__
        return {"search": r.get("search"), "kept_float": len(r.get("kept_float") or []), "qat": r.get("qat"),
                "held_out_agreement": r.get("agreement"), "fresh_photos_top1": fresh_top1(path),
                "latency": r.get("latency"), "seconds": r.get("seconds"), "warnings": r.get("warnings")}

    if "max_drop_1" not in doc:
        out = d / "edgekd_tflite_int8_max_drop_1.tflite"
        rep = quantize(d / "edgekd_fp32.tflite", out, mode="int8", calib=calib, calib_samples=len(calib),
                       eval_data=(held, None), max_drop=1.0, allow_drop=True)
        doc["max_drop_1"] = keep(rep, out)
        _save(out_p, doc)
        log(f"  --max-drop 1: {doc['max_drop_1']['kept_float']} layer(s) float, held-out "
            f"{doc['max_drop_1']['held_out_agreement']['top1']} %")
    import torch

    torch.set_num_threads(args.threads)
    model, info = rw.lite_model(key)
    rng = np.random.default_rng(123)  # more views of the calibration photos only: the held-out photos stay unseen
    cal_imgs = [a for i, (_, a) in enumerate(rw.photos()) if i % 2 == 0]
    train = np.concatenate([rw.preprocess(rw.views(a, 16, info["size"], rng)) for a in cal_imgs])
    for lr in QAT_LRS:
        name = f"qat_on_lr_{lr:g}"
        if name in doc:
            continue
        out = d / f"edgekd_tflite_int8_{name}.tflite"
        rep = quantize_qat(model, out, teacher=model, train_x=train, qat="on", lr=lr, batch_size=16,
                           samples=len(train), bn="frozen", log=log, mode="int8", calib=calib,
                           calib_samples=len(calib), eval_data=(held, None))
        doc[name] = keep(rep, out)
        doc[name]["train_views"] = int(len(train))
        _save(out_p, doc)
        log(f"  {name}: shipped {rep.qat.get('shipped')}, QAT int8 drop {rep.qat.get('qat_drop')}")


# ---- a76 ------------------------------------------------------------------------------------------

def a76(key: str, args, log) -> None:
    from edgekd.emulate.env import arm_env_available
    from edgekd.emulate.profile import instruction_count
    from edgekd.targets import load_target

    if not arm_env_available():
        raise SystemExit("no arm environment: run `make arm-env` (or set EDGEKD_ARM_HOME)")
    d = Path(args.work) / key
    man = _load(d / "make.json")
    out_p = d / "a76.json"
    doc = _load(out_p)
    android = load_target("android")
    for k, v in man.get("paths", {}).items():
        if not v.endswith(".tflite") or k in doc:
            continue
        t = time.perf_counter()
        try:
            c = instruction_count(v, android, runs=1, timeout_s=args.a76_timeout)
            doc[k] = {"instructions": c["emulated_instructions"], "kind": c["kind"], "where": c["where"],
                      "runtime": c["runtime"], "threads": 1}
        except Exception as exc:
            doc[k] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
        doc[k]["wall_s"] = round(time.perf_counter() - t, 1)
        log(f"  A76 {k}: {doc[k]}")
        _save(out_p, doc)


# ---- merge ----------------------------------------------------------------------------------------

def merge(args, log) -> None:
    out = Path(args.out)
    doc = _load(out)
    for key in rw.MODELS:
        d = Path(args.work) / key
        man, mea, arm = _load(d / "make.json"), _load(d / "measure.json"), _load(d / "a76.json")
        fr, bud = _load(d / "fresh.json"), _load(d / "budget.json")
        if not man or "rows" not in mea:
            continue
        rows = mea["rows"]
        for k, r in rows.items():
            r["file_kind"] = "edgekd" if k.startswith("edgekd") else "peer"
            if k in man["reports"]:
                r["edgekd_report"] = man["reports"][k]
            lat = mea.get("latency", {}).get("files", {}).get(k)
            if lat:
                r["host_latency"], r["host_latency_2_threads"] = lat["threads_1"], lat["threads_2"]
            if not man["paths"][k].endswith(".tflite"):
                r["a76"] = {"none": "ONNX file: no TFLite file, so no android figure of record (LiteRT on the A76)"}
            elif k in arm:
                r["a76"] = arm[k]
        sbs = {"what": __doc__.split("\n\n")[0], "model": man.get("model"), "views": man["views"],
               "photos": dict(zip(("calibration", "held_out"), _photo_split())), "files": rows,
               "errors": man["errors"], "make_seconds": man["seconds"],
               "measure_seconds": {k: mea.get(k) for k in ("agreement_seconds", "latency_seconds")},
               "a76_wall_seconds": {k: v.get("wall_s") for k, v in arm.items()},
               "load_average_per_latency_round": mea.get("latency", {}).get("load_average_per_round"),
               "precision_rule": rw.precision_rule(rows),
               "budget_and_qat": dict(bud, what=budget.__doc__.replace("\n    ", " ")) if bud else None,
               "fresh_photos": {**{k: v for k, v in fr.items() if k != "rows"},
                                "what": fresh.__doc__.split(":")[0].replace("\n    ", " "),
                                "files": {k: {f: r[f] for f in ("top1", "top5_overlap", "kl_mean", "confident_views",
                                                                 "top1_where_fp32_p_ge_0.5",
                                                                 "fp32_margin_of_disagreements") if f in r}
                                          for k, r in fr.get("rows", {}).items()}} if fr else None,
               "note": "host timings on a shared, loaded 2-core VM (see the load averages): compare files within "
                       "this run only; A76 instruction counts are deterministic"}
        doc.setdefault("models", {}).setdefault(key, {})["side_by_side"] = sbs
        log(f"merged {key}: {len(rows)} files")
    doc["summary"] = summary(doc.get("models", {}))
    doc["summary_about"] = ("from each model's side_by_side run (edgekd and peers in the same run): int8_top1_agreement "
                            "= % of held-out views whose top-1 equals fp32 PyTorch's; android_figure = emulated "
                            f"Cortex-A76 instructions per inference (LiteRT XNNPACK, 1 thread); edgekd's is its "
                            f"shipped android file ('{SHIPPED}', float I/O); int8_top1_agreement_fresh_photos = the "
                            "same on views of Debian mate-backgrounds photos that no file, calibration or choice had "
                            "seen (the fresh phase)")
    from edgekd.core import atomic_write_text

    atomic_write_text(out, json.dumps(doc, indent=1, default=str) + "\n")
    log(f"wrote {out}")


def table(args, log) -> None:
    """The README table from real_weights.json's side_by_side sections: one row per file, one column per model,
    each cell top-1 agreement % / A76 M instructions / host p50 ms at 1 and 2 threads / MB."""
    models = {k: m["side_by_side"] for k, m in _load(Path(args.out)).get("models", {}).items() if m.get("side_by_side")}
    files = list(dict.fromkeys(f for m in models.values() for f in m["files"]))
    log("| file | " + " | ".join(f"{k} ({m['model']['size']} px): top-1 % / A76 M / host ms 1, 2 thr / MB"
                                  for k, m in models.items()) + " |")
    log("|---|" + "---|" * len(models))
    for f in files:
        cells = []
        for m in models.values():
            r = m["files"].get(f)
            if not r:
                cells.append("-")
                continue
            a = (r.get("a76") or {}).get("instructions")
            a = f"{a / 1e6:.2f}" if a else ("no TFLite" if (r.get("a76") or {}).get("none") else "-")
            h = [(r.get(n) or {}).get("p50_ms") for n in ("host_latency", "host_latency_2_threads")]
            h = ", ".join("-" if v is None else f"{v:.1f}" for v in h)
            cells.append(f"{r['top1']:.1f} / {a} / {h} / {r['size_bytes'] / 1e6:.1f}")
        who = f"**{f}**" if f == SHIPPED else (f if f.startswith("edgekd") else f"peer: {f}")
        log(f"| {who} | " + " | ".join(cells) + " |")


def _photo_split():
    names = [n for n, _ in rw.photos()]
    return [n for i, n in enumerate(names) if i % 2 == 0], [n for i, n in enumerate(names) if i % 2 == 1]


def summary(models: dict) -> dict:
    """{"edgekd": {MODEL: {int8_top1_agreement, android_figure}}, "peers": {PEER: {MODEL: {...}}}} (issue 22)."""
    def entry(row: dict) -> dict:
        a = row.get("a76") or {}
        e = {"int8_top1_agreement": row.get("top1"), "android_figure": a.get("instructions")}
        if fresh_row := row.get("fresh"):
            e["int8_top1_agreement_fresh_photos"] = fresh_row.get("top1")
        if e["android_figure"] is None:
            e["android_figure_none_because"] = a.get("none") or a.get("error") or "not measured"
        return e

    out: dict = {"edgekd": {}, "peers": {}}
    for key, m in models.items():
        rows = (m.get("side_by_side") or {}).get("files")
        if not rows:
            continue
        fresh_rows = ((m["side_by_side"].get("fresh_photos") or {}).get("files")) or {}
        rows = {k: {**r, "fresh": fresh_rows.get(k)} for k, r in rows.items()}
        if SHIPPED in rows:
            out["edgekd"][key] = entry(rows[SHIPPED])
        for peer, label in PEERS.items():
            if label in rows:
                out["peers"].setdefault(peer, {})[key] = entry(rows[label])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("phase", choices=("make", "measure", "fresh", "budget", "a76", "merge", "table"))
    ap.add_argument("--model", choices=tuple(rw.MODELS))
    ap.add_argument("--work", default="/tmp/edgekd-real-weights", help="where the files and per-phase JSON live")
    ap.add_argument("--calib-views", type=int, default=8, help="views per calibration photo")
    ap.add_argument("--held-views", type=int, default=10, help="views per held-out photo")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads while making the files")
    ap.add_argument("--redo-latency", action="store_true", help="measure: time again (e.g. with more --rounds)")
    ap.add_argument("--a76-timeout", type=float, default=1800)
    ap.add_argument("--out", default=str(rw.OUT))
    args = ap.parse_args(argv)
    if args.phase not in ("merge", "table") and not args.model:
        ap.error(f"{args.phase} needs --model")
    log = lambda m: print(m, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    if args.phase in ("merge", "table"):
        {"merge": merge, "table": table}[args.phase](args, log)
    else:
        {"make": make, "measure": measure, "fresh": fresh, "budget": budget, "a76": a76}[args.phase](args.model, args, log)
    log(f"{args.phase} {args.model or ''}: {time.perf_counter() - t0:.0f} s, load {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
