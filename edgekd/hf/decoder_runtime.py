"""Run a decoder ONNX file with KV cache (optimum's text-generation-with-past layout) in ONNX Runtime:
full-sequence logits for scoring, prefill + one-token decode steps for greedy generation and timing.

The file's inputs are input_ids, attention_mask, position_ids (some architectures), past_key_values.<i>.key /
.value; outputs logits then present.<i>.key / .value. An empty past (length 0) is a prefill.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.errors import EdgeKDError
from edgekd.runtime.sessions import ort_session

ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class OrtDecoder:
    def __init__(self, path: str | Path, threads: int = 2):
        self.path = Path(path)
        self.sess = ort_session(self.path, threads=threads, log_severity=3)
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


def proc_status_kb(field: str) -> int | None:
    """VmRSS / VmHWM of this process from /proc (Linux), in kB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM, so the next peak covers what follows only."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def tflite_lm(path, seq_len_pad_id: int = 0, threads: int = 2):
    """logits(batch) for the fixed-window TFLite decoder: each row right-padded to the file's window (mask 0 there;
    a causal model's real positions do not see the padding) and the logits of its real positions returned."""
    from edgekd.runtime.sessions import litert_interpreter

    runner = litert_interpreter(path, threads=threads).get_signature_runner()
    names = sorted(runner.get_input_details())  # args_0 = input_ids, args_1 = attention_mask
    window = int(runner.get_input_details()[names[0]]["shape"][-1])

    def fn(b: dict) -> np.ndarray:
        ids = b["input_ids"]
        if ids.shape[1] > window:
            raise EdgeKDError(f"the TFLite decoder takes at most {window} tokens, got {ids.shape[1]}")
        rows = []
        for r in range(ids.shape[0]):
            x = np.full((1, window), seq_len_pad_id, np.int32)
            mask = np.zeros((1, window), np.int32)
            x[0, :ids.shape[1]], mask[0, :ids.shape[1]] = ids[r], 1
            out = runner(**{names[0]: x, names[1]: mask})
            rows.append(next(iter(out.values()))[0, :ids.shape[1]])
        return np.stack(rows)

    return fn
