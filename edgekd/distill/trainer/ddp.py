"""torchrun processes: ranks, the device each trains on, the DDP wrapper and each rank's share of a batch.

Under torchrun every global batch of indices is split evenly across ranks (rank r takes rows r, r+W, ...) and
DDP averages the gradients, so one step equals the one-process step on the same global batch. Only rank 0 writes.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from edgekd.errors import EdgeKDError


class Dist:
    """torchrun environment (WORLD_SIZE/RANK): gloo on CPU, nccl on GPU."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.owns_group = False
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
                self.owns_group = True
            self.world, self.rank = dist.get_world_size(), dist.get_rank()

    @property
    def main(self) -> bool:
        return self.rank == 0

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise EdgeKDError(f"batch_size {batch_size} must be divisible by the number of processes {self.world}")

    def local_rows(self, batch: np.ndarray) -> np.ndarray:
        """This rank's rows of a global batch; a short last batch is trimmed to a multiple of the world size."""
        batch = batch[: len(batch) - len(batch) % self.world] if len(batch) >= self.world else batch
        return batch[self.rank:: self.world]

    def wrap(self, model: nn.Module, dev: torch.device, find_unused: bool) -> nn.Module:
        """DDP around `model` under torchrun (gradients averaged across ranks), else `model` itself."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model, device_ids=[dev] if dev.type == "cuda" else None, find_unused_parameters=find_unused)

    def sum(self, *values: float) -> list[float]:
        if self.world == 1:
            return list(values)
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def sync_buffers(self, module: nn.Module):
        """BatchNorm running stats drift apart per rank; rank 0's are the ones saved and evaluated."""
        if self.world > 1:
            import torch.distributed as dist

            for b in module.buffers():
                dist.broadcast(b.data, src=0)

    def barrier(self):
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self):
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def place_models(teacher: nn.Module, student: nn.Module, device, dist: Dist) -> torch.device:
    """Move both models to `device` (default: cuda:LOCAL_RANK under torchrun with GPUs, else the student's);
    the teacher is frozen in eval mode."""
    if device is None:
        if dist.world > 1 and torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        else:
            device = device_of(student)
    try:
        dev = torch.device(device)
        student.to(dev)
        teacher.to(dev)
    except (RuntimeError, AssertionError) as exc:
        raise EdgeKDError(f"cannot use device '{device}': {str(exc).splitlines()[0][:160]}") from None
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return dev
