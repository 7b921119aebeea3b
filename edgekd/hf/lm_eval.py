"""Held-out scores of decoder LMs: perplexity, next-token top-1 agreement and mean KL to the teacher, and
parity with the PyTorch student, for every model (torch, ONNX via ORT) in one pass over the same token blocks.

Each model is a `logits(batch) -> (B, L, V)` function; the teacher runs once per batch and every model is
scored against it there (its vocabulary-sized logits are never stored for the whole set).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

Logits = Callable[[dict], np.ndarray]
METRIC = "held-out next-token top-1 agreement with the teacher"


def lm_batches(tokenizer, texts: list[str], *, max_length: int, batch_size: int = 8, limit: int | None = None) -> list[dict]:
    """The texts packed into blocks of max_length tokens (EOS between texts), batched; numpy int64, no padding
    inside a batch (the shorter last block goes alone)."""
    from edgekd.hf.train import pack_tokens

    blocks = pack_tokens(tokenizer, texts, max_length)[:limit]
    full = [b for b in blocks if len(b) == max_length]
    out = [np.asarray(full[i:i + batch_size], np.int64) for i in range(0, len(full), batch_size)]
    out += [np.asarray([b], np.int64) for b in blocks if len(b) != max_length]
    return [{"input_ids": x, "attention_mask": np.ones_like(x)} for x in out]


def torch_logits(model) -> Logits:
    import torch

    def fn(b: dict) -> np.ndarray:
        with torch.no_grad():
            out = model(input_ids=torch.from_numpy(b["input_ids"]), attention_mask=torch.from_numpy(b["attention_mask"]),
                        use_cache=False)
        return out.logits.float().numpy()

    return fn


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


class _Tally:
    def __init__(self):
        self.nll = self.n = self.agree = self.kl = 0.0
        self.max_abs = 0.0
        self.same_top1 = self.n_ref = 0.0

    def add(self, logp: np.ndarray, t_logp: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> None:
        """logp / t_logp: (B, L, V) log-probs at positions 0..L-2 predicting tokens 1..L-1."""
        m = (mask[:, 1:] * mask[:, :-1]).astype(bool)
        tgt = ids[:, 1:]
        self.nll -= np.take_along_axis(logp, tgt[..., None], -1)[..., 0][m].sum()
        self.agree += (logp.argmax(-1) == t_logp.argmax(-1))[m].sum()
        self.kl += (np.exp(t_logp) * (t_logp - logp)).sum(-1)[m].sum()
        self.n += m.sum()

    def result(self) -> dict:
        n = max(self.n, 1)
        return {"perplexity": float(math.exp(self.nll / n)), "nll": float(self.nll / n),
                "top1_agreement": float(self.agree / n), "kl_to_teacher": float(self.kl / n), "tokens": int(self.n)}


def score_lms(models: dict[str, Logits], teacher: Logits, batches: list[dict], *, reference: str | None = None) -> dict:
    """{name: perplexity, nll, top1_agreement, kl_to_teacher, tokens [, parity vs `reference`]}, plus "teacher"."""
    tallies = {k: _Tally() for k in ["teacher", *models]}
    for b in batches:
        ids, mask = b["input_ids"], b["attention_mask"]
        t_logp = _log_softmax(teacher(b)[:, :-1])
        tallies["teacher"].add(t_logp, t_logp, ids, mask)
        raw = {k: f(b) for k, f in models.items()}
        for k, logits in raw.items():
            tallies[k].add(_log_softmax(logits[:, :-1]), t_logp, ids, mask)
            if reference and k != reference:
                ref, sel = raw[reference], mask.astype(bool)
                t = tallies[k]
                t.max_abs = max(t.max_abs, float(np.abs(logits - ref)[sel].max()))
                t.same_top1 += float((logits.argmax(-1) == ref.argmax(-1))[sel].sum())
                t.n_ref += float(sel.sum())
    res = {k: t.result() for k, t in tallies.items()}
    for k, t in tallies.items():
        if t.n_ref:
            res[k]["parity"] = {"max_abs_logit_diff": t.max_abs, "top1_match": t.same_top1 / t.n_ref}
    return res
