"""Read a model file (.onnx / .tflite / .pte / .mlpackage) without running it: op counts, I/O, size, parameters, MACs.

Used by export (coverage table), the CI gate (deterministic checks) and profile. Parsing only:
ONNX through the `onnx` protobuf, TFLite through the flatbuffer schema that ships with ai-edge-litert.

Op names are the file's own: ONNX op types ("Conv", "Transpose"), TFLite builtin names
("CONV_2D", "TRANSPOSE"). Ops outside the standard set are marked so nobody mistakes them for builtins:
TFLite Flex (TensorFlow) ops keep their "Flex..." custom code, other TFLite custom ops read
"custom:<code>", ONNX ops from a non-standard domain read "<domain>:<OpType>".
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError

SUPPORTED = (".onnx", ".tflite", ".pte", ".mlpackage")
# ONNX domains every conformant runtime implements; anything else is a custom / contrib op.
_ONNX_STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}
_TRANSPOSE_OPS = {"Transpose", "TRANSPOSE", "xnnpack.StaticTranspose", "aten.permute_copy.out", "transpose"}


# ---------------------------------------------------------------- public API


def count_ops(path: str | os.PathLike) -> dict[str, int]:
    """Op type -> number of nodes, over every graph in the file (ONNX subgraphs, TFLite subgraphs)."""
    p = _check_path(path)
    if p.suffix.lower() == ".onnx":
        return _onnx_count_ops(_onnx_load(p))
    if p.suffix.lower() == ".pte":
        from edgekd.inspect.pte import pte_ops

        return pte_ops(p)[0]
    if p.suffix.lower() == ".mlpackage":
        from edgekd.inspect.coreml import mlpackage_info

        return mlpackage_info(p)["ops"]
    return _tflite_count_ops(_TFLite(p))


def model_info(path: str | os.PathLike) -> dict[str, Any]:
    """Everything the file says about itself, as plain JSON-able values.

    Keys: path, format, size_bytes, inputs/outputs [{name, shape, dtype, (quant)}], ops, num_ops,
    transpose_ops, custom_ops, flex_ops, params, weight_dtypes, macs (int or None when shapes are
    not static), macs_note.
    """
    p = _check_path(path)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        info = _onnx_info(p)
    elif suffix == ".pte":
        from edgekd.inspect.pte import pte_info

        info = pte_info(p)
    elif suffix == ".mlpackage":
        from edgekd.inspect.coreml import mlpackage_info

        info = mlpackage_info(p)
    else:
        info = _tflite_info(p)
    ops = info["ops"]
    info.update(
        path=str(p),
        size_bytes=_size_on_disk(p, info.pop("_external_files", ())),
        num_ops=sum(ops.values()),
        transpose_ops=transpose_count(ops),
        custom_ops=custom_ops(ops),
        flex_ops=flex_ops(ops),
    )
    return dict(sorted(info.items()))


def transpose_count(ops: dict[str, int]) -> int:
    return sum(n for name, n in ops.items() if name in _TRANSPOSE_OPS)


def flex_ops(ops: dict[str, int]) -> dict[str, int]:
    """TFLite ops that need the TensorFlow (Flex) delegate: huge binary, usually unavailable on device."""
    return {k: v for k, v in ops.items() if k.startswith("Flex")}


def custom_ops(ops: dict[str, int]) -> dict[str, int]:
    """Ops a stock runtime does not have: TFLite custom + Flex, ONNX non-standard domains."""
    return {k: v for k, v in ops.items() if is_custom_op(k)}


def is_custom_op(name: str) -> bool:
    return name.startswith("Flex") or ":" in name


# ---------------------------------------------------------------- shared helpers


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.suffix.lower() not in SUPPORTED:
        raise EdgeKDError(f"cannot inspect {p.name}: expected a .onnx, .tflite, .pte or .mlpackage file")
    from edgekd.core.inputs import check_model_file

    return check_model_file(p)


def _size_on_disk(p: Path, external: tuple[str, ...] | list[str]) -> int:
    """File size plus ONNX external-data files, since those ship with the model (a .mlpackage: all its files)."""
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    total = p.stat().st_size
    for name in set(external):
        ext = p.parent / name
        if ext.is_file():
            total += ext.stat().st_size
    return total


def _prod(dims) -> int:
    return int(math.prod(int(d) for d in dims))


# ---------------------------------------------------------------- ONNX


def _onnx_load(p: Path):
    import onnx

    try:
        # Weights stay on disk: only dims are needed, and external data may be GBs.
        return onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError / RuntimeError variants
        raise EdgeKDError(f"{p.name} is not a readable ONNX model: {str(exc).splitlines()[0][:200]}") from None


def _onnx_op_name(node) -> str:
    if node.domain in _ONNX_STANDARD_DOMAINS:
        return node.op_type
    return f"{node.domain}:{node.op_type}"


def _onnx_graphs(graph):
    """The graph and every subgraph (If/Loop/Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.g is not None and attr.HasField("g"):
                yield from _onnx_graphs(attr.g)
            for g in attr.graphs:
                yield from _onnx_graphs(g)


def _onnx_count_ops(model) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for g in _onnx_graphs(model.graph):
        counts.update(_onnx_op_name(n) for n in g.node)
    return dict(sorted(counts.items()))


def _onnx_dims(type_proto) -> list[int | str] | None:
    t = type_proto.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]


