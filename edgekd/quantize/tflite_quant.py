"""TFLite quantization of a float .tflite with ai-edge-quantizer: full int8, int16x8, dynamic-range, float16.

Works on any float file (litert-torch's or onnx2tf's). Layers to keep in float are matched by their op
scope (output tensor names), the same names the sensitivity analysis reports.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

from edgekd.errors import EdgeKDError

MODES = ("int8", "int16x8", "dynamic", "fp16")


def _signature(float_path: Path) -> tuple[str, list[str], list[list[int]]]:
    from edgekd.export import execute

    it = execute.tflite_interpreter(float_path)
    ins, _ = execute.tflite_io(it)
    key = next(iter(it.get_signature_list()), None)
    if key is None:
        raise EdgeKDError(f"{float_path.name} has no signature; re-export it with edgekd export")
    return key, [d.get("sig_name", d["name"]) for d in ins], [[int(v) for v in d["shape"]] for d in ins]


def _calibration_feed(float_path: Path, calib: np.ndarray) -> dict:
    from edgekd.runtime.layout import fit_layout

    key, names, shapes = _signature(float_path)
    if len(names) != 1:
        raise EdgeKDError(f"int8 calibration supports one-input models; {float_path.name} has {len(names)}")
    x = calib.astype(np.float32)
    return {key: [{names[0]: fit_layout(x[i : i + 1], shapes[0])[0]} for i in range(len(x))]}


def quantize_tflite(float_path: Path, out: Path, *, mode: str, calib: np.ndarray | None, int8_io: bool = False,
                    keep_float: list[str] | None = None, dynamic: list[str] | None = None) -> None:
    """Write `out` from the float TFLite file. keep_float: op scopes (output tensor names) left in float.
    dynamic: op scopes given dynamic-range int8 instead (float input and output, int8 weights, the input
    quantized at run time): the float head rule with int8 weights (float_head.py)."""
    from ai_edge_quantizer import qtyping, quantizer, recipe
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    if mode not in MODES:
        raise EdgeKDError(f"TFLite quantization mode '{mode}' is not supported: choose from {', '.join(MODES)}")
    q = quantizer.Quantizer(str(float_path))
    ops = qtyping.TFLOperationName
    if mode == "fp16":
        q.add_weight_only_config(regex=".*", operation_name=ops.ALL_SUPPORTED, num_bits=16,
                                 algorithm_key=AlgorithmName.FLOAT_CASTING)
    elif mode == "dynamic":
        q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    else:
        q.load_quantization_recipe(recipe.static_wi8_ai8() if mode == "int8" else recipe.static_wi8_ai16())
        for scope in keep_float or []:
            # later, narrower entries win over the '.*' recipe
            q.update_quantization_recipe(regex="^" + re.escape(scope) + ";$", operation_name=ops.ALL_SUPPORTED,
                                         algorithm_key=AlgorithmName.NO_QUANTIZE)
        dynamic_config = _dynamic_config(recipe.dynamic_wi8_afp32())
        for scope in dynamic or []:
            q.update_quantization_recipe(regex="^" + re.escape(scope) + ";$", operation_name=ops.ALL_SUPPORTED,
                                         op_config=dynamic_config, algorithm_key=AlgorithmName.MIN_MAX_UNIFORM_QUANT)
        if not int8_io:  # float in/out with QUANTIZE/DEQUANTIZE inside: a drop-in for the float file
            for op in (ops.INPUT, ops.OUTPUT):
                q.update_quantization_recipe(regex=".*", operation_name=op, algorithm_key=AlgorithmName.NO_QUANTIZE)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        result = None
        if q.need_calibration:
            if calib is None or len(calib) == 0:
                raise EdgeKDError(f"TFLite {mode} quantization needs calibration samples")
            result = _calibrate_min_max(q, _calibration_feed(float_path, calib))
        q.quantize(result, enable_progress_bar=False, enable_progress_report=False).export_model(str(out), overwrite=True)


def _dynamic_config(entries: list[dict]):
    """The op config of ai-edge-quantizer's own dynamic-range recipe (int8 channelwise weights, integer compute)."""
    from ai_edge_quantizer import qtyping

    return qtyping.OpQuantizationConfig.from_dict(entries[0]["op_config"])


def _calibrate_min_max(q, feed: dict) -> dict:
    """Activation ranges over *all* calibration samples (the min of the mins, the max of the maxes).

    ai-edge-quantizer's calibrate() folds sample after sample into an exponential moving average (factor 0.95):
    the ranges end up those of the last ~20 samples, so they clip the others and depend on the samples' order.
    On EfficientNet-Lite0 with real weights that cost 25 points of top-1 agreement with the float model on
    confident views (benchmarks/real_weights.json). TF's converter and ONNX Runtime's MinMax use the global
    range; so does this: one calibrate() per sample, merged with the library's own qsv_utils.min_max_update."""
    from ai_edge_quantizer.utils import qsv_utils

    (key, samples), = feed.items()
    merged: dict = {}
    for sample in samples:
        for name, qsv in q.calibrate({key: [sample]}, num_threads=1).items():
            merged[name] = qsv_utils.min_max_update(merged.get(name, {}), qsv) if qsv else merged.get(name, qsv)
    return merged


def layers(float_path: Path) -> list[dict]:
    """Compute ops of the float file: scope name (for keep_float), op, activation inputs, output tensor."""
    from edgekd.export import execute

    it = execute.tflite_interpreter(float_path, intermediates=True)
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    produced = set()
    for op in it._get_ops_details():
        produced.update(op["outputs"])
    graph_inputs = {d["index"] for d in it.get_input_details()}
    out = []
    for op in it._get_ops_details():
        if op["op_name"] in ("DELEGATE",) or not len(op["outputs"]):
            continue
        outs = [tensors[i]["name"] for i in op["outputs"] if i >= 0]
        acts = [tensors[i]["name"] for i in op["inputs"] if i >= 0 and (i in produced or i in graph_inputs)]
        if acts and outs:
            out.append({"name": ";".join(outs), "op": op["op_name"], "inputs": acts, "output": outs[0]})
    return out


