"""Agreement with the teacher on held-out text: the `accuracy` figure of HF artifacts.

- embedding:      Spearman correlation between the teacher's and the model's pairwise cosine
                  similarities over the held-out sentences (upper triangle),
- classification: top-1 agreement with the teacher's predicted class (plus label accuracy if any),
- mlm:            top-1 agreement with the teacher on masked tokens (fixed, seeded masking).
Every model (torch, ONNX via ORT, TFLite) is reduced to the same numpy outputs by an `encode`
function, so one scorer serves all formats.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

METRIC = {
    "embedding": "spearman of pairwise cosine similarities vs teacher",
    "classification": "top-1 agreement with teacher",
    "mlm": "masked-token top-1 agreement with teacher",
}


def eval_batches(teacher, texts: list[str], *, max_length: int, batch_size: int = 32, seed: int = 0,
                 pad_to: int | None = None) -> list[dict]:
    """Fixed tokenised batches (masked for mlm) that every model is scored on; numpy int64."""
    import torch

    from edgekd.hf.forward import model_inputs
    from edgekd.hf.train import _mask_tokens

    rng = np.random.default_rng(seed)
    out = []
    step = 1 if pad_to else batch_size
    for i in range(0, len(texts), step):
        b = dict(model_inputs(teacher.tokenizer, texts[i:i + step], max_length, pad_to=pad_to))
        if teacher.kind == "mlm":
            b, _ = _mask_tokens(b, teacher.tokenizer, 0.15, rng)
            b["mlm_positions"] = (b["input_ids"] == teacher.tokenizer.mask_token_id)
        out.append({k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in b.items()})
    return out


def torch_encoder(model, kind: str, *, pooling: str = "mean", normalize: bool = True) -> Callable[[dict], np.ndarray]:
    import torch

    from edgekd.hf.forward import run_model

    def enc(b: dict) -> np.ndarray:
        feed = {k: torch.from_numpy(v) for k, v in b.items() if k != "mlm_positions"}
        with torch.no_grad():
            out = run_model(model, feed, kind, pooling=pooling, normalize=normalize)
        return (out["emb"] if kind == "embedding" else out["logits"]).numpy()

    return enc


def reduce_output(raw: np.ndarray, b: dict, kind: str, *, pooling: str = "mean", normalize: bool = True) -> np.ndarray:
    """Runtime outputs (last_hidden_state or logits) -> what the scorer compares."""
    if kind == "embedding" and raw.ndim == 3:
        import torch

        from edgekd.hf.forward import pool

        return pool(torch.from_numpy(raw), torch.from_numpy(b["attention_mask"]), pooling, normalize).numpy()
    return raw


def collect(encode: Callable[[dict], np.ndarray], batches: list[dict], kind: str) -> np.ndarray:
    """Run every batch; for mlm keep only the argmax at masked positions (vocab logits are huge)."""
    parts = []
    for b in batches:
        y = np.asarray(encode(b), dtype=np.float32)
        if kind == "mlm":
            parts.append(y.argmax(-1)[b["mlm_positions"]])
        else:
            parts.append(y)
    return np.concatenate(parts)


def agreement(kind: str, student: np.ndarray, teacher: np.ndarray, labels: list[int] | None = None) -> dict[str, Any]:
    from scipy.stats import spearmanr

    res: dict[str, Any] = {"metric": METRIC[kind]}
    if kind == "embedding":
        iu = np.triu_indices(len(student), 1)

        def sims(e):
            e = e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-12)
            return (e @ e.T)[iu]

        res["agreement"] = float(spearmanr(sims(student), sims(teacher)).statistic)
        res["mean_cosine_to_teacher"] = None  # only defined when the widths agree
        if student.shape == teacher.shape:
            cos = (student * teacher).sum(1) / (np.linalg.norm(student, axis=1) * np.linalg.norm(teacher, axis=1)).clip(1e-12)
            res["mean_cosine_to_teacher"] = float(cos.mean())
    elif kind == "classification":
        res["agreement"] = float((student.argmax(-1) == teacher.argmax(-1)).mean())
        if labels is not None:
            res["label_accuracy"] = float((student.argmax(-1) == np.asarray(labels)).mean())
    else:
        res["agreement"] = float((student == teacher).mean())
    res["n"] = int(len(student))
    return res


def parity(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """How far an exported model's outputs are from the PyTorch student's on the same inputs."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = {"max_abs_diff": float(np.abs(a - b).max())}
    if a.ndim == 2 and a.shape == b.shape:
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)).clip(1e-12)
        out["min_cosine"] = float(cos.min())
    return out
