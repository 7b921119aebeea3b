"""The built-in example's teacher: a small ResNet for 28x28 grayscale images (~9 M MACs, ~0.12 M params)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

HERE = Path(__file__).resolve().parent


class BasicBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(x + self.bn2(self.conv2(y)))


def _down(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FashionTeacher(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16):
        super().__init__()
        w = width
        self.stem = _down(in_channels, w, 1)
        self.layer1 = nn.Sequential(_down(w, 2 * w, 2), BasicBlock(2 * w))
        self.layer2 = nn.Sequential(_down(2 * w, 4 * w, 2), BasicBlock(4 * w))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(self.dropout(self.pool(x).flatten(1)))


def build_teacher() -> FashionTeacher:
    """Entrypoint for `edgekd compress --teacher examples.fashion_mnist.teacher:build_teacher`."""
    return FashionTeacher()


def weights_for(dataset: str) -> Path:
    """The committed weights for the built-in example on `dataset` ("fashion-mnist" or "digits")."""
    return HERE / ("teacher.pt" if dataset == "fashion-mnist" else f"teacher_{dataset}.pt")
