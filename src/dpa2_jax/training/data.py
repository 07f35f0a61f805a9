"""Training batches: deepmd-format frames plus their host-built ghost extension.

Which frames form a batch is :class:`dpa2_core.training.sampling.BatchSampler` (deepmd-kit's
rule, shared with the torch trainer). The ghost extension of a system (atype_ext,
mapping, nlist, shift; :func:`dpa2_core.neighbors.extension.extension`) is built once, on the
host, the first time the system is sampled, padded to one ``nall`` per system so that
every batch of a system has one shape (one compile).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

import dpa2_core as dc
from dpa2_core.io.npy_data import DataError, DeepmdSystem
from dpa2_core.neighbors.extension import extension
from dpa2_core.training.sampling import BatchSampler, batch_sizes
from dpa2_core.training.settings import DataSettings

from ..model import Extension

__all__ = ["Batch", "BUCKET", "extension_of", "Sampler", "System"]

BUCKET = 64  # nall is padded to a multiple of this: frames of a system share a shape


class Batch(NamedTuple):
    """coord (nb, nloc, 3); energy (nb,); force (nb, nloc, 3); ext: :class:`Extension`."""

    coord: np.ndarray
    energy: np.ndarray
    force: np.ndarray
    ext: Extension


def extension_of(coord: np.ndarray, atype: np.ndarray, box, config: dc.DPA2Config,
                 bucket: int = BUCKET) -> Extension:
    """numpy :class:`Extension` of frames coord (nf, nloc, 3), nall rounded up to a
    multiple of ``bucket`` (padding atoms: type -1, mapping -1)."""
    ae, mp, nl, shift = extension(coord, atype, config, box, bucket=bucket)
    return Extension(ae, mp, nl, shift.astype(coord.dtype))


class System:
    """One deepmd system: frames in memory, neighbor data built on first use."""

    def __init__(self, path: Path, type_map: tuple[str, ...], config: dc.DPA2Config,
                 dtype: str) -> None:
        self.path, self.config = path, config
        self.frames = DeepmdSystem(path, list(type_map)).frames(dtype)
        if self.frames.energy is None or self.frames.force is None:
            raise DataError(f"system={str(path)!r}: energy.npy and force.npy are required")
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

    def batch(self, idx) -> Batch:
        f, e = self.frames, self.ext()
        return Batch(f.coord[idx], f.energy[idx], f.force[idx],
                     Extension(*(x[idx] for x in e)))


class Sampler:
    """Batches of a list of systems (``next()``); ``state()``/``set_state()`` for restarts."""

    def __init__(self, systems: list[System], settings: DataSettings,
                 seed: int | None) -> None:
        self.systems = systems
        self.sizes = batch_sizes(settings.batch_size, [s.nloc for s in systems])
        self.sampler = BatchSampler([s.nframes for s in systems], self.sizes,
                                    settings.auto_prob, seed)
        self.drawn: tuple[int, list[int]] = (-1, [])

    def next(self) -> Batch:
        k, idx = self.drawn = self.sampler.next()  # (system, frames): named on errors
        return self.systems[k].batch(np.asarray(idx))

    def state(self) -> dict:
        return self.sampler.state()

    def set_state(self, state: dict) -> None:
        self.sampler.set_state(state)
