"""Training batches: deepmd-format frames plus their host-built ghost extension.

The neighbor data of a system (atype_ext, mapping, nlist, shift) is built once, on
the host, the first time the system is sampled, and padded to one ``nall`` per system
so that every batch of a system has one shape (one compile).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

import dpa2_core as dc
from dpa2_core.data import DeepmdSystem

from .model import Extension


class Batch(NamedTuple):
    """coord (nb, nloc, 3); energy (nb,); force (nb, nloc, 3); ext: :class:`Extension`."""

    coord: np.ndarray
    energy: np.ndarray
    force: np.ndarray
    ext: Extension


def host_neighbor_list(coord, atype, config: dc.DPA2Config, box=None) -> tuple:
    """(coord_ext, atype_ext, mapping, nlist) of one frame, batched with nf = 1.

    ``dpa2_core.build_neighbor_list`` when available, else this package's brute-force
    builder with capacity ``nsel`` and no skin (identical lists, deepmd-kit's semantics).
    """
    try:
        from dpa2_core.neighbor_list import build_neighbor_list
    except ImportError:
        build_neighbor_list = None
    if build_neighbor_list is not None:
        out = build_neighbor_list(coord[None], atype[None], config,
                                  None if box is None else np.asarray(box).reshape(1, 3, 3))
        return tuple(np.asarray(x) for x in out)
    from . import neighbor
    from .params import x64_enabled

    if not x64_enabled():
        coord = coord.astype(np.float32)
        box = None if box is None else np.asarray(box, dtype=np.float32)
    spec, nbrs = neighbor.allocate(coord, atype, config.rcut, config.nsel, box, skin=0.0,
                                   capacity=config.nsel)
    return tuple(np.asarray(x)[None] for x in neighbor.extend(spec, nbrs, coord, atype))


def _pad(x: np.ndarray, width: int, value) -> np.ndarray:
    pad = [(0, 0)] * x.ndim
    pad[0] = (0, width - x.shape[0])
    return np.pad(x, pad, constant_values=value)


def extension_of(coord: np.ndarray, atype: np.ndarray, box, config: dc.DPA2Config,
                 bucket: int = 64) -> Extension:
    """Stacked numpy :class:`Extension` of frames coord (nf, nloc, 3); nall rounded up
    to a multiple of ``bucket``; padding atoms have type -1 and mapping -1."""
    frames = []
    for i in range(coord.shape[0]):
        c64 = coord[i].astype(np.float64)
        ce, ae, mp, nl = host_neighbor_list(c64, atype[i], config,
                                            None if box is None else box[i])
        ce, ae, mp = ce.reshape(-1, 3), ae.reshape(-1), mp.reshape(-1).astype(np.int64)
        frames.append((ae, mp, nl.reshape(nl.shape[-2:]), ce - c64[mp]))
    nall = max(f[0].shape[0] for f in frames)
    nall = -(-nall // bucket) * bucket
    return Extension(
        np.stack([_pad(f[0], nall, -1) for f in frames]),
        np.stack([_pad(f[1], nall, -1) for f in frames]),
        np.stack([f[2] for f in frames]),
        np.stack([_pad(f[3], nall, 0.0) for f in frames]).astype(coord.dtype),
    )


class System:
    """One deepmd system: frames in memory, neighbor data built on first use."""

    def __init__(self, path: Path, type_map: tuple[str, ...], config: dc.DPA2Config,
                 dtype: str) -> None:
        sys_ = DeepmdSystem(path, list(type_map))
        self.path, self.config = path, config
        self.frames = sys_.frames(dtype)
        if self.frames.energy is None or self.frames.force is None:
            raise ValueError(f"system={str(path)!r}: energy.npy and force.npy are required")
        self._ext: Extension | None = None

    @property
    def nframes(self) -> int:
        return int(self.frames.coord.shape[0])

    @property
    def nloc(self) -> int:
        return int(self.frames.coord.shape[1])

    def ext(self) -> Extension:
        if self._ext is None:
            f = self.frames
            self._ext = extension_of(f.coord, f.atype, f.box, self.config)
        return self._ext

    def batch(self, idx: np.ndarray) -> Batch:
        f, e = self.frames, self.ext()
        return Batch(f.coord[idx], f.energy[idx], f.force[idx],
                     Extension(*(x[idx] for x in e)))


def batch_size(spec: int | str, nloc: int) -> int:
    """deepmd-kit's ``auto[:N]``: the smallest size with ``size * nloc >= N`` (N = 32)."""
    if isinstance(spec, int):
        return spec
    _, _, n = spec.partition(":")
    return max(1, -(-int(n or 32) // nloc))


class Sampler:
    """Systems drawn with probability proportional to their frame count; frames of a
    system visited in a fresh random order each pass (deepmd-kit's default)."""

    def __init__(self, systems: list[System], size: int | str, seed: int | None) -> None:
        self.systems = systems
        self.size = size
        self.rng = np.random.default_rng(seed)
        n = np.asarray([s.nframes for s in systems], dtype=np.float64)
        self.prob = n / n.sum()
        self._queues: list[list[int]] = [[] for _ in systems]

    def _take(self, k: int, count: int) -> np.ndarray:
        out = []
        while len(out) < count:
            if not self._queues[k]:
                self._queues[k] = list(self.rng.permutation(self.systems[k].nframes))
            out.append(self._queues[k].pop())
        return np.asarray(out)

    def next(self) -> Batch:
        k = int(self.rng.choice(len(self.systems), p=self.prob))
        s = self.systems[k]
        return s.batch(self._take(k, batch_size(self.size, s.nloc)))
