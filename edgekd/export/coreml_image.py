"""Core ML image inputs as an app feeds them: a `ct.ImageType` of raw 0..255 pixels (a CVPixelBuffer / CGImage),
with the normalisation the model was trained with folded into Core ML's preprocessing, so the app does no maths.

Core ML computes `scale * pixel + bias` per channel, with ONE scale for all channels and a bias per channel.
edgekd's data are pixels / 255, standardised per channel: n_c = (pixel / 255 - mean_c) / std_c. So
    scale = 1 / (255 * r),  bias_c = -mean_c / r
with r = std_c when every channel has the same std (grayscale; `--normalize half`): the whole normalisation is
in the spec. When the stds differ (ImageNet statistics), r is their mean and the per-channel remainder r / std_c
is one `mul` at the start of the program (Core ML's own preprocessing has no per-channel scale).
Grayscale for 1 channel, RGB for 3 (BGR when the model was trained on BGR data); any other input (feature
vectors, token ids, 2 or 4 channels) stays a TensorType, and the export says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekd.targets import COREML_COLOR_LAYOUTS as COLOR_LAYOUTS  # the order of a 3-channel model's channels
from edgekd.targets import COREML_INPUTS as INPUTS

_SAME_STD = 1e-6  # relative: stds this close are one scale


@dataclass(frozen=True)
class ImageInput:
    color_layout: str  # GRAYSCALE | RGB | BGR (ct.colorlayout)
    height: int
    width: int
    scale: float  # Core ML: scale * pixel + bias, pixel in 0..255
    bias: tuple[float, ...]  # per channel, in the model's channel order
    channel_scale: tuple[float, ...] | None = None  # the per-channel remainder, multiplied in the program

    @property
    def channels(self) -> int:
        return len(self.bias)

    def describe(self) -> str:
        rest = (f"; per-channel factor {', '.join(f'{k:.6g}' for k in self.channel_scale)} as one mul in the program"
                if self.channel_scale else "")
        return (f"image input ({self.color_layout} {self.width}x{self.height}, raw 0..255 pixels): Core ML's "
                f"preprocessing scale {self.scale:.6g}, bias {', '.join(f'{b:.6g}' for b in self.bias)} (the training "
                f"normalisation, folded){rest}")


def plan_input(inputs: tuple, requested: str, normalisation, color_layout: str = "RGB") -> tuple[ImageInput | None, str | None]:
    """(the image input to write, None) or (None, why the input stays a TensorType; None when it was asked for).
    inputs: the sample as tensors; normalisation: (mean, std) per channel, on pixels / 255."""
    from edgekd.errors import EdgeKDError

    if requested not in INPUTS:
        raise EdgeKDError(f"Core ML input must be one of {', '.join(INPUTS)}, not {requested!r}")
    if color_layout not in COLOR_LAYOUTS:
        raise EdgeKDError(f"Core ML color layout must be one of {', '.join(COLOR_LAYOUTS)}, not {color_layout!r}")
    if requested == "tensor":
        return None, None
    x = inputs[0] if len(inputs) == 1 else None
    if x is None or x.ndim != 4 or not x.is_floating_point() or x.shape[1] not in (1, 3):
        what = (f"{len(inputs)} inputs" if x is None else f"a {tuple(x.shape[1:])} {x.dtype} input".replace("torch.", ""))
        return None, (f"Core ML input is a TensorType, not an image: the model takes {what}, not one 1- or 3-channel "
                      "image (feature vectors, text and other channel counts are fed as MLMultiArray)")
    if normalisation is None:
        raise EdgeKDError("a Core ML image input needs the normalisation the model was trained with (mean, std per "
                          "channel) to fold into its preprocessing")
    c, h, w = (int(d) for d in x.shape[1:])
    mean, std = ([float(v) for v in vals] for vals in normalisation)
    if len(mean) == 1:
        mean = mean * c
    if len(std) == 1:
        std = std * c
    if len(mean) != c or len(std) != c or min(std) <= 0:
        raise EdgeKDError(f"normalisation mean {mean} / std {std} does not fit a {c}-channel image")
    same = max(std) - min(std) <= _SAME_STD * max(std)
    r = std[0] if same else sum(std) / c
    layout = "GRAYSCALE" if c == 1 else color_layout
    return ImageInput(layout, h, w, scale=1.0 / (255.0 * r), bias=tuple(-m / r for m in mean),
                      channel_scale=None if same else tuple(r / s for s in std)), None
