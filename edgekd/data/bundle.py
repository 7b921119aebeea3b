"""The in-memory dataset every stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ArrayDataset:
    x: np.ndarray  # float32, (N, C, H, W), normalised
    y: np.ndarray | None  # int64 labels, None when unlabeled

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, n: int, seed: int = 0) -> "ArrayDataset":
        if n >= len(self):
            return self
        idx = np.random.default_rng(seed).choice(len(self), size=n, replace=False)
        return ArrayDataset(self.x[idx], None if self.y is None else self.y[idx])


@dataclass
class DataBundle:
    name: str
    train: ArrayDataset
    val: ArrayDataset  # held out from train: model selection and accuracy budgets
    test: ArrayDataset  # the real test set: the figures in reports
    num_classes: int
    input_shape: tuple[int, ...]  # per sample, (C, H, W)
    mean: list[float]
    std: list[float]
    layout: str = "NCHW"
    source: dict[str, Any] = field(default_factory=dict)  # where it came from, hashes

    @property
    def where(self) -> str:
        """How messages name the data: its file or folder when it has one."""
        return str(self.source.get("path") or self.name)

    def skipped_note(self) -> str | None:
        """A warning when an image folder held files that could not be read as images (they were left out)."""
        bad = self.source.get("skipped_unreadable")
        if not bad:
            return None
        return f"{len(bad)} unreadable file(s) in {self.where} were skipped, e.g. {bad[0]}"

    @property
    def noun(self) -> str:
        """What one sample is called in messages."""
        return "samples" if self.layout == "NF" else "images"

    @property
    def labelled(self) -> bool:
        return self.train.y is not None

    @property
    def test_name(self) -> str:
        """How reports name the test split: given by the data, or held out of it by edgekd."""
        if self.source.get("test_split") == "held out":
            return f"the test split ({len(self.test)} {self.noun} held out of {self.where}, a fifth, seeded)"
        return f"the test split of {self.where} ({len(self.test)} {self.noun})"

    def held_out(self) -> tuple[ArrayDataset, str]:
        """Data a stage may score on, never used for training or calibration, and how to name it: the test split
        when the data gave one (an .npz x_test, a test/ folder, a dataset's test set), else the validation split."""
        if self.source.get("test_split") == "given" and len(self.test):
            return self.test, self.test_name
        return self.val, (f"the validation split ({len(self.val)} {self.noun} held out of {self.where}'s training "
                          "data, not used for calibration)")

    def calibration(self, n: int = 256, seed: int = 0) -> np.ndarray:
        """Real training images for int8 calibration."""
        return self.train.subset(n, seed).x

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "layout": self.layout,
            "normalisation": {"mean": self.mean, "std": self.std},
            **self.source,
        }
