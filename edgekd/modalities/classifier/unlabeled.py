"""Images without labels (an image folder with no class sub-folders, an .npz with only x): the student learns
from the teacher alone, and every figure is agreement, never accuracy.

- Training: the recipe's soft terms see the teacher's distribution; its hard-label terms (ce) see the
  teacher's top-1 (pseudo-labels, edgekd.distill.pseudo; every image kept unless pseudo_labels.threshold).
- Training views: crop-flip augmentation with TRAIN_VIEWS cached teacher views per image unless the user set
  train.augment / train.views (a few dozen photos would otherwise be a few dozen samples).
- Held-out splits (validation and test, taken from the data as with labels) are expanded into deterministic
  crop-flip views (the distillation cache's Augmenter, fixed seed), so a few dozen photos give hundreds of
  scored views; the views of one photo stay in its split.
- The report's column is top-1 agreement with the teacher; the exported files also say their top-1 agreement
  with the PyTorch student they were made from.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgekd.errors import EdgeKDError, UsageError

HELD_OUT_VIEWS = 8  # crop-flip views per held-out image (view 0 is the image as stored)
TRAIN_VIEWS = 16  # crop-flip views per training image the teacher labels (cached), unless --set train.views
METRIC = "top-1 agreement with the teacher"
COLUMN = "agreement w/ teacher %"
FEW_IMAGES = 20  # held-out images below which the report says how coarse its agreement figures are


def held_out_views(x: np.ndarray, views: int = HELD_OUT_VIEWS) -> np.ndarray:
    """(N * views) images: each image as stored, then views-1 crop-flip views of it (pure function of index and
    view: the same views on every run)."""
    import torch

    from edgekd.distill.cache import Augmenter

    if x.ndim != 4 or views <= 1 or len(x) == 0:
        return x
    aug = Augmenter("crop-flip", len(x), views, tuple(x.shape[-2:]))
    t = torch.from_numpy(np.ascontiguousarray(x))
    idx = np.arange(len(x))
    out = [x] + [aug.apply(t, idx, np.full(len(x), v)).numpy() for v in range(1, views)]
    return np.concatenate(out).astype(np.float32)


def prepare_unlabeled(data, teacher) -> tuple[object, str]:
    """The bundle with num_classes set from the teacher's outputs and its val/test expanded into views; and
    the sentence the report carries about what the figures mean."""
    import torch

    from edgekd.core.outputs import logits_of

    with torch.no_grad():
        k = int(logits_of(teacher.eval()(torch.from_numpy(data.test.x[:1]))).shape[-1])
    if k < 2:
        raise EdgeKDError(f"the teacher outputs {k} value(s) per sample: distilling unlabeled data needs a classifier")
    views = HELD_OUT_VIEWS if data.layout == "NCHW" else 1
    n_val, n_test = len(data.val), len(data.test)
    val = dataclasses.replace(data.val, x=held_out_views(data.val.x, views))
    test = dataclasses.replace(data.test, x=held_out_views(data.test.x, views))
    source = {**data.source, "held_out_views": views, "val_images": n_val, "test_images": n_test}
    data = dataclasses.replace(data, val=val, test=test, num_classes=k, source=source)
    what = (f"{data.where} has no labels: the student learns from the teacher alone (soft targets, and the "
            f"teacher's top-1 as the hard label of any label term), and every figure is {METRIC} "
            f"on {len(test)} held-out views ({n_test} images x {views} crop-flip views"
            f"), never accuracy; exported files also give their agreement with the "
            "PyTorch student")
    if views > 1 and n_test < FEW_IMAGES:  # views of one image mostly agree or disagree together
        what += (f". Only {n_test} held-out images (and {n_val} for validation): the views of one image are not "
                 f"independent, so a figure can move by up to {100 / n_test:.0f} points with one image; give more "
                 "images for figures that can tell students apart")
    return data, what


def check_options(cfg) -> None:
    """Options that need labels."""
    if cfg.baseline != "none":
        raise UsageError("--baseline scratch trains on labels only, and this data has none")


def views_by_default(cfg, data):
    """The config with crop-flip training views on images, unless the user chose train.augment / train.views."""
    if data.layout != "NCHW":
        return cfg
    ov = dict(cfg.overrides)
    ov.setdefault("train.augment", "crop-flip")
    ov.setdefault("train.views", TRAIN_VIEWS)
    return dataclasses.replace(cfg, overrides=ov)
