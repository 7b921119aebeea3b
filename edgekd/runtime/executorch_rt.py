"""Run an ExecuTorch program (.pte) in ExecuTorch's own Python runtime (the pybindings ship XNNPACK and the
portable kernels), the way the other file formats run in ONNX Runtime / LiteRT."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from edgekd.errors import EdgeKDError

MISSING = "ExecuTorch is not installed (pip install 'edgekd[executorch]')"


def quiet_import_logs() -> None:
    """torchao (imported with ExecuTorch) logs a deprecation warning through torch's pytree logger on import."""
    import logging

    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """The runtime's C++ logs cpuinfo probes on fd 2 when it starts; keep the user's terminal readable."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class PteMethod:
    """The `forward` method of one .pte file: input shapes from the file, numpy in, numpy out."""

    def __init__(self, path: str | Path, threads: int | None = None):
        quiet_import_logs()
        try:
            from executorch.runtime import Runtime
        except ImportError:
            raise EdgeKDError(MISSING) from None
        path = Path(path)
        with _quiet_stderr():
            runtime = Runtime.get()
            if threads:
                from executorch.extension.pybindings import portable_lib

                portable_lib._unsafe_reset_threadpool(int(threads))  # XNNPACK's pool; the default is every core
            try:
                program = runtime.load_program(str(path))
                self.method = program.load_method("forward")
            except Exception as exc:  # the runtime's own message, as one line
                why = (str(exc).strip().splitlines() or [""])[0][:200]
                raise EdgeKDError(f"{path.name} does not load in the ExecuTorch runtime: {type(exc).__name__}: {why}") from None
        if self.method is None:
            raise EdgeKDError(f"{path.name} has no 'forward' method")
        meta = self.method.metadata
        self.input_shapes = [tuple(int(d) for d in meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())]

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        outs = self.method.execute([torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])
        return [o.detach().numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in outs]
