"""Decoder runtime helpers of edgekd.hf: the KV-cache ONNX runner (edgekd.runtime.decoder.OrtDecoder, re-exported
here), peak-RSS readings, and the fixed-window TFLite decoder's logits."""

from __future__ import annotations

import numpy as np

from edgekd.errors import EdgeKDError
from edgekd.runtime.decoder import ONNX_TYPES, OrtDecoder  # noqa: F401  (moved to the runtime layer)


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