def _onnx_dtype(elem_type: int) -> str:
    import onnx

    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:  # types numpy lacks (bfloat16, float8...)
        return onnx.TensorProto.DataType.Name(elem_type).lower()


def _onnx_info(p: Path) -> dict[str, Any]:
    import onnx

    model = _onnx_load(p)
    g = model.graph
    init_names = {t.name for t in g.initializer}
    io = lambda vis: [  # noqa: E731
        {"name": v.name, "shape": _onnx_dims(v.type), "dtype": _onnx_dtype(v.type.tensor_type.elem_type)}
        for v in vis
        if v.name not in init_names  # old exporters list weights as graph inputs
    ]
    weight_dtypes: Counter[str] = Counter()
    params = 0
    external: list[str] = []
    for t in g.initializer:
        n = _prod(t.dims)
        params += n
        weight_dtypes[_onnx_dtype(t.data_type)] += n
        if t.data_location == onnx.TensorProto.EXTERNAL:
            external += [e.value for e in t.external_data if e.key == "location"]
    macs, note = _onnx_macs(model)
    return {
        "format": "onnx",
        "inputs": io(g.input),
        "outputs": io(g.output),
        "ops": _onnx_count_ops(model),
        "params": params,
        "weight_dtypes": dict(weight_dtypes),
        "macs": macs,
        "macs_note": note,
        "opset": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "_external_files": external,
    }


def _onnx_macs(model) -> tuple[int | None, str]:
    """MACs of Conv/ConvTranspose/Gemm/MatMul (and their quantized forms) from inferred shapes.

    Symbolic batch dims count as 1 (so the figure is per sample); any other unknown dim makes the
    total underivable rather than wrong.
    """
    import onnx

    try:
        # Shape inference only needs dims; strip raw weights from a copy so big models stay cheap.
        m = onnx.ModelProto()
        m.CopyFrom(model)
        for t in m.graph.initializer:
            t.ClearField("raw_data")
            t.ClearField("float_data")
            t.ClearField("int32_data")
            t.ClearField("int64_data")
            t.ClearField("double_data")
            t.ClearField("external_data")
            t.data_location = onnx.TensorProto.DEFAULT
        m = onnx.shape_inference.infer_shapes(m, strict_mode=False)
    except Exception as exc:
        return None, f"shape inference failed: {str(exc).splitlines()[0][:120]}"

    g = m.graph
    shapes: dict[str, list] = {t.name: list(t.dims) for t in g.initializer}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        d = _onnx_dims(vi.type)
        if d is not None:
            shapes.setdefault(vi.name, d)

    def shape(name: str, batch_ok: bool = True) -> list[int] | None:
        d = shapes.get(name)
        if d is None:
            return None
        out = []
        for i, v in enumerate(d):
            if isinstance(v, int) and v > 0:
                out.append(v)
            elif i == 0 and batch_ok:
                out.append(1)  # dynamic batch -> per-sample MACs
            else:
                return None
        return out

    weight_idx = {"Conv": 1, "ConvTranspose": 1, "ConvInteger": 1, "QLinearConv": 3}
    total, missing = 0, 0
    for node in g.node:  # subgraph bodies run a data-dependent number of times: not counted
        op = node.op_type if node.domain in _ONNX_STANDARD_DOMAINS else None
        if op in weight_idx:
            w = shape(node.input[weight_idx[op]], batch_ok=False)
            if op == "ConvTranspose":
                x = shape(node.input[0])
                macs = _prod(x) * _prod(w[1:]) if (x and w) else None
            else:
                y = shape(node.output[0])
                macs = _prod(y) * _prod(w[1:]) if (y and w) else None
        elif op in ("MatMul", "MatMulInteger", "QLinearMatMul", "Gemm"):
            a = shape(node.input[0])
            y = shape(node.output[0])
            k = None
            if a:
                trans_a = any(at.name == "transA" and at.i for at in node.attribute) if op == "Gemm" else False
                k = a[0] if len(a) == 1 else (a[-2] if trans_a else a[-1])
            macs = _prod(y) * k if (y and k) else None
        else:
            continue
        if macs is None:
            missing += 1
        else:
            total += macs
    if missing:
        return None, f"{missing} compute op(s) have non-static shapes"
    return total, "Conv/ConvTranspose/Gemm/MatMul MACs from inferred shapes; dynamic batch counted as 1"


