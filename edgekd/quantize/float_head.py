"""The float head rule of static int8: the layer that produces the model's output logits gives float logits.

In a classifier the last fully-connected layer is a tiny share of the compute (EfficientNet-Lite0: 1.3 M of
~400 M MACs), but full int8 requantizes its output, the logits, to 8 bits, so near-ties between classes are
decided by rounding: on EfficientNet-Lite0 with real weights that was half of int8's KL from fp32
(benchmarks/results/real_weights.json, `float_head`).

The head is found by walking back from each graph output through ops that only reshape, add a constant bias or
normalise (softmax), to the Gemm / MatMul / FULLY_CONNECTED feeding it. By default its weights stay int8 and only
its output is float (the file is no larger): ONNX, int8 inputs and weights with no requantization of the output
(ONNX Runtime's QGemm / MatMulIntegerToFloat with a float output); TFLite, a dynamic-range FULLY_CONNECTED (float
input and output, int8 weights). With weights "float" the layer is fp32 throughout. The ops after it stay float.
No such layer (a conv classifier, a detector): nothing changes, and the report says so.
Not applied with int8 I/O or for targets that need full-integer graphs (NPUs): their callers pass False.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ONNX_HEADS = ("Gemm", "MatMul")
# ops between the head layer and the output that keep the logits' meaning (one activation input each)
ONNX_AFTER = ("Add", "Mul", "Softmax", "LogSoftmax", "Sigmoid", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
              "Identity", "Transpose", "Cast")
TFLITE_HEADS = ("FULLY_CONNECTED",)
TFLITE_AFTER = ("ADD", "MUL", "SOFTMAX", "LOG_SOFTMAX", "LOGISTIC", "RESHAPE", "SQUEEZE", "EXPAND_DIMS",
                "TRANSPOSE", "CAST")

WHY = ("the layer producing the output logits gives float logits (a small share of a classifier's compute; int8 "
       "logits decide near-ties between classes by rounding): --int8-head requantizes them to int8")


def onnx_head(path: Path) -> tuple[list[str], list[str]]:
    """(head layers, ops after them) of the float ONNX file, by node name: per graph output, the Gemm/MatMul
    producing it and the nodes between it and the output. Empty when no output is produced that way."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    fixed = {t.name for t in m.graph.initializer} | {o for n in m.graph.node if n.op_type == "Constant" for o in n.output}
    by_output = {o: {"name": n.name, "op": n.op_type, "inputs": [i for i in n.input if i and i not in fixed]}
                 for n in m.graph.node for o in n.output}
    return _walk([o.name for o in m.graph.output], by_output, ONNX_HEADS, ONNX_AFTER)


def tflite_head(path: Path) -> tuple[list[str], list[str]]:
    """Op scopes (tflite_quant.layers names) of the float TFLite file to keep float, as onnx_head."""
    from edgekd.export import execute
    from edgekd.quantize.tflite_quant import layers

    it = execute.tflite_interpreter(path)
    ops = layers(path)
    by_output = {op["output"]: op for op in ops}
    return _walk([d["name"] for d in it.get_output_details()], by_output, TFLITE_HEADS, TFLITE_AFTER)


def _walk(outputs: list[str], by_output: dict, heads: tuple, after: tuple) -> tuple[list[str], list[str]]:
    found: list[str] = []
    following: list[str] = []
    for out in outputs:
        chain, op = [], by_output.get(out)
        while op is not None and op["op"] in after and len(op["inputs"]) == 1:
            chain.append(op["name"])
            op = by_output.get(op["inputs"][0])
        if op is not None and op["op"] in heads and op["name"] not in found:
            found.append(op["name"])
            following += [n for n in reversed(chain) if n not in following]
    return found, following


def float_in_file(path: Path, fmt: str, names: list[str]) -> list[str]:
    """Which of the head layers `names` give a float output in the quantized file (what the report may claim)."""
    if fmt == "onnx":
        import onnx

        g = onnx.load(str(path), load_external_data=False).graph
        requantized = {i for n in g.node if n.op_type == "QuantizeLinear" for i in n.input}
        return [n.name for n in g.node if n.name in names and not requantized & set(n.output)]
    from edgekd.export import execute

    it = execute.tflite_interpreter(path)
    floats = {t["name"] for t in it.get_tensor_details() if t["dtype"] == np.float32}
    return [n for n in names if all(part in floats for part in n.split(";") if part)]


def decide(asked: bool | None, mode: str, int8_io: bool) -> tuple[bool, str]:
    """(keep the head float?, why) for a quantize() call; asked: True / False as the user said, None: the rule."""
    if mode != "int8":
        return False, f"not applied: {mode} is not static int8"
    if int8_io:
        return False, "not applied: int8 I/O asked (a full-integer graph, the logits int8 by request)"
    if asked is False:
        return False, "not applied: --int8-head asked (the head layer and the logits are int8)"
    return True, WHY
