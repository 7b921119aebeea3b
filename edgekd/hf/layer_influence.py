"""Which teacher layers a depth-pruned student keeps: by block influence, measured on the user's text.

Block influence (ShortGPT, Men et al. 2024) of layer i is 1 - cos(h_i, h_{i+1}) between the hidden states
entering and leaving it, averaged over real tokens: a layer that barely turns the residual stream can go. In a
decoder the influence is very uneven (SmolLM2-135M, 30 layers: 0.99 for the first and the last, 0.16 for layers 1
and 24, 0.02-0.06 for the rest), so keeping the most influential layers starts a student far closer to its
teacher than spreading them evenly: SmolLM2 -> 10 layers, untrained held-out perplexity 363,837 by influence vs
7,174,341 evenly spread (benchmarks/results/decoder_distill.json, `layer_choice`; teacher 138). The first and last layers
are always kept (the embedding and output spaces live there).
"""

from __future__ import annotations

from typing import Sequence


def block_influence(teacher, texts: Sequence[str], *, max_length: int = 128, blocks: int = 8) -> list[float]:
    """Per teacher layer, 1 - mean cosine between its input and output hidden states on up to `blocks` packed
    token blocks of `texts` (a few blocks suffice: the ranking is stable; one teacher forward each)."""
    import torch

    from edgekd.errors import EdgeKDError
    from edgekd.hf.lm_eval import lm_batches

    batches = lm_batches(teacher.tokenizer, list(texts), max_length=max_length, batch_size=1, limit=blocks)
    if not batches:
        raise EdgeKDError("layer choice by influence needs some text: the training texts gave no token block")
    n = teacher.num_layers
    sums = torch.zeros(n, dtype=torch.float64)
    with torch.no_grad():
        for b in batches:
            out = teacher.model(input_ids=torch.as_tensor(b["input_ids"]),
                                attention_mask=torch.as_tensor(b["attention_mask"]), output_hidden_states=True)
            h = [x[0].double() for x in out.hidden_states]  # n + 1 states: embeddings, then after each layer
            for i in range(n):
                sums[i] += torch.nn.functional.cosine_similarity(h[i], h[i + 1], dim=-1).mean()
    return [round(1.0 - float(s) / len(batches), 6) for s in sums]


def most_influential(influence: Sequence[float], k: int) -> list[int]:
    """The k layers to keep: the first and the last, then the highest influence (ties: the earlier layer)."""
    n = len(influence)
    if k >= n:
        return list(range(n))
    ends = [0, n - 1][:k]
    rest = sorted((i for i in range(n) if i not in ends), key=lambda i: (-influence[i], i))
    return sorted(ends + rest[:k - len(ends)])
