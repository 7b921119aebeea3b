"""Architectures of the distillation suite's kept-back pairs (issue 18): families none of the fitted pairs use.

These pairs were added after auto's short-run defaults (PRIOR_RECIPE_SHORT, PRIOR_SHORT_STEPS, PRIOR_RECIPE) were
fixed on the other digits pairs; they only check whether that rule carries, and must never be used to tune it.
"""

from __future__ import annotations

from torch import nn


class RowGRU(nn.Module):
    """A 2-layer GRU that reads an 8x8 digit as 8 rows of 8 pixels; the last hidden state classifies."""

    def __init__(self, c=1, k=10, hidden=128, layers=2):
        super().__init__()
        self.gru = nn.GRU(8 * c, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, k)

    def forward(self, x):
        rows = x.permute(0, 2, 1, 3).flatten(2)  # (B, H, C*W): one step per image row
        return self.head(self.gru(rows)[0][:, -1])


class MixerBlock(nn.Module):
    def __init__(self, tokens, d, token_hidden, channel_hidden):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.token_mlp = nn.Sequential(nn.Linear(tokens, token_hidden), nn.GELU(), nn.Linear(token_hidden, tokens))
        self.channel_mlp = nn.Sequential(nn.Linear(d, channel_hidden), nn.GELU(), nn.Linear(channel_hidden, d))

    def forward(self, t):
        t = t + self.token_mlp(self.norm1(t).transpose(1, 2)).transpose(1, 2)
        return t + self.channel_mlp(self.norm2(t))


class Mixer8(nn.Module):
    """An MLP-Mixer for 8x8 images: 2x2 patches (16 tokens), d 64, 4 blocks, mean-pooled tokens."""

    def __init__(self, c=1, k=10, d=64, depth=4, patch=2, image=8):
        super().__init__()
        tokens = (image // patch) ** 2
        self.embed = nn.Conv2d(c, d, patch, patch)
        self.blocks = nn.Sequential(*[MixerBlock(tokens, d, 32, 2 * d) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, k)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(t)).mean(1))


def row_gru(c=1, k=10):
    return RowGRU(c, k)


def mixer8(c=1, k=10):
    return Mixer8(c, k)


def pixel_mlp(c=1, k=10):
    """The tiniest student: 64 pixels -> 16 -> 10 (~1.2 k MACs), for the largest gap."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64 * c, 16), nn.ReLU(), nn.Linear(16, k))
