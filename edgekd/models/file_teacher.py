"""A trained model given as a file (.onnx or .tflite) used as a black-box teacher.

Users often hold only the exported teacher. Its logits are all Hinton-style distillation needs; it runs in
ONNX Runtime / LiteRT, so there are no gradients and no layers to hook (feature losses are left out, as for
any teacher whose layers do not match the student's).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.core.files import sha256_file


class FileTeacher(nn.Module):
    def __init__(self, path: str | Path):
        super().__init__()
        from edgekd.core.inputs import check_model_file

        self.path = check_model_file(path, "teacher file")
        self.format = self.path.suffix.lstrip(".")
        self._runner = None
        _ = self.runner  # load now: a bad file fails here, in one line
        # the file's hash as a buffer: run manifests fingerprint teachers by their state_dict
        digest = bytes.fromhex(sha256_file(self.path))
        self.register_buffer("file_sha256", torch.tensor(list(digest), dtype=torch.uint8), persistent=True)

    @property
    def runner(self):
        if self._runner is None:
            from edgekd.runtime import load_runner

            self._runner = load_runner(self.path, threads=torch.get_num_threads())
        return self._runner

    def __getstate__(self):  # deepcopy / pickle (Torch-Pruning's counter copies models): the session is remade
        return {**self.__dict__, "_runner": None}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.runner.predict(x.detach().cpu().numpy().astype(np.float32, copy=False))
        return torch.from_numpy(np.ascontiguousarray(y)).to(x.device)
