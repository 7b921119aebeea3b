"""One zero-argument invoke per model, built on edgekd.runtime's runner, with a fixed random input."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from edgekd.errors import UsageError

DECODE_CONTEXT = 16  # a KV-cache decoder is timed one decode step at this context length (ms per token)


def concrete_shape(name: str, shape: list, override: tuple[int, ...] | None) -> tuple[int, ...]:
    """Batch 1 for a symbolic batch; any other symbolic dim needs --input-shape (the profiler's rule, shared)."""
    from edgekd.profile.remote_runner import RunnerError, concrete_shape as runner_shape

    try:
        return runner_shape(name, list(shape or []), override)
    except RunnerError as exc:
        raise UsageError(str(exc)) from None


def _array(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    if dtype.startswith(("float", "bfloat")):
        return rng.standard_normal(shape).astype(np.float32)
    if dtype == "bool":
        return np.ones(shape, dtype=bool)
    # Integer inputs are token ids / masks / indices in practice: 1 is valid for all of them.
    return np.ones(shape, dtype=np.dtype(dtype) if dtype in np.sctypeDict else np.int64)


def make_invoke(runner: Any, info: dict, override: tuple[int, ...] | None = None, seed: int = 0) -> Callable[[], object]:
    """runner.run_once on a prepared sample; multi-input / integer-input files drive the session directly; a KV-cache
    decoder ONNX file (input_ids + past_key_values.*) runs one decode step after a prefill of DECODE_CONTEXT ids."""
    rng = np.random.default_rng(seed)
    inputs = info.get("inputs") or []
    if not inputs:
        raise UsageError(f"{info.get('path')} declares no inputs")
    from edgekd.runtime.decoder import OrtDecoder, is_kv_decoder

    if runner.format == "onnx" and is_kv_decoder(inputs):

        return OrtDecoder(info.get("path") or "decoder.onnx", session=runner.session).step_invoke(DECODE_CONTEXT)
    # One float input (or int8 I/O with the file's own scale): the runner prepares it like any stage does.
    first = inputs[0]
    simple = len(inputs) == 1 and (str(first.get("dtype", "float32")).startswith("float") or first.get("quant") is not None)
    if simple:
        x = _array(concrete_shape(inputs[0]["name"], inputs[0]["shape"], override), "float32", rng)
        prepared = runner.prepare(x)
        return lambda: runner.run_once(prepared)
    if runner.format == "onnx":
        sess = runner.session
        feeds = {e["name"]: _array(concrete_shape(e["name"], e["shape"], override), e["dtype"], rng) for e in inputs}
        return lambda: sess.run(None, feeds)
    if runner.format == "tflite":
        it = runner.interp
        details = it.get_input_details()
        arrays = [(d["index"], _array(tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name, rng)) for d in details]

        def invoke() -> None:
            for idx, arr in arrays:
                it.set_tensor(idx, arr)
            it.invoke()

        return invoke
    raise UsageError(f"cannot drive a {runner.format} model with {len(inputs)} inputs")
