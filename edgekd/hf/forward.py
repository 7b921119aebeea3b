"""One forward pass of an HF model, reduced to what distillation and evaluation compare.

Shared by training (torch tensors, with grad) and evaluation (numpy, any runtime) so the pooling
rule is written once.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


def pool(hidden, mask, mode: str, normalize: bool):
    """Sentence embedding from token states (B, L, H): mean over real tokens or the CLS token."""
    import torch.nn.functional as F

    if mode == "cls":
        e = hidden[:, 0]
    else:
        m = mask.unsqueeze(-1).to(hidden.dtype)
        e = (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
    return F.normalize(e, dim=-1) if normalize else e


def accepts(model, name: str) -> bool:
    """Does model.forward take this input? A BERT tokenizer makes token_type_ids; DistilBERT refuses them."""
    names, any_kw = _forward_params(type(model))
    return any_kw or name in names


@functools.lru_cache(maxsize=None)
def _forward_params(cls) -> tuple[frozenset, bool]:
    # per class, once: run_model asks for every training batch
    params = inspect.signature(cls.forward).parameters
    return frozenset(params), any(p.kind is p.VAR_KEYWORD for p in params.values())


def model_args(model, batch: dict) -> dict:
    """The tokenizer's outputs that `model` takes."""
    return {k: v for k, v in batch.items() if accepts(model, k)}


def run_model(model, batch: dict, kind: str, *, pooling: str = "mean", normalize: bool = True,
              layers: list[int] | None = None) -> dict[str, Any]:
    """-> {"hidden": last hidden state (B, L, H), "emb": pooled (B, H) [embedding], "logits": [mlm/cls/causal-lm],
    "layers": [hidden_states[i] for i in `layers`] when asked (index 0: the embeddings' output)}."""
    no_cache = {"use_cache": False} if kind == "causal-lm" else {}  # training/scoring never reuses the KV cache
    out = model(**model_args(model, batch), output_hidden_states=kind != "embedding" or bool(layers), **no_cache)
    if kind == "embedding":
        hidden = out.last_hidden_state
        res = {"hidden": hidden, "emb": pool(hidden, batch["attention_mask"], pooling, normalize)}
    else:
        res = {"hidden": out.hidden_states[-1], "logits": out.logits}
    if layers:
        res["layers"] = [out.hidden_states[i] for i in layers]
    return res


def model_inputs(tokenizer, texts: list[str], max_length: int, *, pad_to: int | None = None) -> dict:
    """Tokenise to torch tensors; pad to the longest in the batch, or to `pad_to` (fixed-shape files)."""
    return tokenizer(texts, padding="max_length" if pad_to else True, max_length=pad_to or max_length,
                     truncation=True, return_tensors="pt")
