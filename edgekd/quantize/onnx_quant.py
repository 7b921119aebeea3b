"""ONNX quantization with onnxruntime.quantization: static int8 QDQ (per-channel) and dynamic int8."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from edgekd.errors import EdgeKDError

METHODS = ("minmax", "entropy", "percentile")


class _Reader:
    """CalibrationDataReader over in-memory arrays, one sample per call."""

    def __init__(self, name: str, data: np.ndarray, batch: int):
        self.name, self.data, self.batch, self.i = name, data, batch, 0

    def get_next(self):
        if self.i >= len(self.data):
            return None
        x = self.data[self.i : self.i + self.batch]
        self.i += self.batch
        return {self.name: x}

    def rewind(self):
        self.i = 0


def _input(path: Path) -> tuple[str, bool]:
    """(first input name, batch fixed at 1?)."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    ins = [i for i in m.graph.input if i.name not in inits]
    if len(ins) != 1:
        raise EdgeKDError(f"static int8 calibration supports one-input models; {path.name} has {len(ins)} inputs "
                          "(use --mode dynamic)")
    d0 = ins[0].type.tensor_type.shape.dim[0] if ins[0].type.tensor_type.shape.dim else None
    return ins[0].name, bool(d0 is not None and d0.HasField("dim_value") and d0.dim_value == 1)


def name_nodes(src: Path, dst: Path) -> Path:
    """Give every node a unique name: exclusion lists and sensitivity results refer to nodes by name."""
    import onnx

    m = onnx.load(str(src))
    seen: set[str] = set()
    for i, n in enumerate(m.graph.node):
        if not n.name or n.name in seen:
            n.name = f"{n.op_type}_{i}"
        seen.add(n.name)
    onnx.save(m, str(dst))
    return dst


