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
        t = f.type.imageType
        return {"name": f.name, "shape": [1, int(t.height), int(t.width)], "dtype": "image"}
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
    return {
        "format": "coreml",
        "inputs": [_feature(f) for f in spec.description.input],
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
