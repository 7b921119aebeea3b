"""last.pt (the whole training state, to resume from) and best.pt (the best student) in one output folder.

Built on edgekd.distill.checkpoint (atomic writes, the checked loader). last.pt carries a key of the run's
settings: resuming from a file written under other settings is refused, or with resume="auto" ignored.
Only the writer (rank 0 under torchrun) writes; every rank reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from edgekd.core.manifest import fingerprint
from edgekd.distill import checkpoint as ckpt
from edgekd.errors import EdgeKDError

# what last.pt records about where the run stands, besides the weights and optimizer states
PROGRESS_KEYS = ("epoch", "step_in_epoch", "global_step", "best_val_acc", "best_epoch", "history")


class Checkpointer:
    def __init__(self, out_dir: "str | os.PathLike | None", settings: dict[str, Any], recipe: str, writer: bool):
        self.dir = Path(out_dir) if out_dir is not None else None
        self.run_key = fingerprint(settings)
        self.recipe, self.writer = recipe, writer
        if self.dir is not None and writer:
            from edgekd.core import ensure_output_dir

            ensure_output_dir(self.dir)

    @property
    def enabled(self) -> bool:
        return self.dir is not None

    def resumable(self, resume: "bool | str") -> dict[str, Any] | None:
        """last.pt's state when `resume` asks for it and it was written under these settings."""
        if not resume or self.dir is None or not (self.dir / ckpt.LAST).is_file():
            return None
        state = ckpt.load(self.dir / ckpt.LAST)
        if state.get("run_key") == self.run_key:
            return state
        if resume != "auto":
            raise EdgeKDError(f"{self.dir / ckpt.LAST} was written by a run with other settings "
                              "(recipe, epochs, batch size, seed or data); use a fresh --output or drop --resume")
        return None  # "auto" (compress reruns): other settings, so start over

    @staticmethod
    def restore(state: dict[str, Any], trainable: nn.Module, opt, sched, set_rng: bool) -> dict[str, Any]:
        """Load the training state into the live objects; returns its progress fields (PROGRESS_KEYS)."""
        trainable.load_state_dict(state["trainable"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if set_rng:
            ckpt.set_rng_state(state["rng"])
        return {k: state[k] for k in PROGRESS_KEYS}

    def save_last(self, student: nn.Module, trainable: nn.Module, opt, sched, progress: dict[str, Any]) -> None:
        if self.dir is None or not self.writer:
            return
        ckpt.save(self.dir / ckpt.LAST, {
            "student": student.state_dict(), "trainable": trainable.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "rng": ckpt.rng_state(), **{k: progress[k] for k in PROGRESS_KEYS},
            "run_key": self.run_key, "recipe": self.recipe,
        })

    def save_best(self, student: nn.Module, val_acc: float, epoch: int, global_step: int) -> None:
        if self.dir is None or not self.writer:
            return
        ckpt.save(self.dir / ckpt.BEST, {"student": student.state_dict(), "val_acc": val_acc, "epoch": epoch,
                                         "global_step": global_step, "recipe": self.recipe})

    def best_student(self) -> dict[str, Any] | None:
        """best.pt's student weights, if there is one (a resumed run whose best epoch came before the resume)."""
        path = self.path(ckpt.BEST)
        return ckpt.load(path)["student"] if path is not None else None

    def path(self, name: str) -> Path | None:
        """The checkpoint file `name` (ckpt.LAST / ckpt.BEST) if it exists."""
        return self.dir / name if self.dir is not None and (self.dir / name).exists() else None
