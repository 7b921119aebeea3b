"""A decoder ONNX file with KV cache (optimum's text-generation-with-past layout) in ONNX Runtime: full-sequence
logits for scoring, prefill + one-token decode steps for greedy generation and timing (edgekd.hf's decoder files,
and `edgekd gate`'s decode-speed A/B, which is why it lives in the runtime layer).

The file's inputs are input_ids, attention_mask, position_ids (some architectures), past_key_values.<i>.key /
.value; outputs logits then present.<i>.key / .value. An empty past (length 0) is a prefill.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekd.errors import EdgeKDError
from edgekd.runtime.sessions import ort_session

ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class OrtDecoder:
    def __init__(self, path: str | Path, threads: int = 2, session: Any = None):
        self.path = Path(path)
        self.sess = session if session is not None else ort_session(self.path, threads=threads, log_severity=3)
        ins = {i.name: i for i in self.sess.get_inputs()}
        self.names = list(ins)
        self.past = [n for n in self.names if n.startswith("past_key_values.")]
        if "input_ids" not in ins or not self.past:
            raise EdgeKDError(f"{self.path}: not a decoder ONNX file with KV cache (want input_ids and past_key_values.* inputs)")
        p = ins[self.past[0]]
        self.kv_heads, self.head_dim = int(p.shape[1]), int(p.shape[3])
        self.kv_dtype = ONNX_TYPES.get(p.type, np.float32)
        self.outputs = [o.name for o in self.sess.get_outputs()]

    def _run(self, ids: np.ndarray, mask: np.ndarray, past: dict | None, start: int = 0):
        b = ids.shape[0]
        feed = {"input_ids": ids.astype(np.int64)}
        if "attention_mask" in self.names:
            feed["attention_mask"] = mask.astype(np.int64)
        if "position_ids" in self.names:  # as transformers does: count real tokens, padding at 0
            pos = np.cumsum(mask, axis=1) - 1
            feed["position_ids"] = np.clip(pos[:, -ids.shape[1]:], 0, None).astype(np.int64)
        empty = np.zeros((b, self.kv_heads, 0, self.head_dim), self.kv_dtype)
        for n in self.past:
            feed[n] = past[n] if past else empty
        out = self.sess.run(None, feed)
        presents = {n.replace("present.", "past_key_values."): v for n, v in zip(self.outputs[1:], out[1:])}
        return out[0], presents

    def logits(self, batch: dict) -> np.ndarray:
        """Logits (B, L, V) of a whole batch (a prefill with no past)."""
        ids = batch["input_ids"]
        return self._run(ids, batch.get("attention_mask", np.ones_like(ids)), None)[0]

    def prefill(self, ids: np.ndarray):
        """(last-position logits, past) for a prompt of shape (1, L)."""
        logits, past = self._run(ids, np.ones_like(ids), None)
        return logits[:, -1], past

    def decode(self, last_logits: np.ndarray, past: dict, length: int, n: int) -> list[int]:
        """n greedy tokens, one decode step each (the KV cache grows by one per step)."""
        tokens = []
        tok = int(last_logits[0].argmax())
        for i in range(n):
            tokens.append(tok)
            if i == n - 1:
                break
            mask = np.ones((1, length + i + 1), np.int64)
            logits, past = self._run(np.array([[tok]], np.int64), mask, past)
            tok = int(logits[0, -1].argmax())
        return tokens

    def greedy(self, ids: np.ndarray, n: int) -> list[int]:
        last, past = self.prefill(ids)
        return self.decode(last, past, ids.shape[1], n)

    def step_invoke(self, prompt_len: int = 16) -> Callable[[], Any]:
        """One decode step at a fixed context (a prompt of prompt_len token ids prefilled once, the same KV cache
        every call): each call's time is one decoded token's, so tokens/s = 1000 / ms per call."""
        last, past = self.prefill(np.ones((1, prompt_len), np.int64))  # id 1: valid in any vocabulary
        tok = np.array([[int(last[0].argmax())]], np.int64)
        mask = np.ones((1, prompt_len + 1), np.int64)
        return lambda: self._run(tok, mask, past)


def is_kv_decoder(inputs: list[dict]) -> bool:
    """An `edgekd inspect` input list of a KV-cache decoder file (input_ids and past_key_values.* inputs)."""
    names = [str(e.get("name")) for e in inputs or []]
    return "input_ids" in names and any(n.startswith("past_key_values.") for n in names)
