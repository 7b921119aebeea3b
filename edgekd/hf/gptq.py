"""GPTQ (Frantar et al., ICLR 2023) for ONNX Runtime's weight-only quantizer, whose own port does not apply it.

onnxruntime 1.32's neural-compressor GPTQ (`quantization.neural_compressor.weight_only.gptq`) works on an ONNX MatMul
weight laid out (in, out) and spreads each quantized row's error with a *column* of the upper Cholesky factor of the
inverse Hessian, below the diagonal, where that factor is zero. Nothing is spread, and the result is round to nearest:
on SmolLM2's 10-layer student the packed int4 weights came out byte-identical to the default quantizer's. `row_gptq`
is the same algorithm with the error carried by the factor's *row*; `ort_gptq_fixed` swaps it in for one
MatMulNBitsQuantizer pass, which still does the calibration, the Hessians and the packing.
"""

from __future__ import annotations

import contextlib

import numpy as np


def _group_params(rows: np.ndarray, maxq: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point per output column of one group of input rows, unsigned grid 0..maxq (ORT's layout)."""
    lo = np.minimum(rows.min(0), 0.0)
    hi = np.maximum(rows.max(0), 0.0)
    if symmetric:
        hi = np.maximum(-lo, hi)
        lo = np.where(lo < 0, -hi, lo)
    empty = (lo == 0) & (hi == 0)
    lo, hi = np.where(empty, -1.0, lo), np.where(empty, 1.0, hi)
    scale = (hi - lo) / maxq
    zero = np.full_like(scale, (maxq + 1) / 2) if symmetric else np.round(-lo / scale)
    return scale, zero


def row_gptq(W, H, num_bits: int = 4, group_size: int = 32, scheme: str = "asym", percdamp: float = 0.01,
             **_ignored) -> np.ndarray:
    """Fake-quantized W (in, out): rows quantized in order, each one's error (scaled by the factor's diagonal)
    subtracted from the rows still to come. H: the (in, in) Hessian of the layer's inputs. The keyword arguments
    ORT passes for its own variant (blocksize, actorder, mse, perchannel) do not change the result here."""
    w = np.array(W, dtype=np.float64)
    h = np.array(H, dtype=np.float64)
    k = w.shape[0]
    maxq = 2 ** num_bits - 1
    dead = np.diag(h) == 0  # inputs that never fire: their rows cannot matter
    h[dead, dead] = 1.0
    w[dead, :] = 0.0
    h[np.arange(k), np.arange(k)] += percdamp * np.mean(np.diag(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper triangular
    group = k if group_size == -1 else group_size
    q = np.zeros_like(w)
    scale = zero = None
    for i in range(k):
        if i % group == 0:  # the group's grid from its rows as they stand, after the earlier rows' errors
            scale, zero = _group_params(w[i:i + group], maxq, scheme == "sym")
        q[i] = scale * (np.clip(np.round(w[i] / scale) + zero, 0, maxq) - zero)
        err = (w[i] - q[i]) / u[i, i]
        w[i + 1:] -= np.outer(u[i, i + 1:], err)
    return q.astype(np.asarray(W).dtype)


@contextlib.contextmanager
def ort_gptq_fixed():
    """ORT's GPTQ pass with `row_gptq` in place of its own per-weight step, for the duration of the block."""
    from onnxruntime.quantization.neural_compressor import weight_only

    own = weight_only.gptq
    weight_only.gptq = row_gptq
    try:
        yield
    finally:
        weight_only.gptq = own


class PrefillCalibration:
    """GPTQ's calibration inputs for an optimum decoder file (an ORT CalibrationDataReader): prefills of token blocks
    with an empty KV past. `blocks`: lm_batches dicts with int64 "input_ids" of shape (1, T)."""

    def __init__(self, onnx_path, blocks: list):
        import onnxruntime as ort

        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        self.ins = {i.name: list(i.shape) for i in sess.get_inputs()}  # plain data: ORT deep-copies the reader
        self.blocks, self.i = blocks, 0

    def feed(self, ids: np.ndarray) -> dict:
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "position_ids" in self.ins:
            feed["position_ids"] = np.arange(ids.shape[1])[None].astype(np.int64)
        for name, shape in self.ins.items():
            if name.startswith("past_key_values."):  # (batch, kv heads, 0 past tokens, head dim)
                feed[name] = np.zeros((ids.shape[0], shape[1], 0, shape[3]), np.float32)
        return feed

    def get_next(self):
        if self.i >= len(self.blocks):
            return None
        self.i += 1
        return self.feed(self.blocks[self.i - 1]["input_ids"])

    def rewind(self):
        self.i = 0

    def __iter__(self):
        return (self.feed(b["input_ids"]) for b in self.blocks)


def calibration_blocks(tokenizer, texts: list[str], blocks: int = 16, length: int = 128) -> list:
    """Full-length token blocks of training text for GPTQ's Hessians (16 x 128 tokens: 2 048, what the suite used)."""
    from edgekd.hf.lm_eval import lm_batches

    return [b for b in lm_batches(tokenizer, texts, max_length=length, batch_size=1, limit=blocks)
            if b["input_ids"].shape[1] == length]