# ---------------------------------------------------------------- TFLite


class _TFLite:
    """Thin reader over the flatbuffer (no interpreter, so files with Flex/custom ops still open)."""

    def __init__(self, p: Path):
        from ai_edge_litert import schema_py_generated as s

        self.s = s
        self.path = p
        buf = p.read_bytes()
        if len(buf) < 8 or buf[4:8] != b"TFL3":
            raise EdgeKDError(f"{p.name} is not a TFLite flatbuffer (missing TFL3 identifier)")
        try:
            self.model = s.Model.GetRootAs(buf, 0)
            self.op_names = [self._op_name(self.model.OperatorCodes(i)) for i in range(self.model.OperatorCodesLength())]
            self.subgraphs = [self.model.Subgraphs(i) for i in range(self.model.SubgraphsLength())]
        except Exception as exc:
            raise EdgeKDError(f"{p.name} is a damaged TFLite file: {exc}") from None
        self._builtin_names = None

    def _op_name(self, code) -> str:
        s = self.s
        # Codes < 127 live in the deprecated int8 field; newer ones only in builtin_code.
        num = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if num == s.BuiltinOperator.CUSTOM:
            custom = (code.CustomCode() or b"").decode("utf-8", "replace")
            return custom if custom.startswith("Flex") else f"custom:{custom}"
        names = _tflite_builtin_names(s)
        return names.get(num, f"BUILTIN_{num}")

    def ops(self):
        """(subgraph, operator, op name) for every operator."""
        for sg in self.subgraphs:
            for i in range(sg.OperatorsLength()):
                op = sg.Operators(i)
                yield sg, op, self.op_names[op.OpcodeIndex()]

    def tensor_type(self, t) -> str:
        return _tflite_type_names(self.s).get(t.Type(), f"type{t.Type()}").lower()

    def has_data(self, t) -> bool:
        b = self.model.Buffers(t.Buffer()) if t.Buffer() < self.model.BuffersLength() else None
        return b is not None and (b.DataLength() > 0 or b.Offset() > 1)


_NAME_CACHE: dict[str, dict[int, str]] = {}


def _tflite_builtin_names(s) -> dict[int, str]:
    if "ops" not in _NAME_CACHE:
        _NAME_CACHE["ops"] = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    return _NAME_CACHE["ops"]


