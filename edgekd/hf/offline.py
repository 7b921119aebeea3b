"""Keep Hugging Face libraries offline and off TensorFlow: set before transformers is imported."""

from __future__ import annotations

import os


def hf_offline() -> None:
    """Nothing in edgekd.hf may download at run time; TF import would only cost ~10 s and memory."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("USE_TF", "0")
    os.environ.setdefault("USE_FLAX", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