def ops_around_shared_outputs(float_path: Path) -> list[str]:
    """Scopes of the ops producing and reading a tensor that is both a model output and an input of another op
    (a model returning (logits, features)).

    ai-edge-quantizer mis-handles such a tensor with float outputs: quantized, LiteRT refuses the reader (e.g.
    FULLY_CONNECTED with a float input and an int8 output) or XNNPACK hides the output; float on both sides works."""
    from edgekd.export import execute

    it = execute.tflite_interpreter(float_path)
    outputs = {d["name"] for d in it.get_output_details()}
    ops = layers(float_path)
    shared = {name for op in ops for name in op["inputs"] if name in outputs}
    return [op["name"] for op in ops if shared & ({op["output"]} | set(op["inputs"]))]


# op -> (weight channel axis, how the input channels map to the output channels)
_BIAS_CORRECTED = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}


def correct_biases(float_path: Path, dst: Path, calib: np.ndarray, *, keep_float: list[str] | None = None,
                   samples: int | None = None, means: dict | None = None) -> int:
    """Bias correction (bias_correction.py) of every CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED with float32
    weights and bias, into `dst`: weights on ai-edge-quantizer's symmetric per-channel int8 grid (max |w| / 127
    along the op's quantized dimension), biases corrected with E[x] of the op's input over `calib`.

    The float file is edited in place byte for byte: each weight and bias buffer is found by its contents and
    overwritten with arrays of the same size; a layer whose buffers are not found exactly once is left as it is.
    keep_float: op scopes left in float (not corrected); means: mean_inputs' cache. Returns how many layers were
    corrected."""
    from edgekd.export import execute
    from edgekd.quantize.bias_correction import mean_inputs, output_shift, round_to_grid

    it = execute.tflite_interpreter(float_path)
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    skip = set(keep_float or [])
    todo = []
    for op in it._get_ops_details():
        ins = [i for i in op["inputs"]]
        if op["op_name"] not in _BIAS_CORRECTED or len(ins) < 3 or min(ins) < 0:
            continue
        scope = ";".join(tensors[i]["name"] for i in op["outputs"] if i >= 0)
        if scope in skip or any(tensors[i]["dtype"] != np.float32 for i in ins[1:3]):
            continue
        try:
            w, b = it.get_tensor(ins[1]).copy(), it.get_tensor(ins[2]).copy()
        except ValueError:
            continue
        todo.append((op["op_name"], tensors[ins[0]]["name"], w, b, ins[1], ins[2]))
    means = mean_inputs(float_path, calib, [name for _, name, *_ in todo], channels_last=True, means=means,
                        samples=samples)
    raw = bytearray(Path(float_path).read_bytes())
    done = []
    for kind, name, w, b, wi, bi in todo:
        if name not in means:
            continue
        mu = means[name]
        axis = _BIAS_CORRECTED[kind]
        wq = round_to_grid(w, axis)
        d = wq - w.astype(np.float64)
        if kind == "DEPTHWISE_CONV_2D":  # (1, kh, kw, out); out channel c reads input channel c // multiplier
            per_out = d.reshape(-1, d.shape[-1]).sum(axis=0)
            mult = d.shape[-1] // mu.shape[0] if mu.shape[0] and d.shape[-1] % mu.shape[0] == 0 else 0
            shift = per_out * np.repeat(mu, mult) if mult else None
        else:  # CONV_2D (out, kh, kw, in per group), FULLY_CONNECTED (out, in)
            delta = d.reshape(d.shape[0], -1, d.shape[-1]).sum(axis=1)
            shift = output_shift(delta, mu, mu.shape[0] // delta.shape[1] if delta.shape[1] else 1)
        if shift is None or shift.shape != b.shape:
            continue
        old_w, old_b = w.astype(np.float32).tobytes(), b.astype(np.float32).tobytes()
        # a buffer of one repeated byte (an all-zero bias: untrained batch norm folded in) can match flatbuffer
        # structure instead of the data: not found reliably, so left as it is
        if len(set(old_w)) < 2 or len(set(old_b)) < 2 or raw.count(old_w) != 1 or raw.count(old_b) != 1:
            continue
        for old, new in ((old_w, wq.astype(np.float32).tobytes()), (old_b, (b - shift).astype(np.float32).tobytes())):
            at = raw.find(old)
            raw[at : at + len(old)] = new
        done.append((wi, wq, bi, b - shift))
    Path(dst).write_bytes(bytes(raw))
    _check_read_back(dst, done)
    return len(done)


def _check_read_back(path: Path, edits: list) -> None:
    """The edited file must load and hold the new weights and biases where the interpreter reads them; else the
    correction is refused (the caller quantizes the float file and says why)."""
    from edgekd.export import execute

    try:
        it = execute.tflite_interpreter(path)
        ok = all(np.array_equal(it.get_tensor(wi), wq.astype(np.float32))
                 and np.array_equal(it.get_tensor(bi), nb.astype(np.float32)) for wi, wq, bi, nb in edits)
    except Exception as exc:  # noqa: BLE001 - any failure to read it back means the edit is not trusted
        raise ValueError(f"the bias-corrected file does not load ({type(exc).__name__})") from None
    if not ok:
        raise ValueError("the bias-corrected file does not read back the corrected weights")