def preprocess(src: Path, dst: Path) -> Path:
    """ORT's recommended pre-pass (shape inference, graph optimisation) before static quantization."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=False)
    except Exception:
        with contextlib.redirect_stdout(io.StringIO()):
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    return name_nodes(dst, dst)


# x86 CPU flags whose int8 dot products (VPDPBUSD, AMX) accumulate u8 x s8 in 32 bits: no saturation
_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def reduce_range_needed(machine: str | None = None, flags: set[str] | None = None) -> tuple[bool, str]:
    """(7-bit weights?, why) for an int8 ONNX file run by ONNX Runtime on a CPU (default: this host's).

    ORT's CPU kernels multiply u8 activations by s8 weights. x86-64 CPUs without VNNI do it with VPMADDUBSW, which
    adds pairs of products into a saturating int16 (255 * 127 * 2 > 32767); ORT's docs advise `reduce_range`
    (7-bit weights) there. Everywhere else (x86 with VNNI / AMX, ARM's dot-product and widening multiplies) the
    sums are 32-bit and 7-bit weights only cost accuracy: on EfficientNet-Lite0 with real weights, int8 top-1
    agreement with fp32 fell from 83.6 % to 68.2 % (weights alone, no activation quantization: 90.0 -> 70.9 %;
    benchmarks/results/real_weights.json)."""
    from edgekd.quantize.fp16_compute import _arch, cpu_flags

    if machine is None:
        machine, found = cpu_flags()
        flags = found if flags is None else flags
    machine = machine.lower()
    if _arch(machine) != "x86":
        return False, f"8-bit weights: {machine} accumulates int8 products in 32 bits (no u8s8 saturation)"
    if not flags:
        return False, "8-bit weights: this x86 CPU's flags are unknown; for one without VNNI use --reduce-range"
    if any(f in flags for f in _VNNI_FLAGS):
        return False, "8-bit weights: this x86 CPU has VNNI (32-bit int8 dot products, no u8s8 saturation)"
    return True, ("7-bit weights (reduce_range): this x86 CPU has no VNNI, so ONNX Runtime's u8s8 kernels "
                  "(VPMADDUBSW) could saturate with 8-bit weights; --no-reduce-range for files that run on ARM or "
                  "VNNI CPUs")


@contextlib.contextmanager
def _root_log_quiet():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_onnx(float_path: Path, out: Path, *, mode: str, calib: np.ndarray | None, method: str = "minmax",
                  per_channel: bool = True, exclude: list[str] | None = None, reduce_range: bool = False,
                  float_output: list[str] | None = None) -> None:
    """Write `out` from the float ONNX file; `exclude` lists layers left in float ('a+b' = nodes a and b).
    reduce_range: 7-bit weights (see reduce_range_needed: only for x86 CPUs without VNNI).
    float_output: nodes quantized (int8 inputs and weights) whose output is not requantized: ONNX Runtime runs
    them as QGemm / MatMulIntegerToFloat with a float output (the float head rule, float_head.py)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    exclude = [n for layer in exclude or [] for n in layer.split("+")]
    if mode == "dynamic":
        with _root_log_quiet():  # ORT logs "consider pre-processing" on the root logger: a static int8 concern
            quantize_dynamic(str(float_path), str(out), weight_type=QuantType.QInt8, per_channel=per_channel,
                             nodes_to_exclude=exclude or [])
        return
    if mode != "int8":
        raise EdgeKDError(f"ONNX quantization mode '{mode}' is not supported: use int8 or dynamic")
    if method not in METHODS:
        raise EdgeKDError(f"unknown calibration method '{method}': choose from {', '.join(METHODS)}")
    if calib is None or len(calib) == 0:
        raise EdgeKDError("static int8 quantization needs calibration samples")
    name, fixed = _input(float_path)
    cm = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
          "percentile": CalibrationMethod.Percentile}[method]
    # Entropy/Percentile histograms: ORT's defaults (128 bins kept in memory, 99.999th percentile)
    extra = {"CalibTensorRangeSymmetric": False, "ActivationSymmetric": False, "WeightSymmetric": True}
    with contextlib.redirect_stdout(io.StringIO()):
        # batches of 32 for MinMax; one sample at a time for the histogram methods, whose collector cannot
        # stack a shorter last batch (onnxruntime 1.32: "inhomogeneous shape")
        batch = 1 if fixed or method != "minmax" else 32
        quantize_static(str(float_path), str(out), _Reader(name, calib.astype(np.float32), batch),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=exclude or [], calibrate_method=cm,
                        extra_options=extra, calibration_cache_path=None, reduce_range=reduce_range)
    if float_output:
        _drop_output_qdq(out, set(float_output))


def _drop_output_qdq(path: Path, nodes: set[str]) -> None:
    """Remove the QuantizeLinear -> DequantizeLinear pair on the output of each named node: its readers (or the
    graph output) take the node's float output."""
    import onnx

    m = onnx.load(str(path))
    g = m.graph
    readers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    drop = []
    for n in g.node:
        if n.name not in nodes or len(n.output) != 1:
            continue
        q = readers.get(n.output[0], [])
        if len(q) != 1 or q[0].op_type != "QuantizeLinear" or n.output[0] in {o.name for o in g.output}:
            continue
        dq = readers.get(q[0].output[0], [])
        if len(dq) != 1 or dq[0].op_type != "DequantizeLinear":
            continue
        n.output[0] = dq[0].output[0]  # the DQ output's name: the graph output or what the readers read
        drop += [q[0], dq[0]]
    for d in drop:
        g.node.remove(d)
    used = {i for n in g.node for i in n.input}
    for t in [t for t in g.initializer if t.name not in used]:  # the dropped pair's scale and zero point
        g.initializer.remove(t)
    onnx.save(m, str(path))


def correct_biases(float_path: Path, dst: Path, calib: np.ndarray, *, per_channel: bool = True,
                   reduce_range: bool = False, exclude: list[str] | None = None, samples: int | None = None,
                   means: dict | None = None) -> int:
    """Bias correction (bias_correction.py) of every Conv / Gemm (transB) of the float file, into `dst`: weights on
    the int8 grid ORT's symmetric quantizer uses (max |w| / 127 per output channel, / 64 with reduce_range), biases
    corrected with E[x] of each layer's input over `calib` (`means`: mean_inputs' cache). Returns how many layers
    were corrected."""
    import onnx
    from onnx import numpy_helper

    from edgekd.quantize.bias_correction import mean_inputs, output_shift, round_to_grid

    m = onnx.load(str(float_path))
    inits = {t.name: t for t in m.graph.initializer}
    skip = {n for layer in exclude or [] for n in layer.split("+")}  # layers as quantize_onnx's exclude: 'a+b'
    todo = [n for n in m.graph.node if n.name not in skip and len(n.input) > 1 and n.input[1] in inits
            and (n.op_type == "Conv" or (n.op_type == "Gemm" and _attr(n, "transB", 0) == 1
                                         and _attr(n, "transA", 0) == 0))]
    mu = mean_inputs(float_path, calib, [n.input[0] for n in todo], channels_last=False, means=means,
                     samples=samples, graph_input=m.graph.input[0].name)
    done = 0
    for n in todo:
        if n.input[0] not in mu:
            continue
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
        wq = round_to_grid(w, 0 if per_channel else None, 64.0 if reduce_range else 127.0)
        delta = (wq - w).reshape(w.shape[0], w.shape[1], -1).sum(axis=2)  # (out, in per group)
        shift = output_shift(delta, mu[n.input[0]], _attr(n, "group", 1) if n.op_type == "Conv" else 1)
        if shift is None:
            continue
        if len(n.input) > 2 and n.input[2] in inits:
            bias = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64)
            inits[n.input[2]].CopyFrom(numpy_helper.from_array((bias - shift).astype(np.float32), n.input[2]))
        elif len(n.input) == 2:
            name = f"{n.name}_corrected_bias"
            m.graph.initializer.append(numpy_helper.from_array((-shift).astype(np.float32), name))
            n.input.append(name)
        else:
            continue
        inits[n.input[1]].CopyFrom(numpy_helper.from_array(wq.astype(np.float32), n.input[1]))
        done += 1
    onnx.save(m, str(dst))
    return done