def _tflite_type_names(s) -> dict[int, str]:
    if "types" not in _NAME_CACHE:
        _NAME_CACHE["types"] = {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_")}
    return _NAME_CACHE["types"]


def _tflite_count_ops(m: _TFLite) -> dict[str, int]:
    return dict(sorted(Counter(name for _, _, name in m.ops()).items()))


def _tflite_io(m: _TFLite, sg, idx: list[int]) -> list[dict[str, Any]]:
    out = []
    for i in idx:
        t = sg.Tensors(i)
        shape = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
        if t.ShapeSignatureLength():  # -1 marks a dynamic dim
            sig = [int(d) for d in t.ShapeSignatureAsNumpy()]
            shape = [d if d >= 0 else "?" for d in sig]
        entry: dict[str, Any] = {"name": (t.Name() or b"").decode(), "shape": shape, "dtype": m.tensor_type(t)}
        q = t.Quantization()
        if q is not None and q.ScaleLength() == 1:  # per-tensor quantized I/O (int8/uint8/int16)
            entry["quant"] = {"scale": float(q.Scale(0)), "zero_point": int(q.ZeroPoint(0))}
        out.append(entry)
    return out


def _tflite_info(p: Path) -> dict[str, Any]:
    m = _TFLite(p)
    if not m.subgraphs:
        raise EdgeKDError(f"{p.name} has no subgraphs")
    main = m.subgraphs[0]
    weight_dtypes: Counter[str] = Counter()
    params = 0
    for sg in m.subgraphs:
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            if m.has_data(t):
                n = _prod(t.ShapeAsNumpy()) if t.ShapeLength() else 1
                params += n
                weight_dtypes[m.tensor_type(t)] += n
    macs, note = _tflite_macs(m)
    return {
        "format": "tflite",
        "inputs": _tflite_io(m, main, [int(i) for i in main.InputsAsNumpy()] if main.InputsLength() else []),
        "outputs": _tflite_io(m, main, [int(i) for i in main.OutputsAsNumpy()] if main.OutputsLength() else []),
        "ops": _tflite_count_ops(m),
        "params": params,
        "weight_dtypes": dict(weight_dtypes),
        "macs": macs,
        "macs_note": note,
        "subgraphs": len(m.subgraphs),
        "schema_version": int(m.model.Version()),
    }


def _tflite_macs(m: _TFLite) -> tuple[int | None, str]:
    """MACs of the compute ops from the static shapes stored in the file (batch as stored, usually 1)."""

    def shp(sg, idx):
        if idx < 0:
            return None
        t = sg.Tensors(idx)
        return [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else None

    total = 0
    for sg, op, name in m.ops():
        ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
        if not outs:
            continue
        y = shp(sg, outs[0])
        if name == "CONV_2D" and len(ins) > 1:  # filter (Cout, kh, kw, Cin/groups)
            w = shp(sg, ins[1])
            total += _prod(y) * _prod(w[1:]) if (y and w) else 0
        elif name == "DEPTHWISE_CONV_2D" and len(ins) > 1:  # filter (1, kh, kw, Cout)
            w = shp(sg, ins[1])
            total += _prod(y) * w[1] * w[2] if (y and w) else 0
        elif name == "CONV_3D" and len(ins) > 1:  # filter (kd, kh, kw, Cin, Cout)
            w = shp(sg, ins[1])
            total += _prod(y) * _prod(w[:4]) if (y and w) else 0
        elif name == "TRANSPOSE_CONV" and len(ins) > 2:  # (output_shape, filter (Cout,kh,kw,Cin), input)
            w, x = shp(sg, ins[1]), shp(sg, ins[2])
            total += _prod(x) * _prod(w[:3]) if (x and w) else 0
        elif name == "FULLY_CONNECTED" and len(ins) > 1:  # weights (units, K)
            w = shp(sg, ins[1])
            total += _prod(y) * w[-1] if (y and w) else 0
        elif name == "BATCH_MATMUL" and len(ins) > 1:
            a = shp(sg, ins[0])
            opts = op.BuiltinOptions()
            adj_x = False
            if opts is not None:
                bm = m.s.BatchMatMulOptions()
                bm.Init(opts.Bytes, opts.Pos)
                adj_x = bool(bm.AdjX())
            total += _prod(y) * (a[-2] if adj_x else a[-1]) if (y and a) else 0
    return total, "CONV_2D/DEPTHWISE/CONV_3D/TRANSPOSE_CONV/FULLY_CONNECTED/BATCH_MATMUL MACs at the stored shapes"
