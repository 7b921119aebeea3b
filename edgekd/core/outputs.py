"""What a classifier returned: logits from a tensor, a tuple (first item), a dict or an HF ModelOutput.

In core because the runtime (its torch runner) and every stage read model outputs the same way.
"""

from __future__ import annotations


def logits_of(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):  # transformers' ModelOutput
        return out.logits
    if isinstance(out, dict) and "logits" in out:
        return out["logits"]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"cannot find logits in a model output of type {type(out).__name__} "
                    "(return a tensor, a tuple starting with the logits, or a dict/ModelOutput with 'logits')")