def _attr(node, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


_FUSED_ACTIVATIONS = ("Relu", "Clip")  # ORT's QDQ quantizer folds these into the producing node


def layers(float_path: Path) -> list[dict]:
    """Quantizable compute layers: name, nodes, op, activation inputs, output — what the budget search may keep
    float. A Conv/Gemm followed by its only consumer Relu/Clip is one layer, as ORT quantizes them together."""
    import onnx

    m = onnx.load(str(float_path), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    consts = {o for n in m.graph.node if n.op_type == "Constant" for o in n.output}
    consumers: dict[str, int] = {}
    for n in m.graph.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    producer = {o: n for n in m.graph.node for o in n.output}
    skip = ("Constant", "Shape", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity")
    out, merged = [], set()
    for n in m.graph.node:
        if n.op_type in skip:
            continue
        acts = [i for i in n.input if i and i not in inits and i not in consts]
        if not (n.output and acts):
            continue
        p = producer.get(acts[0])
        if n.op_type in _FUSED_ACTIVATIONS and p is not None and consumers.get(acts[0]) == 1 and p.name in merged:
            prev = next(d for d in out if d["nodes"][-1] == p.name)
            prev.update(name=f"{prev['name']}+{n.name}", nodes=prev["nodes"] + [n.name], output=n.output[0],
                        op=f"{prev['op']}+{n.op_type}")
            continue
        merged.add(n.name)
        out.append({"name": n.name, "nodes": [n.name], "op": n.op_type, "inputs": acts, "output": n.output[0]})
    return out


def quantized_value_name(inter: dict, tensor: str) -> str | None:
    """In a QDQ file a tensor's consumers read its DequantizeLinear output; prefer that value."""
    for cand in (f"{tensor}_DequantizeLinear_Output", tensor):
        if cand in inter:
            return cand
    return None
