"""Built-in student families, sized for phones and microcontrollers.

`cnn-*`: plain strided conv-BN-ReLU stacks (fast everywhere, quantize cleanly).
`mobilenet-*`: MobileNetV2-style inverted residuals (depthwise convs; the usual choice for NPUs).
`mobilenetv3-*`: MobileNetV3-style blocks (depthwise convs, hard-swish, squeeze-and-excitation with a
hard-sigmoid gate): the kind of model whose post-training int8 loses points (see edgekd.quantize.qat).
All use global average pooling, so they accept any input resolution and channel count.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.models.registry import register_model


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class PlainCNN(nn.Module):
    def __init__(self, widths: tuple[int, ...], in_channels: int = 1, num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        layers, cin = [], in_channels
        for w in widths:
            layers.append(_conv_bn(cin, w, stride=2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = [_conv_bn(cin, hidden, k=1)] if expand != 1 else []
        layers += [_conv_bn(hidden, hidden, stride=stride, groups=hidden), _conv_bn(hidden, cout, k=1, act=False)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


class MobileNetLike(nn.Module):
    def __init__(self, width: int, in_channels: int = 1, num_classes: int = 10, expand: int = 4):
        super().__init__()
        c1, c2, c3 = width, width * 2, width * 4
        self.features = nn.Sequential(
            _conv_bn(in_channels, c1, stride=2),
            InvertedResidual(c1, c1, 1, 1),
            InvertedResidual(c1, c2, 2, expand),
            InvertedResidual(c2, c2, 1, expand),
            InvertedResidual(c2, c3, 2, expand),
            InvertedResidual(c3, c3, 1, expand),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class SqueezeExcite(nn.Module):
    """Channel gate of MobileNetV3: global pool -> 1x1 reduce -> ReLU -> 1x1 expand -> hard-sigmoid -> scale."""

    def __init__(self, channels: int, reduce: int = 4):
        super().__init__()
        hidden = max(8, channels // reduce)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class V3Block(nn.Module):
    """MobileNetV3 bneck: 1x1 expand (hard-swish) -> depthwise kxk (hard-swish) -> SE -> 1x1 project."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, k: int = 3, se: bool = True):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.Hardswish()]
        layers += [nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.Hardswish()]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


class MobileNetV3Like(nn.Module):
    def __init__(self, width: int, in_channels: int = 1, num_classes: int = 10, expand: int = 4):
        super().__init__()
        c1, c2, c3 = width, width * 2, width * 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, 2, 1, bias=False), nn.BatchNorm2d(c1), nn.Hardswish(),
            V3Block(c1, c1, 1, 1),
            V3Block(c1, c2, 2, expand, k=5),
            V3Block(c2, c2, 1, expand, k=5),
            V3Block(c2, c3, 2, expand),
            V3Block(c3, c3, 1, expand),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(c3, c3 * 2), nn.Hardswish())
        self.classifier = nn.Linear(c3 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.pool(self.features(x)).flatten(1)))


_CNN_SIZES = {"xs": (8, 16, 32), "s": (16, 32, 64), "m": (32, 64, 128), "l": (48, 96, 192)}
_MOBILENET_SIZES = {"xs": 8, "s": 16, "m": 24}
_MOBILENETV3_SIZES = {"xs": 8, "s": 16}

for _size, _widths in _CNN_SIZES.items():
    register_model(f"cnn-{_size}")(lambda in_channels=1, num_classes=10, _w=_widths, **kw: PlainCNN(_w, in_channels, num_classes, **kw))
for _size, _width in _MOBILENET_SIZES.items():
    register_model(f"mobilenet-{_size}")(lambda in_channels=1, num_classes=10, _w=_width, **kw: MobileNetLike(_w, in_channels, num_classes, **kw))
for _size, _width in _MOBILENETV3_SIZES.items():
    register_model(f"mobilenetv3-{_size}")(lambda in_channels=1, num_classes=10, _w=_width, **kw: MobileNetV3Like(_w, in_channels, num_classes, **kw))

DEFAULT_STUDENT = "cnn-s"
