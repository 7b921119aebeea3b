"""Read a Core ML package (.mlpackage) without running it (coremltools cannot run a model on Linux): the spec
loads, its inputs/outputs, the ML Program's op counts and the precision of its weights and compute.
Structural validation only: numerics and latency were not checked on an Apple device."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError

# Ops that only hold or reinterpret weights: not compute (counted apart so op counts compare compute)
_CONST_OPS = {"const"}
NOT_RUN = "structural validation only: numerics and latency were not checked on an Apple device"


def _spec(p: Path):
    from edgekd.runtime.coreml_tools import import_coremltools

    ct = import_coremltools()
    try:
        return ct.utils.load_spec(str(p))
    except Exception as exc:
        raise EdgeKDError(f"{p.name} is not a readable Core ML package ({type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ''})") from None


def _feature(f) -> dict[str, Any]:
    kind = f.type.WhichOneof("Type")
    if kind == "multiArrayType":
        t = f.type.multiArrayType
        from coremltools.proto import FeatureTypes_pb2 as ft

        return {"name": f.name, "shape": [int(d) for d in t.shape],
                "dtype": ft.ArrayFeatureType.ArrayDataType.Name(t.dataType).lower()}
    if kind == "imageType":
        from coremltools.proto import FeatureTypes_pb2 as ft

        t = f.type.imageType
        space = ft.ImageFeatureType.ColorSpace.Name(t.colorSpace)
        channels = 1 if space.startswith("GRAYSCALE") else 3
        return {"name": f.name, "shape": [1, channels, int(t.height), int(t.width)], "dtype": "image",
                "color_space": space}
    return {"name": f.name, "shape": [], "dtype": kind or "?"}


def _program_ops(spec) -> tuple[Counter, Counter]:
    ops: Counter[str] = Counter()
    dtypes: Counter[str] = Counter()
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                ops[op.type] += 1
                for out in op.outputs:
                    t = out.type.tensorType
                    if (op.type in _CONST_OPS or op.type.startswith("constexpr_")) and t.rank >= 2:  # weights, not shapes
                        dtypes[_dtype_name(t.dataType)] += 1
    return ops, dtypes


def _const_value(op) -> list[float] | None:
    """The values of a small const op (immediate, not in the weights file), as floats."""
    import numpy as np

    v = op.attributes["val"] if "val" in op.attributes else None
    if v is None or not v.HasField("immediateValue"):
        return None
    t, dtype = v.immediateValue.tensor, _dtype_name(v.type.tensorType.dataType)
    if t.HasField("floats"):
        return [float(x) for x in t.floats.values]
    if t.HasField("bytes") and dtype == "float16":
        return [float(x) for x in np.frombuffer(t.bytes.values, dtype=np.float16)]
    return None


def _preprocessing(spec, inputs: list[dict]) -> dict[str, dict]:
    """Per image input, the scale and bias Core ML applies to its pixels, read from the program's first ops
    (coremltools writes them as `mul` / `add` of consts right after the input)."""
    out: dict[str, dict] = {}
    fn = spec.mlProgram.functions.get("main")
    if fn is None:
        return out
    ops = [op for block in fn.block_specializations.values() for op in block.operations]
    consts = {o.name: op for op in ops if op.type == "const" for o in op.outputs}
    for f in inputs:
        if f["dtype"] != "image":
            continue
        cur, pre, seen = f["name"], {"scale": 1.0, "bias": [0.0] * f["shape"][1]}, set()
        for op in ops:  # the input's chain: [cast] [mul scale] [add bias], stopping at anything else
            args = {k: [a.name for a in v.arguments] for k, v in op.inputs.items()}
            uses = [k for k, names in args.items() if cur in names]
            if not uses:
                continue
            if op.type == "cast" and not seen:
                cur = op.outputs[0].name
                continue
            if op.type not in ("mul", "add") or op.type in seen or (op.type == "mul" and "add" in seen):
                break
            other = args["y" if uses == ["x"] else "x"][:1]
            vals = _const_value(consts[other[0]]) if other and other[0] in consts else None
            if vals is None:
                break
            if op.type == "mul":
                pre["scale"] = vals[0] if len(vals) == 1 else vals
            else:
                pre["bias"] = vals * f["shape"][1] if len(vals) == 1 else vals
            seen.add(op.type)
            cur = op.outputs[0].name
        out[f["name"]] = pre
    return out


def _dtype_name(code: int) -> str:
    from coremltools.proto import MIL_pb2

    return MIL_pb2.DataType.Name(code).lower()


def mlpackage_info(p: Path) -> dict[str, Any]:
    spec = _spec(p)
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        raise EdgeKDError(f"{p.name} holds a Core ML {kind}, not an ML Program (edgekd writes mlprogram packages)")
    ops, weight_dtypes = _program_ops(spec)
    compute = {k: v for k, v in ops.items() if k not in _CONST_OPS and not k.startswith("constexpr_")}
    meta = dict(spec.description.metadata.userDefined)
    inputs = [_feature(f) for f in spec.description.input]
    return {
        "format": "coreml",
        "inputs": inputs,
        "preprocessing": _preprocessing(spec, inputs),  # image inputs: Core ML's scale * pixel + bias
        "input_note": meta.get("edgekd.input"),
        "outputs": [_feature(f) for f in spec.description.output],
        "ops": dict(sorted(compute.items())),
        "weight_ops": dict(sorted((k, v) for k, v in ops.items() if k not in compute)),
        "weight_dtypes": dict(weight_dtypes),
        # written by edgekd's converter; a foreign package: fp16 when its weights are fp16
        "compute_precision": meta.get("edgekd.compute_precision") or ("fp16" if "fp16" in weight_dtypes else "fp32"),
        "weights": meta.get("edgekd.weights") or ("int8" if ops.get("constexpr_affine_dequantize") else None),
        "opsets": sorted({k for fn in spec.mlProgram.functions.values() for k in fn.block_specializations}),
        "specification_version": int(spec.specificationVersion),
        "coremltools": meta.get("com.github.apple.coremltools.version"),
        "params": None,
        "macs": None,
        "macs_note": "not counted for Core ML packages",
        "validation": NOT_RUN,
    }
