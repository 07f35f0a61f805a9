"""Batches of frames from deepmd-format systems, with cached neighbor lists.

A batch holds frames of one system (same atom count), like deepmd-kit. Systems are
drawn with probability proportional to their number of batches (``prob_sys_size``)
or uniformly; frames of a system are visited in a fresh random order every epoch.
Neighbor lists are built once per frame on the host and reused.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from dpa2_core.data import DeepmdSystem, Frames

from .neighbors import Neighbors, host_neighbors
from .train_input import DataSettings


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


def batch_sizes(spec, nlocs: list[int]) -> list[int]:
    """deepmd's ``batch_size``: an int, one int per system, or ``"auto[:N]"`` (N=32)."""
    if isinstance(spec, str):
        if not spec.startswith("auto"):
            raise ValueError(f"batch_size={spec!r}: use an int, a list or 'auto[:N]'")
        target = int(spec.split(":")[1]) if ":" in spec else 32
        return [max(1, math.ceil(target / n)) for n in nlocs]
    if isinstance(spec, list | tuple):
        if len(spec) != len(nlocs):
            raise ValueError(f"batch_size={spec!r}: needs one entry per system ({len(nlocs)})")
        return [int(b) for b in spec]
    return [int(spec)] * len(nlocs)


class SystemData:
    """All frames of one system plus a per-frame neighbor-list cache."""

    def __init__(self, frames: Frames, batch_size: int, name: str) -> None:
        if frames.energy is None:
            raise ValueError(f"system={name!r}: no energy.npy (needed for training)")
        self.frames, self.batch_size, self.name = frames, batch_size, name
        self.nframes = frames.coord.shape[0]
        self._cache: dict[int, tuple] = {}
        self._order: list[int] = []

    @property
    def nbatch(self) -> int:
        return max(1, self.nframes // self.batch_size)

    def neighbors(self, i: int, config) -> tuple:
        if i not in self._cache:
            f = self.frames
            box = None if f.box is None else f.box[i : i + 1]
            self._cache[i] = host_neighbors(f.coord[i : i + 1], f.atype[i : i + 1], config, box)
        return self._cache[i]

    def next_indices(self, rng: np.random.Generator) -> list[int]:
        out = []
        while len(out) < min(self.batch_size, self.nframes):
            if not self._order:
                self._order = [int(i) for i in rng.permutation(self.nframes)]
            out.append(int(self._order.pop()))
        return out


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
        sizes = batch_sizes(settings.batch_size, [s.nloc for s in systems])
        np_dtype = str(dtype).removeprefix("torch.")
        self.systems = [SystemData(s.frames(np_dtype), b, str(s.path))
                        for s, b in zip(systems, sizes, strict=True)]
        weights = np.asarray([s.nbatch for s in self.systems], dtype=float)
        if settings.auto_prob == "prob_uniform":
            weights = np.ones_like(weights)
        self.probs = weights / weights.sum()
        self.config, self.dtype, self.device = config, dtype, device
        self.rng = np.random.default_rng(seed)

    def frames(self) -> list[Frames]:
        return [s.frames for s in self.systems]

    def state(self) -> dict:
        """Sampler state (RNG and epoch orders) for exact resumption."""
        return {"rng": self.rng.bit_generator.state,
                "orders": [[int(i) for i in s._order] for s in self.systems]}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        for s, order in zip(self.systems, state["orders"], strict=True):
            s._order = [int(i) for i in order]

    def next_batch(self) -> Batch:
        system = self.systems[int(self.rng.choice(len(self.systems), p=self.probs))]
        return self.batch(system, system.next_indices(self.rng))

    def batch(self, system: SystemData, idx: list[int]) -> Batch:
        f = system.frames
        nb = _stack_neighbors([system.neighbors(i, self.config) for i in idx])

        def dev(x, dtype=None):
            if x is None:
                return None
            return torch.from_numpy(np.ascontiguousarray(x)).to(self.device, dtype,
                                                                 non_blocking=True)

        neighbors = Neighbors(*(dev(x) for x in nb[:3]), dev(nb[3], self.dtype))
        return Batch(dev(f.coord[idx], self.dtype), dev(f.atype[idx]), dev(f.energy[idx]),
                     dev(None if f.force is None else f.force[idx]), neighbors,
                     dev(None if f.box is None else f.box[idx]))
