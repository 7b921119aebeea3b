"""Runs INSIDE the emulated aarch64 Python (stdlib + numpy + the runtime only; never imports edgekd).

usage: python3.11 guest.py JOB_DIR
  JOB_DIR/job.json   {"model", "format", "threads", "runs", "warmup"}
  JOB_DIR/inputs.npy runtime-ready inputs, one per row (layout and int8 quantization done on the host)
writes JOB_DIR/outputs.npy (first output, dequantized to float32) and JOB_DIR/result.json.

Each timed invoke is bracketed by marker syscalls that the instruction-counting plugin records, so
interpreter start, model load and warm-up never enter the count.
"""

import ctypes
import gc
import json
import os
import sys

import numpy as np

MARKER_SYSCALL = 0x4544  # must match insncount.c
MARKER_MAGIC = 0x6564676B64

_libc = ctypes.CDLL(None)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_long]


def mark(i):
    _syscall(MARKER_SYSCALL, i, MARKER_MAGIC)


def tflite_runner(job):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=job["model"], num_threads=job["threads"])
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def set_input(x):
        it.set_tensor(inp["index"], x)

    def get_output():
        y = it.get_tensor(out["index"])
        if np.dtype(out["dtype"]) in (np.int8, np.uint8, np.int16):
            scale, zero = out["quantization"]
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    # the C++ Invoke directly: the Python wrapper's safety checks would add interpreter noise
    return set_input, it._interpreter.Invoke, get_output, "litert " + _version("ai_edge_litert")


def onnx_runner(job):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = job["threads"]
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(job["model"], so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    binding = sess.io_binding()
    binding.bind_output(sess.get_outputs()[0].name)

    def set_input(x):
        binding.bind_cpu_input(name, np.ascontiguousarray(x))

    def invoke():
        sess._sess.run_with_iobinding(binding._iobinding, None)

    def get_output():
        return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)

    return set_input, invoke, get_output, "onnxruntime " + ort.__version__


def _version(module):
    try:
        from importlib.metadata import version

        return version(module.replace("_", "-"))
    except Exception:
        return "?"


def main(job_dir):
    with open(os.path.join(job_dir, "job.json")) as f:
        job = json.load(f)
    inputs = np.load(os.path.join(job_dir, "inputs.npy"))
    make = tflite_runner if job["format"] == "tflite" else onnx_runner
    set_input, invoke, get_output, runtime = make(job)

    # counted invokes first, so the count does not depend on how many samples are compared afterwards
    # (a few hundred instructions of the runtime's own bookkeeping drift with the invoke number)
    set_input(inputs[0])
    for _ in range(job["warmup"]):
        invoke()
    gc.disable()  # a collection inside a timed invoke would add instructions that are not the model's
    for i in range(job["runs"]):
        mark(2 * i)
        invoke()
        mark(2 * i + 1)
    gc.enable()

    outputs = []
    for x in inputs:  # numerics on every sample
        set_input(x)
        invoke()
        outputs.append(np.array(get_output(), dtype=np.float32))
    np.save(os.path.join(job_dir, "outputs.npy"), np.stack(outputs) if outputs else np.zeros((0,), np.float32))
    with open(os.path.join(job_dir, "result.json"), "w") as f:
        json.dump({"runtime": runtime, "numpy": np.__version__, "machine": os.uname().machine}, f)


if __name__ == "__main__":
    main(sys.argv[1])
