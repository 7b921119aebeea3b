"""Distillation losses as plain nn.Modules on tensors, reusable outside the engine (prune, hf), and the
recipe loss types they back (each module registers its own with @register_loss, see registry.py).

A new loss is one new module in this package: every module here is imported, so its registration runs.
"""

import importlib
import pkgutil

from edgekd.distill.losses.feature import (
    AttentionTransferLoss,
    CosineAlignmentLoss,
    HintLoss,
    RKDLoss,
    attention_map,
)
from edgekd.distill.losses.logit import (
    CELoss,
    DISTLoss,
    DKDLoss,
    KDLoss,
    TokenKDLoss,
    dkd_parts,
    pearson_rows,
    soft_kl,
    standardize_logits,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "AttentionTransferLoss", "CELoss", "CosineAlignmentLoss", "DISTLoss", "DKDLoss", "HintLoss", "KDLoss",
    "RKDLoss", "TokenKDLoss", "attention_map", "dkd_parts", "pearson_rows", "soft_kl", "standardize_logits",
]
