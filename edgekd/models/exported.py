"""A torch.export program (.pt2) as an ordinary nn.Module that edgekd's stages can train against and export.

`ExportedProgram.module()` refuses .train()/.eval() (its train/eval behaviour was fixed when it was traced) and
often has its batch size fixed at the example's (1): stages call .eval() on teachers and feed whole batches.
"""

from __future__ import annotations

import torch
from torch import nn


class ExportedModule(nn.Module):
    def __init__(self, program_module: nn.Module):
        super().__init__()
        self.program = program_module
        self.per_sample: bool | None = None  # found on the first batch of more than one sample

    def train(self, mode: bool = True) -> "ExportedModule":
        self.training = mode  # the graph keeps the mode it was exported in; only the flag changes
        return self

    def forward(self, x: torch.Tensor):
        if self.per_sample is None and x.shape[0] > 1:
            try:
                out = self.program(x)
                self.per_sample = False
                return out
            except Exception:  # a batch fixed at export time: run sample by sample (a guard error otherwise)
                self.per_sample = True
        if self.per_sample and x.shape[0] > 1:
            return _cat([self.program(x[i : i + 1]) for i in range(x.shape[0])])
        return self.program(x)


def _cat(outs: list):
    first = outs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outs)
    if isinstance(first, (tuple, list)):
        return type(first)(_cat([o[k] for o in outs]) for k in range(len(first)))
    if isinstance(first, dict):
        return {k: _cat([o[k] for o in outs]) for k in first}
    return first
