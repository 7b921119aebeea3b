"""Dense guidance (DGKD, Son et al., ICCV 2021): a student learns from the teacher and every assistant at once.

DGKD's soft loss is the sum over guides of KL(p_i || q) at temperature T. Its gradient in the student equals that of
n * KL(mean_i p_i || q), because the guides' entropies do not depend on the student: so one "teacher" whose
softened distribution is the guides' mean gives the same training signal through any KD term at the same T, the
teacher cache and every other part of the engine included. `DenseGuides` is that teacher: it returns
T * log(mean_i softmax(z_i / T)), whose softmax at T is the guides' mean. Its argmax is the guides' ensemble
prediction (what "teacher val acc" then reports). Not applied: DGKD's random removal of guides at each step
(with cached teacher outputs the guides are fixed per sample).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekd.core.outputs import logits_of


class DenseGuides(nn.Module):
    def __init__(self, guides: list[nn.Module], temperature: float = 4.0):
        super().__init__()
        if not guides:
            raise ValueError("DenseGuides needs at least one guide model")
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        self.guides = nn.ModuleList(guides)
        self.temperature = float(temperature)

    def forward(self, x):
        t = self.temperature
        logp = torch.stack([torch.log_softmax(logits_of(g(x)).float() / t, -1) for g in self.guides])
        return t * (torch.logsumexp(logp, 0) - math.log(len(self.guides)))
