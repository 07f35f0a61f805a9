"""Batches of frames from deepmd-format systems, with cached neighbor lists.

Which frames form a batch is :class:`dpa2_core.training.sampling.BatchSampler` (deepmd-kit's
rule: one system per batch, systems drawn by their number of batches, frames in a fresh
random order every epoch). Here the frames become device tensors; each frame's
neighbor list is built once on the host and reused.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from dpa2_core.io import DataError
from dpa2_core.io.npy_data import DeepmdSystem, Frames
from dpa2_core.training.sampling import BatchSampler, batch_sizes
from dpa2_core.training.settings import DataSettings

from ..neighbors import Neighbors, host_neighbors

__all__ = ["Batch", "DataSet"]


class Batch(NamedTuple):
    """coord (nf, nloc, 3); atype (nf, nloc); energy (nf,); force (nf, nloc, 3) or None;
    neighbors (device tensors); box (nf, 3, 3) or None."""

    coord: torch.Tensor
    atype: torch.Tensor
    energy: torch.Tensor
    force: torch.Tensor | None
    neighbors: Neighbors
    box: torch.Tensor | None

    @property
    def natoms(self) -> int:
        return int(self.atype.shape[1])


def _stack_neighbors(parts: list[tuple]) -> list[np.ndarray]:
    nall = max(p[0].shape[1] for p in parts)

    def pad(x, value):
        return np.pad(x, [(0, 0), (0, nall - x.shape[1])] + [(0, 0)] * (x.ndim - 2),
                      constant_values=value)

    return [np.concatenate([pad(p[0], -1) for p in parts]),
            np.concatenate([pad(p[1], -1) for p in parts]),
            np.concatenate([p[2] for p in parts]),
            np.concatenate([pad(p[3], 0.0) for p in parts])]


class DataSet:
    """Training or validation data: ``next_batch()`` draws one batch."""

    def __init__(self, settings: DataSettings, type_map: list[str], config, dtype: torch.dtype,
                 device: torch.device, seed: int | None = None) -> None:
        systems = [DeepmdSystem(p, type_map) for p in settings.systems]
        self.paths = [s.path for s in systems]
        self.sizes = batch_sizes(settings.batch_size, [s.nloc for s in systems])
        np_dtype = str(dtype).removeprefix("torch.")
        self._frames = [s.frames(np_dtype) for s in systems]
        for s, f in zip(systems, self._frames, strict=True):
            if f.energy is None:
                raise DataError(f"system={str(s.path)!r}: no energy.npy (needed for training)")
        self.sampler = BatchSampler([f.coord.shape[0] for f in self._frames], self.sizes,
                                    settings.auto_prob, seed)
        self._cache: dict[tuple[int, int], tuple] = {}
        self.config, self.dtype, self.device = config, dtype, device
        self.drawn: tuple[int, list[int]] = (-1, [])  # (system, frames) of the last batch

    def frames(self) -> list[Frames]:
        return self._frames

    def state(self) -> dict:
        """Sampler state (RNG and epoch orders) for exact resumption."""
        return self.sampler.state()

    def set_state(self, state: dict) -> None:
        self.sampler.set_state(state)

    def next_batch(self) -> Batch:
        self.drawn = self.sampler.next()
        return self.batch(*self.drawn)

    def _neighbors(self, k: int, i: int) -> tuple:
        if (k, i) not in self._cache:
            f = self._frames[k]
            box = None if f.box is None else f.box[i : i + 1]
            self._cache[k, i] = host_neighbors(f.coord[i : i + 1], f.atype[i : i + 1],
                                               self.config, box)
        return self._cache[k, i]

    def batch(self, k: int, idx: list[int]) -> Batch:
        """The frames ``idx`` of system ``k`` as device tensors."""
        f = self._frames[k]
        nb = _stack_neighbors([self._neighbors(k, i) for i in idx])

        def dev(x, dtype=None):
            if x is None:
                return None
            return torch.from_numpy(np.ascontiguousarray(x)).to(self.device, dtype,
                                                                 non_blocking=True)

        neighbors = Neighbors(*(dev(x) for x in nb[:3]), dev(nb[3], self.dtype))
        return Batch(dev(f.coord[idx], self.dtype), dev(f.atype[idx]), dev(f.energy[idx]),
                     dev(None if f.force is None else f.force[idx]), neighbors,
                     dev(None if f.box is None else f.box[idx]))
