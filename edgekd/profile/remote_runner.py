"""edgekd's stand-alone profiler: time one .onnx, .tflite or .pte file and print one JSON line.

It is copied to boards (Raspberry Pi over SSH) and also run as a subprocess on the host, so host and
board figures come from the same loop. It must import nothing from edgekd and need only numpy plus
ai-edge-litert (or tflite-runtime / tensorflow) for .tflite, or onnxruntime for .onnx, or executorch (whose
Python runtime takes torch tensors, so torch too) for .pte. Python >= 3.8.

usage: python remote_runner.py MODEL [--runs N] [--warmup N] [--threads N] [--max-seconds S]
                                     [--inputs inputs.npz] [--no-xnnpack] [--shape 1,128]
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

MIN_RUNS_WHEN_CAPPED = 10


class RunnerError(Exception):
    pass


def _proc_status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss():
    # Linux: writing 5 resets VmHWM, so the peak afterwards covers model load + inference only
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Model", "Hardware", "CPU part"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.machine()


def concrete_shape(name, shape, override=None):
    """A dynamic batch becomes 1; any other dynamic dim (a sequence length, an image size) needs the user's
    shape: a latency at sequence length 1 would say nothing about the model. (edgekd's gate uses this too.)"""
    static = [isinstance(d, (int, np.integer)) and d > 0 for d in shape]
    if all(static[1:]) or not shape:
        return tuple(int(d) if ok else 1 for d, ok in zip(shape, static))
    if override is None:
        raise RunnerError("input %s has dynamic dims %s: pass --input-shape (e.g. 1,128)" % (name, list(shape)))
    if len(override) != len(shape) or any(ok and int(d) != o for d, ok, o in zip(shape, static, override)):
        raise RunnerError("--input-shape %s does not fit input %s %s" % (",".join(map(str, override)), name, list(shape)))
    return tuple(override)


def _fit(arr, shape, dtype, quant):
    """Make a sample (usually float32 NCHW) fit one model input: batch, layout, dtype, int8 quantization."""
    arr = np.asarray(arr)
    if arr.ndim == len(shape) - 1:  # one sample without its batch axis
        arr = arr[None]
    if arr.ndim == len(shape) and arr.shape[0] > shape[0]:
        arr = arr[: shape[0]]
    if arr.shape != tuple(shape) and arr.ndim == 4 and len(shape) == 4:
        if arr.transpose(0, 2, 3, 1).shape == tuple(shape):  # NCHW sample, NHWC model
            arr = arr.transpose(0, 2, 3, 1)
    if arr.shape != tuple(shape):
        raise RunnerError("sample shape %s does not fit model input shape %s" % (arr.shape, tuple(shape)))
    if np.issubdtype(dtype, np.integer) and np.issubdtype(arr.dtype, np.floating) and quant and quant[0]:
        scale, zero = quant
        info = np.iinfo(dtype)
        arr = np.clip(np.round(arr / scale + zero), info.min, info.max)
    return np.ascontiguousarray(arr.astype(dtype))


def _random_input(shape, dtype, rng):
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    if dtype in (np.int8, np.uint8, np.int16):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    if dtype == np.bool_:
        return np.ones(shape, dtype)
    return np.ones(shape, dtype)  # token ids / masks: 1 is valid for any vocabulary


class OnnxModel:
    def __init__(self, path, threads, profile_prefix=None, shape=None):
        import onnxruntime as ort

        so = ort.SessionOptions()
        if profile_prefix:
            so.enable_profiling = True
            so.profile_file_prefix = profile_prefix
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.runtime = "onnxruntime"
        self.version = ort.__version__
        self.delegates = ["CPUExecutionProvider"]
        types = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
                 "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
                 "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}
        self.inputs = []
        for i in self.sess.get_inputs():
            if i.type not in types:
                raise RunnerError("input %s has unsupported type %s" % (i.name, i.type))
            self.inputs.append((i.name, concrete_shape(i.name, i.shape, shape), np.dtype(types[i.type]).type, None))

    def bind(self, arrays):
        self.feed = {name: a for (name, _, _, _), a in zip(self.inputs, arrays)}

    def run(self):
        return self.sess.run(None, self.feed)


def _tflite_interpreter():
    try:
        from ai_edge_litert import interpreter as mod
        import ai_edge_litert

        return mod, "ai-edge-litert", getattr(ai_edge_litert, "__version__", "?")
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as mod
        import tflite_runtime

        return mod, "tflite-runtime", getattr(tflite_runtime, "__version__", "?")
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite, "tensorflow.lite", tf.__version__
    except ImportError:
        raise RunnerError("no TFLite interpreter: install ai-edge-litert (or tflite-runtime) on this machine")


class TFLiteModel:
    def __init__(self, path, threads, xnnpack=True, shape=None):
        mod, name, version = _tflite_interpreter()
        kwargs = {"model_path": path, "num_threads": threads}
        if not xnnpack:
            resolver = getattr(mod, "OpResolverType", None) or mod.experimental.OpResolverType
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.interp = mod.Interpreter(**kwargs)
        if shape is not None:  # only inputs declared with a dynamic dim (-1 in shape_signature) are resized
            for d in self.interp.get_input_details():
                sig = [int(v) for v in d.get("shape_signature", d["shape"])]
                if any(v < 0 for v in sig[1:]):
                    self.interp.resize_tensor_input(d["index"], list(concrete_shape(d["name"], sig, shape)))
        self.interp.allocate_tensors()
        self.runtime = name
        self.version = version
        self.delegates = ["XNNPACK"] if xnnpack else []
        self.inputs = []
        for d in self.interp.get_input_details():
            q = d.get("quantization") or (0.0, 0)
            self.inputs.append((d["index"], tuple(int(s) for s in d["shape"]), d["dtype"], q))
        self.names = [d["name"] for d in self.interp.get_input_details()]
        self.outputs = [d["index"] for d in self.interp.get_output_details()]

    def bind(self, arrays):
        self.arrays = list(zip((i[0] for i in self.inputs), arrays))

    def run(self):
        # set + invoke + read back: the same work an ORT session.run does
        for idx, a in self.arrays:
            self.interp.set_tensor(idx, a)
        self.interp.invoke()
        return [self.interp.get_tensor(i) for i in self.outputs]


def onnx_op_profile(model_path, threads, arrays, n, shape=None):
    """Per-node and per-op-type mean times from ORT's own profiler, in a separate session so the
    profiler's overhead never touches the timed runs. The first (cold) run of each node is dropped."""
    import tempfile

    tmp = tempfile.mkdtemp(prefix="edgekd-ortprof-")
    m = OnnxModel(model_path, threads, profile_prefix=os.path.join(tmp, "p"), shape=shape)
    m.bind(arrays)
    for _ in range(n + 1):
        m.run()
    path = m.sess.end_profiling()
    try:
        with open(path) as f:
            events = json.load(f)
    finally:
        for name in os.listdir(tmp):
            os.remove(os.path.join(tmp, name))
        os.rmdir(tmp)
    per_node = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            node = e["name"][: -len("_kernel_time")]
            per_node.setdefault(node, [e["args"].get("op_name", "?"), []])[1].append(e["dur"] / 1e3)
    ops = []
    for node, (op, durs) in per_node.items():
        durs = durs[1:] if len(durs) > 1 else durs
        ops.append({"name": node, "type": op, "avg_ms": sum(durs) / len(durs)})
    total = sum(o["avg_ms"] for o in ops) or 1.0
    types = {}
    for o in ops:
        o["percent"] = 100.0 * o["avg_ms"] / total
        t = types.setdefault(o["type"], {"type": o["type"], "count": 0, "avg_ms": 0.0})
        t["count"] += 1
        t["avg_ms"] += o["avg_ms"]
    for t in types.values():
        t["percent"] = 100.0 * t["avg_ms"] / total
    return ops, sorted(types.values(), key=lambda t: -t["avg_ms"])


class PteModel:
    """An ExecuTorch program's forward method in ExecuTorch's Python runtime (XNNPACK + portable kernels)."""

    _DTYPES = {6: np.float32, 5: np.float16, 4: np.int64, 3: np.int32, 1: np.int8, 0: np.uint8, 11: np.bool_}

    def __init__(self, path, threads):
        import torch  # noqa: F401  (the runtime's tensors)
        from importlib.metadata import version

        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        runtime = Runtime.get()
        portable_lib._unsafe_reset_threadpool(int(threads))  # XNNPACK's thread pool
        self.method = runtime.load_program(path).load_method("forward")
        meta = self.method.metadata
        self.runtime, self.version, self.delegates = "executorch", version("executorch"), ["XNNPACK"]
        self.inputs = []
        for i in range(meta.num_inputs()):
            t = meta.input_tensor_meta(i)
            self.inputs.append(("input_%d" % i, tuple(int(d) for d in t.sizes()),
                                np.dtype(self._DTYPES.get(int(t.dtype()), np.float32)).type, None))

    def bind(self, arrays):
        import torch

        self.tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]

    def run(self):
        return self.method.execute(self.tensors)


