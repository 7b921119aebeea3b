"""Model sources: built-in student families (by name, timm-style) and user models from entrypoints or files."""

from edgekd.models.checkpoint import load_portable, load_weights, save_portable
from edgekd.models.factory import create_model, list_models
from edgekd.models.loading import load_model, parse_entrypoint
from edgekd.models.measure import count_macs_params
from edgekd.models.registry import register_model

__all__ = [
    "count_macs_params",
    "create_model",
    "list_models",
    "load_model",
    "load_portable",
    "load_weights",
    "parse_entrypoint",
    "register_model",
    "save_portable",
]
