"""Knowledge distillation: loss modules, TOML recipes and the training engine.

    from edgekd.distill import distill
    result = distill(teacher, student, data, recipe="auto", epochs=3)
    result.student, result.metrics, result.best_checkpoint
"""

from edgekd.distill.api import distill
from edgekd.distill.engine import DistillResult
from edgekd.distill.losses import (
    AttentionTransferLoss,
    CELoss,
    CosineAlignmentLoss,
    HintLoss,
    KDLoss,
    RKDLoss,
    TokenKDLoss,
    attention_map,
    soft_kl,
)
from edgekd.distill.recipe import Recipe, builtin_recipes, load_recipe
from edgekd.distill.hooks import FeatureTaps
from edgekd.distill.pseudo import pseudo_label
from edgekd.distill.cache import TeacherCache

__all__ = [
    "AttentionTransferLoss", "CELoss", "CosineAlignmentLoss", "DistillResult", "FeatureTaps", "HintLoss", "KDLoss",
    "RKDLoss", "Recipe", "TeacherCache", "TokenKDLoss", "attention_map", "builtin_recipes", "distill",
    "load_recipe", "pseudo_label", "soft_kl",
]