def _load_samples(path):
    if not path:
        return None
    with np.load(path) as z:
        keys = sorted(z.files, key=lambda k: int(k.split("_")[-1]) if k.split("_")[-1].isdigit() else 0)
        return [z[k] for k in keys]


def measure(model_path, runs=50, warmup=10, threads=1, max_seconds=30.0, inputs=None, xnnpack=True, op_profile=0,
            shape=None):
    if not os.path.isfile(model_path):
        raise RunnerError("model file %s not found" % model_path)
    ext = os.path.splitext(model_path)[1].lower()
    if ext not in (".onnx", ".tflite", ".pte"):
        raise RunnerError("unsupported model file %s (want .onnx, .tflite or .pte)" % model_path)
    if ext == ".pte":  # import torch + executorch before timing the load: init_ms is the model's, not Python's
        import executorch.runtime  # noqa: F401
    base_rss = _proc_status_kb("VmRSS")
    reset = _reset_peak_rss()
    t0 = time.perf_counter()
    try:
        if ext == ".pte":
            model = PteModel(model_path, threads)
        elif ext == ".onnx":
            model = OnnxModel(model_path, threads, shape=shape)
        else:
            model = TFLiteModel(model_path, threads, xnnpack, shape=shape)
    except RunnerError:
        raise
    except Exception as exc:  # the runtime's own load error, as one line
        raise RunnerError("cannot load %s: %s" % (os.path.basename(model_path), str(exc).strip().splitlines()[0][:300]))
    init_ms = (time.perf_counter() - t0) * 1e3

    rng = np.random.default_rng(0)
    arrays = []
    for k, (name, shape, dtype, quant) in enumerate(model.inputs):
        if inputs is not None and k < len(inputs):
            arrays.append(_fit(inputs[k], shape, dtype, quant))
        else:
            arrays.append(_random_input(shape, dtype, rng))
    model.bind(arrays)

    t0 = time.perf_counter()
    model.run()
    first_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(max(warmup - 1, 0)):
        model.run()

    times = []
    start = time.perf_counter()
    for _ in range(runs):
        t = time.perf_counter_ns()
        model.run()
        times.append((time.perf_counter_ns() - t) / 1e6)
        if time.perf_counter() - start > max_seconds and len(times) >= MIN_RUNS_WHEN_CAPPED:
            break
    t = np.asarray(times)
    peak_kb = _proc_status_kb("VmHWM")  # read before the profiling session below adds its own memory
    extra = {}
    if op_profile and ext == ".onnx":
        extra["ops"], extra["op_types"] = onnx_op_profile(model_path, threads, arrays, op_profile, shape)
        extra["op_profile"] = "onnxruntime profiler, mean of %d runs after one cold run, separate session" % op_profile
    elif op_profile and ext == ".pte":
        extra["op_profile"] = "not available: ExecuTorch's per-op figures need an ETDump build (devtools)"
    elif op_profile:
        extra["op_profile"] = "not available: the LiteRT Python interpreter has no op profiler (android benchmark_model has)"
    res = {
        "p50_ms": float(np.percentile(t, 50)),
        "p90_ms": float(np.percentile(t, 90)),
        "p99_ms": float(np.percentile(t, 99)),
        "mean_ms": float(t.mean()),
        "min_ms": float(t.min()),
        "max_ms": float(t.max()),
        "std_ms": float(t.std()),
        "runs": int(t.size),
        "runs_requested": int(runs),
        "warmup": int(warmup),
        "threads": int(threads),
        "runtime": model.runtime,
        "runtime_version": model.version,
        "delegates": model.delegates,
        "init_ms": init_ms,
        "first_run_ms": first_ms,
        "peak_rss_mb": None if peak_kb is None else peak_kb / 1024.0,
        # peak growth over the process after imports: what loading + running this model costs
        "model_rss_mb": None if (peak_kb is None or base_rss is None or not reset) else max(peak_kb - base_rss, 0) / 1024.0,
        "file_size_bytes": os.path.getsize(model_path),
        "inputs": [{"name": str(n), "shape": list(a.shape), "dtype": str(a.dtype)}
                   for n, a in zip(getattr(model, "names", None) or [m[0] for m in model.inputs], arrays)],
        "input_source": "sample" if inputs is not None else "random",
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
        "python": platform.python_version(),
    }
    res.update(extra)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description="time one .onnx/.tflite file, print one JSON line")
    p.add_argument("model")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--inputs", default="")
    p.add_argument("--no-xnnpack", action="store_true")
    p.add_argument("--op-profile", type=int, default=0, help="profiled runs for a per-op breakdown (ONNX), 0 = off")
    p.add_argument("--shape", default="", help="shape for inputs with dynamic dims, e.g. 1,128")
    a = p.parse_args(argv)
    try:
        if a.runs < 1 or a.warmup < 0 or a.threads < 1:
            raise RunnerError("runs and threads must be >= 1, warmup >= 0")
        shape = tuple(int(v) for v in a.shape.split(",")) if a.shape else None
        res = measure(a.model, a.runs, a.warmup, a.threads, a.max_seconds, _load_samples(a.inputs), not a.no_xnnpack,
                      a.op_profile, shape)
    except RunnerError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
