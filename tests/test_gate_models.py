"""Tiny model files built directly (no converter), shared by the inspect and gate tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def onnx_convnet(path: Path, channels: int = 8, size: int = 16, extra: bool = False, seed: int = 0) -> Path:
    """Conv(1->C, 3x3) -> Relu -> Transpose -> [custom op] ; dynamic batch. MACs = C*9*size*size."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((channels, 1, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["r"], ["y" if not extra else "t"], perm=[0, 2, 3, 1]),
    ]
    opsets = [helper.make_opsetid("", 17)]
    if extra:
        nodes.append(helper.make_node("MyOp", ["t"], ["y"], domain="com.example"))
        opsets.append(helper.make_opsetid("com.example", 1))
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    m = helper.make_model(g, opset_imports=opsets)
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def onnx_matmul_chain(path: Path, dim: int = 256, layers: int = 4, seed: int = 0, tail_op: str | None = None) -> Path:
    """x (N, dim) -> `layers` x (MatMul dim x dim + Relu) [-> unary tail_op]: MACs = layers*dim*dim."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits, nodes, cur = [], [], "x"
    for i in range(layers):
        inits.append(numpy_helper.from_array((rng.standard_normal((dim, dim)) / dim**0.5).astype(np.float32), f"w{i}"))
        nodes.append(helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"]))
        out = "y" if i == layers - 1 and not tail_op else f"r{i}"
        nodes.append(helper.make_node("Relu", [f"m{i}"], [out]))
        cur = out
    if tail_op:
        nodes.append(helper.make_node(tail_op, [cur], ["y"]))
    g = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", dim])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", dim])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def tflite_with_custom_ops(path: Path) -> Path:
    """CONV_2D (8 out, 3x3 on 1x16x16x1) -> TRANSPOSE -> FlexAddV2 -> custom MyOp, built with the schema's object API."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    def opcode(builtin, custom=None):
        c = s.OperatorCodeT()
        c.builtinCode = builtin
        c.deprecatedBuiltinCode = min(builtin, 127)
        c.customCode = custom
        c.version = 1
        return c

    def tensor(name, shape, buf, ttype=s.TensorType.FLOAT32):
        t = s.TensorT()
        t.name, t.shape, t.buffer, t.type = name, shape, buf, ttype
        return t

    def op(idx, ins, outs):
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = idx, ins, outs
        return o

    empty = s.BufferT()
    wbuf = s.BufferT()
    wbuf.data = np.zeros(8 * 3 * 3 * 1, np.float32).view(np.uint8).tolist()
    sg = s.SubGraphT()
    sg.tensors = [
        tensor("x", [1, 16, 16, 1], 0),
        tensor("w", [8, 3, 3, 1], 1),
        tensor("c", [1, 16, 16, 8], 0),
        tensor("t", [1, 8, 16, 16], 0),
        tensor("a", [1, 8, 16, 16], 0),
        tensor("y", [1, 8, 16, 16], 0, s.TensorType.INT8),
    ]
    sg.operators = [op(0, [0, 1, -1], [2]), op(1, [2], [3]), op(2, [3, 3], [4]), op(3, [4], [5])]
    sg.inputs, sg.outputs = [0], [5]
    q = s.QuantizationParametersT()
    q.scale, q.zeroPoint = [0.5], [-3]
    sg.tensors[5].quantization = q
    m = s.ModelT()
    m.version = 3
    m.operatorCodes = [
        opcode(s.BuiltinOperator.CONV_2D),
        opcode(s.BuiltinOperator.TRANSPOSE),
        opcode(s.BuiltinOperator.CUSTOM, "FlexAddV2"),
        opcode(s.BuiltinOperator.CUSTOM, "MyOp"),
    ]
    m.subgraphs = [sg]
    m.buffers = [empty, wbuf]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path
