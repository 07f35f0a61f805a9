"""Data-parallel set-up from ``torchrun``'s environment (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_max", "all_objects", "data_parallel", "finish", "init_from_env"]


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """rank / world_size of this process, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1), else run
    single-process. The device is ``device``, else ``cuda:LOCAL_RANK`` when CUDA exists."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device is not None:
        dev = torch.device(device)
    else:
        dev = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else \
            torch.device("cpu")
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1 and not dist.is_initialized():
        return DistInfo(device=dev)
    owns = False
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        owns = True
    return DistInfo(dist.get_rank(), dist.get_world_size(), dev, owns)


def data_parallel(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``DistributedDataParallel`` around ``model`` when there is more than one process."""
    if info.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def finish(info: DistInfo, clean: bool = True) -> None:
    """Leave the process group this process joined. After a clean run every rank first
    meets at a barrier: a rank that tears gloo down while a peer is still finishing
    (rank 0 writes the summary) aborts the peer ("terminate called without an active
    exception"). After an error there is no barrier, which could wait forever."""
    if info.owns_group and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def all_objects(obj: object, info: DistInfo) -> list:
    """Every rank's ``obj`` in rank order (a collective: all ranks call it)."""
    if info.world_size == 1:
        return [obj]
    out: list = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_max(value: int, info: DistInfo) -> int:
    """The largest ``value`` over the ranks (a collective), e.g. a stop flag that one
    rank raised: every rank then takes the same branch."""
    if info.world_size == 1:
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.int64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())
