"""Qualcomm HTP, offline: QDQ-quantize for QNN, compile the EP context binary for the target SoC, and
run it on the HTP simulator that onnxruntime-qnn ships (libQnnHtp on x86) for placement, per-op
cycles and numerics. Everything here is simulated: no phone is involved.

The provider must be attached with add_provider_for_devices: the `providers=[("QNNExecutionProvider",
...)]` form silently runs on the CPU (see STACK.md).
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import EdgeKDError
from edgekd.targets import Target

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
SOC_NAMES = {57: "SM8650 (Snapdragon 8 Gen 3)", 43: "SM8550 (Snapdragon 8 Gen 2)", 69: "SM8750 (Snapdragon 8 Elite)"}
_registered = False


@contextlib.contextmanager
def native_stdout_to_stderr():
    """libQnnHtp prints banners on the process's stdout, which would corrupt `--json` output:
    point fd 1 at stderr while QNN code runs (and flush C stdio before pointing it back)."""
    import ctypes

    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        try:
            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
        os.dup2(saved, 1)
        os.close(saved)


def _ort_qnn():
    global _registered
    try:
        import onnxruntime as ort
        import onnxruntime_qnn as oq
    except ImportError:
        raise EdgeKDError("Qualcomm HTP profiling needs onnxruntime-qnn: pip install 'edgekd[npu]'") from None
    if not _registered:
        ort.set_default_logger_severity(3)  # keep ORT's informational warnings off the user's terminal
        try:
            ort.register_execution_provider_library(oq.get_ep_name(), oq.get_library_path())
        except Exception as exc:  # registering twice in one process is harmless
            if "already" not in str(exc).lower():
                raise EdgeKDError(f"cannot load the QNN execution provider: {exc}") from None
        _registered = True
    return ort, oq


def _inputs(model_path: Path) -> list[tuple[str, tuple[int, ...], Any]]:
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    init = {i.name for i in m.graph.initializer}
    out = []
    for i in m.graph.input:
        if i.name in init:
            continue
        t = i.type.tensor_type
        shape = tuple(d.dim_value if d.dim_value > 0 else 1 for d in t.shape.dim)
        out.append((i.name, shape, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)))
    return out


def prepare_static(src: Path, dst: Path) -> list[str]:
    """QNN compiles static graphs: pin dynamic dims (the batch) to 1 and infer every tensor's shape.

    Without this, an exported model whose intermediate shapes are unknown gets 'Cannot get shape' for
    every node and nothing lands on the HTP. Returns what was changed, for the report.
    """
    import onnx
    from onnx import shape_inference

    m = onnx.load(str(src))
    pinned = []
    for v in list(m.graph.input) + list(m.graph.output):
        for d in v.type.tensor_type.shape.dim:
            if d.dim_param or d.dim_value <= 0:
                pinned.append(f"{v.name}:{d.dim_param or '?'}")
                d.dim_value = 1  # also clears dim_param (a oneof)
    try:
        m = shape_inference.infer_shapes(m)
    except Exception as exc:
        raise EdgeKDError(f"shape inference on {src.name} failed, QNN needs static shapes: {str(exc).splitlines()[0][:200]}") from None
    onnx.save(m, str(dst))
    return [f"pinned dynamic dims to 1 ({', '.join(pinned)})"] if pinned else []


def is_qdq(model_path: Path) -> bool:
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    return any(n.op_type in QDQ_OPS for n in m.graph.node)


def _feeds(specs, sample: np.ndarray | None, n: int) -> tuple[list[dict[str, np.ndarray]], str]:
    """n input dicts: rows of the user's sample for a single-input model, else seeded random data."""
    rng = np.random.default_rng(0)
    if sample is not None and len(specs) == 1:
        name, shape, dtype = specs[0]
        rows = np.asarray(sample, dtype=dtype).reshape((-1, *shape[1:]))
        return [{name: rows[i][None]} for i in range(min(n, len(rows)))], "sample"
    feeds = []
    for _ in range(n):
        feeds.append({name: (rng.standard_normal(shape).astype(dt) if np.issubdtype(dt, np.floating)
                             else np.ones(shape, dt)) for name, shape, dt in specs})
    return feeds, "random"


