"""Run an exported file on every input/output the model has (edgekd.runtime.runners cover the one-input case).

Parity needs all outputs and multi-input models (token ids + mask); the divergence search needs every
intermediate tensor. Batches are fed one sample at a time when the file fixes the batch at 1.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from edgekd.core.inputs import tflite_interpreter_class
from edgekd.errors import EdgeKDError
from edgekd.runtime.layout import dequantize, fit_layout, quantize_input
from edgekd.runtime.sessions import litert_interpreter, ort_session


def _nat_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# ------------------------------------------------------------------ ONNX


def onnx_session(path: str | Path, *, intermediates: bool = False, threads: int = 1):
    """(session, number of the file's own outputs); intermediates are appended after those."""
    if not intermediates:
        sess = ort_session(path, threads=threads)
        return sess, len(sess.get_outputs())
    import onnx

    # expose every node output so it can be compared with PyTorch's activations
    model = onnx.load(str(path))
    known = {o.name for o in model.graph.output}
    n_real = len(model.graph.output)
    for node in model.graph.node:
        for name in node.output:
            if name and name not in known:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                known.add(name)
    sess = ort_session(model.SerializeToString(), threads=threads, optimize=False, name=Path(path).name)
    return sess, n_real


def run_onnx(path, arrays: list[np.ndarray], *, intermediates: bool = False, threads: int = 1):
    """Outputs (list, file order) and, with intermediates=True, {tensor name: array} for batch item 0."""
    sess, n_out = onnx_session(path, intermediates=intermediates, threads=threads)
    ins = sess.get_inputs()
    if len(ins) != len(arrays):
        raise EdgeKDError(f"{Path(path).name} has {len(ins)} inputs, the sample has {len(arrays)}")
    fixed = any(isinstance(i.shape[0], int) and i.shape[0] == 1 for i in ins if i.shape)
    n = arrays[0].shape[0]
    step = 1 if fixed else n
    type_map = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
    names = [o.name for o in sess.get_outputs()]
    chunks: list[list[np.ndarray]] = []
    inter: dict[str, np.ndarray] = {}
    for s in range(0, n, step):
        feed = {i.name: a[s : s + step].astype(type_map.get(i.type, a.dtype), copy=False) for i, a in zip(ins, arrays)}
        res = sess.run(None, feed)
        if intermediates and s == 0:
            inter = {k: np.asarray(v) for k, v in zip(names, res)}
        chunks.append([np.asarray(r).astype(np.float32, copy=False) for r in res[:n_out]])
    outs = [np.concatenate([c[j] for c in chunks], axis=0) if chunks[0][j].ndim else chunks[0][j] for j in range(n_out)]
    return (outs, inter) if intermediates else outs


# ------------------------------------------------------------------ TFLite


def tflite_interpreter(path, *, intermediates: bool = False, threads: int = 1):
    if not intermediates:
        return litert_interpreter(path, threads=threads)
    from importlib import import_module

    # the XNNPACK delegate fuses ops away; without it every tensor keeps its value
    resolver = import_module(tflite_interpreter_class().__module__).OpResolverType
    with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": that is what it is for here
        warnings.simplefilter("ignore")
        return litert_interpreter(path, threads=threads, experimental_preserve_all_tensors=True,
                                  experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def tflite_io(it) -> tuple[list[dict], list[dict]]:
    """Input and output details in signature order (args_0, args_1, ... / output_0, ...)."""
    sigs = it.get_signature_list()
    if len(sigs) == 1:
        key = next(iter(sigs))
        runner = it.get_signature_runner(key)
        ind, outd = runner.get_input_details(), runner.get_output_details()
        by_index = {d["index"]: d for d in it.get_input_details() + it.get_output_details()}
        ins = [by_index.get(ind[k]["index"], ind[k]) | {"sig_name": k} for k in sorted(ind, key=_nat_key)]
        outs = [by_index.get(outd[k]["index"], outd[k]) | {"sig_name": k} for k in sorted(outd, key=_nat_key)]
        return ins, outs
    return it.get_input_details(), it.get_output_details()


def run_tflite(path, arrays: list[np.ndarray], *, intermediates: bool = False, threads: int = 1):
    """Outputs (list, signature order); with intermediates=True also {tensor name: array} for item 0."""
    it = tflite_interpreter(path, intermediates=intermediates, threads=threads)
    ins, outs = tflite_io(it)
    if len(ins) != len(arrays):
        raise EdgeKDError(f"{Path(path).name} has {len(ins)} inputs, the sample has {len(arrays)}")
    n = arrays[0].shape[0]
    results: list[list[np.ndarray]] = []
    inter: dict[str, np.ndarray] = {}
    for s in range(n):
        for det, a in zip(ins, arrays):
            x, _ = fit_layout(a[s : s + 1], det["shape"])
            it.set_tensor(det["index"], quantize_input(x, det["dtype"], det.get("quantization"), f"input {det.get('name', det.get('sig_name'))}"))
        it.invoke()
        results.append([dequantize(it.get_tensor(d["index"]), d.get("quantization")).astype(np.float32, copy=False)
                        for d in outs])
        if intermediates and s == 0:
            for t in it.get_tensor_details():
                try:
                    v = it.get_tensor(t["index"])
                except ValueError:
                    continue
                if v is None or not v.size:
                    continue
                inter[t["name"]] = dequantize(v, t.get("quantization"))
    out_list = [np.concatenate([r[j] for r in results], axis=0) for j in range(len(outs))]
    return (out_list, inter) if intermediates else out_list


# ------------------------------------------------------------------ ExecuTorch


def run_pte(path, arrays: list[np.ndarray], *, intermediates: bool = False, threads: int = 1):
    """Outputs of the program's forward method, fed one sample at a time (programs fix the batch at 1)."""
    from edgekd.runtime.executorch_rt import PteMethod

    if intermediates:
        raise EdgeKDError("a .pte program keeps no intermediate tensors to compare")
    method = PteMethod(path, threads=threads)
    if len(method.input_shapes) != len(arrays):
        raise EdgeKDError(f"{Path(path).name} has {len(method.input_shapes)} inputs, the sample has {len(arrays)}")
    rows = [method.run([a[s : s + 1].astype(np.float32, copy=False) if a.dtype == np.float64 else a[s : s + 1]
                        for a in arrays]) for s in range(arrays[0].shape[0])]
    return [np.concatenate([r[j] for r in rows], axis=0).astype(np.float32, copy=False) for j in range(len(rows[0]))]


def run_file(path, arrays: list[np.ndarray], **kw):
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return run_onnx(path, arrays, **kw)
    if suffix == ".tflite":
        return run_tflite(path, arrays, **kw)
    if suffix == ".pte":
        return run_pte(path, arrays, **kw)
    raise EdgeKDError(f"{Path(path).name}: expected a .onnx, .tflite or .pte file")