def qdq_quantize(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """QNN-flavoured static QDQ quantization (uint8 activations, int8/uint8 weights as QNN HTP wants)."""
    from onnxruntime.quantization import CalibrationDataReader, quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    try:
        cfg = get_qnn_qdq_config(str(src), Reader())
        quantize(str(src), str(dst), cfg)
    except Exception as exc:
        raise EdgeKDError(f"QNN QDQ quantization of {src.name} failed: {str(exc).splitlines()[0][:300]}") from None


def _parse_profile(csv_path: Path) -> dict[str, Any]:
    """Per-op simulated cycles from QNN's detailed profile CSV.

    The CSV holds one block per execution (a ROOT 'Accelerator (execute) time (cycles)' row, then its
    NODE rows). The simulator's counts vary run to run and the first (cold) run is far higher, so we
    drop it and report medians.
    """
    if not csv_path.exists():
        return {"cycles_total": None, "cycles_min": None, "cycles_executions": 0, "op_cycles": []}
    blocks: list[dict[str, Any]] = []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Unit of Measurement") != "CYCLES":
                continue
            ident, val = row.get("Event Identifier", ""), float(row.get("Time") or 0)
            if row.get("Event Level") == "ROOT" and ident.startswith("Accelerator (execute) time"):
                blocks.append({"total": val, "ops": {}})
            elif row.get("Message") == "NODE" and blocks:
                blocks[-1]["ops"][ident.removesuffix(" (cycles)")] = val
    steady = blocks[1:] if len(blocks) > 1 else blocks
    if not steady:
        return {"cycles_total": None, "cycles_min": None, "cycles_executions": 0, "op_cycles": []}
    total = float(np.median([b["total"] for b in steady]))
    names = list(dict.fromkeys(n for b in steady for n in b["ops"]))
    ops = []
    for n in names:
        c = float(np.median([b["ops"][n] for b in steady if n in b["ops"]]))
        ops.append({"name": n, "cycles": c, "percent": 100.0 * c / total if total else None})
    return {"cycles_total": total, "cycles_min": float(min(b["total"] for b in steady)),
            "cycles_executions": len(steady), "op_cycles": ops}


def _agreement(a: list[np.ndarray], b: list[np.ndarray]) -> dict[str, Any]:
    x, y = np.concatenate([o.reshape(o.shape[0], -1) for o in a]), np.concatenate([o.reshape(o.shape[0], -1) for o in b])
    out = {"max_abs_diff": float(np.abs(x - y).max()), "mean_abs_diff": float(np.abs(x - y).mean())}
    if x.shape[1] > 1:
        out["top1_agreement"] = float((x.argmax(1) == y.argmax(1)).mean())
    return out


def profile_qnn(model: Path, target: Target, *, sample: np.ndarray | None = None, runs: int = 5,
                warmup: int = 1, output_dir: Path | None = None, calib_n: int = 32) -> dict[str, Any]:
    with native_stdout_to_stderr():
        return _profile_qnn(model, target, sample=sample, runs=runs, warmup=warmup, output_dir=output_dir,
                            calib_n=calib_n)


def _profile_qnn(model: Path, target: Target, *, sample: np.ndarray | None, runs: int, warmup: int,
                 output_dir: Path | None, calib_n: int) -> dict[str, Any]:
    from edgekd.profile.report import make_result

    if model.suffix != ".onnx":
        raise EdgeKDError(f"Qualcomm HTP profiling compiles ONNX with onnxruntime-qnn: {model.name} is not a .onnx file")
    ort, oq = _ort_qnn()
    soc, arch = int(target.npu["soc_model"]), int(target.npu["htp_arch"])
    specs = _inputs(model)
    n_eval = max(runs, 8)
    tmp = Path(tempfile.mkdtemp(prefix="edgekd-qnn-"))
    try:
        static = tmp / f"{model.stem}.static.onnx"
        notes = prepare_static(model, static)
        if is_qdq(static):
            qdq, fp32 = static, None
        else:
            fp32, qdq = static, tmp / f"{model.stem}.qdq.onnx"
            feeds_cal, src = _feeds(specs, sample, calib_n)
            qdq_quantize(static, qdq, feeds_cal)
            notes.append(f"QDQ-quantized with the QNN config, calibrated on {len(feeds_cal)} {src} inputs")
        feeds, src = _feeds(specs, sample, n_eval)

        ctx = tmp / f"{model.stem}.htp-v{arch}-soc{soc}_ctx.onnx"
        prof = tmp / "qnn_profile.csv"
        t0 = time.perf_counter()
        sess = _htp_session(ort, oq, qdq, ctx, prof, arch, soc, model.name)
        compile_ms = (time.perf_counter() - t0) * 1e3

        htp, cpu, cpu_nodes = _placement(sess, oq.get_ep_name())
        compute_htp = sum(v for k, v in htp.items() if k not in QDQ_OPS)
        compute_cpu = sum(v for k, v in cpu.items() if k not in QDQ_OPS)
        if compute_htp == 0:
            notes.append("no compute node was placed on the HTP: the whole model runs on the CPU fallback")
        elif compute_cpu:
            notes.append(f"{compute_cpu} compute node(s) fall back to the CPU: "
                         + ", ".join(sorted(k for k in cpu if k not in QDQ_OPS)))

        for f in feeds[:warmup]:
            sess.run(None, f)
        sim_outs, sim_ms = [], []
        for f in feeds:
            t = time.perf_counter()
            sim_outs.append(sess.run(None, f))
            sim_ms.append((time.perf_counter() - t) * 1e3)
        del sess  # flushes the QNN profile

        cpu_qdq = ort.InferenceSession(str(qdq), providers=["CPUExecutionProvider"])
        ref_q = [cpu_qdq.run(None, f) for f in feeds]
        agreement = {"vs_cpu_same_qdq_model": _agreement([o[0] for o in sim_outs], [o[0] for o in ref_q])}
        if fp32 is not None:
            cpu_fp = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
            agreement["vs_cpu_fp32_model"] = _agreement([o[0] for o in sim_outs], [cpu_fp.run(None, f)[0] for f in feeds])
        agreement["inputs"] = f"{len(feeds)} {src}"

        ctx_files = sorted(tmp.glob(f"{ctx.stem}*"))
        ctx_bytes = sum(p.stat().st_size for p in ctx_files)
        kept = _keep(ctx_files + ([qdq] if fp32 is not None else []), output_dir)
        cycles = _parse_profile(prof)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    import onnxruntime_qnn

    return make_result(
        "simulated",
        f"Qualcomm HTP v{arch} simulator (libQnnHtp on host x86_64, onnxruntime-qnn "
        f"{getattr(onnxruntime_qnn, '__version__', '?')}), soc_model {soc} {SOC_NAMES.get(soc, '')}".rstrip()
        + "; cycles are simulated, not measured on a phone",
        "qnn-htp",
        runtime="onnxruntime-qnn", delegates=["QNN HTP"], threads=1, runs=len(feeds), warmup=warmup,
        cycles_total=cycles["cycles_total"], cycles_min=cycles["cycles_min"],
        cycles_executions=cycles["cycles_executions"], op_cycles=cycles["op_cycles"],
        nodes_on_htp=sum(htp.values()), nodes_on_cpu=sum(cpu.values()),
        compute_nodes_on_htp=compute_htp, compute_nodes_on_cpu=compute_cpu,
        op_types_htp=dict(htp), op_types_cpu=dict(cpu), cpu_fallback_nodes=cpu_nodes,
        agreement=agreement, compile_ms=compile_ms, simulator_wall_ms_p50=float(np.median(sim_ms)),
        context_binary_bytes=ctx_bytes, context_files=kept, file_size_bytes=model.stat().st_size,
        notes=notes,
    )


def _htp_session(ort, oq, qdq: Path, ctx: Path, prof: Path, arch: int, soc: int, name: str):
    """An onnxruntime session on the QNN HTP backend: compiles the QDQ model to a context binary (ctx) and writes a
    detailed per-op profile (prof) when the session is deleted."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    so.add_session_config_entry("ep.context_enable", "1")
    so.add_session_config_entry("ep.context_file_path", str(ctx))
    devices = [d for d in ort.get_ep_devices() if d.ep_name == oq.get_ep_name()]
    if not devices:
        raise EdgeKDError("onnxruntime-qnn is installed but offers no QNN device")
    so.add_provider_for_devices(devices, {
        "backend_type": "htp", "htp_arch": str(arch), "soc_model": str(soc),
        "profiling_level": "detailed", "profiling_file_path": str(prof),
    })
    try:
        return ort.InferenceSession(str(qdq), so)
    except Exception as exc:
        raise EdgeKDError(f"QNN HTP compile of {name} failed: {str(exc).splitlines()[0][:300]}") from None


def _placement(sess, qnn_ep: str) -> tuple[Counter, Counter, list[dict]]:
    """(op types on the HTP, op types on the CPU fallback, the CPU nodes by name), from the session's assignment."""
    placement: dict[str, Counter] = {}
    cpu_nodes = []
    for sub in sess.get_provider_graph_assignment_info():
        ep = "htp" if sub.ep_name == qnn_ep else "cpu"
        for n in sub.get_nodes():
            placement.setdefault(ep, Counter())[n.op_type] += 1
            if ep == "cpu":
                cpu_nodes.append({"name": n.name, "op_type": n.op_type})
    return placement.get("htp", Counter()), placement.get("cpu", Counter()), cpu_nodes


def _keep(files: list[Path], output_dir: Path | None) -> list[str]:
    """Copy the context binary (and the QDQ model edgekd made) to output_dir: every file under a .partial name
    first, then renamed, so a failure leaves no half-copied context behind."""
    if output_dir is None:
        return []
    output_dir.mkdir(parents=True, exist_ok=True)
    for p in files:
        shutil.copyfile(p, output_dir / (p.name + ".partial"))
    for p in files:
        (output_dir / (p.name + ".partial")).replace(output_dir / p.name)
    return [str(output_dir / p.name) for p in files]
