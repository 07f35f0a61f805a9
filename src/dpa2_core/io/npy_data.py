"""Reader of deepmd-kit's npy data format: ``type.raw``, ``type_map.raw``, ``set.*/*.npy``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["DeepmdSystem", "Frames"]


class Frames(NamedTuple):
    """coord (nf, nloc, 3) Å; atype (nf, nloc); box (nf, 3, 3) rows = lattice vectors or None;
    energy (nf,) eV or None; force (nf, nloc, 3) eV/Å or None."""

    coord: np.ndarray
    atype: np.ndarray
    box: np.ndarray | None
    energy: np.ndarray | None
    force: np.ndarray | None


class DeepmdSystem:
    """One deepmd-format system directory; types are remapped onto ``type_map`` if given."""

    def __init__(self, path: str | os.PathLike, type_map: list[str] | None = None) -> None:
        self.path = Path(path)
        if not (self.path / "type.raw").is_file():
            raise FileNotFoundError(f"system={str(self.path)!r}: no type.raw (not a deepmd "
                                    "system directory)")
        atype = np.loadtxt(self.path / "type.raw", dtype=np.int64, ndmin=1)
        own_map_file = self.path / "type_map.raw"
        own_map = own_map_file.read_text().split() if own_map_file.is_file() else None
        if type_map is not None and own_map is not None:
            missing = [t for t in own_map if t not in type_map]
            if missing:
                raise ValueError(f"system={str(self.path)!r}: elements {missing} are not in "
                                 f"type_map={list(type_map)}")
            atype = np.asarray([type_map.index(own_map[t]) for t in atype], dtype=np.int64)
        self.type_map = list(type_map) if type_map is not None else own_map
        self.atype = atype
        self.sets = sorted(p for p in self.path.glob("set.*") if p.is_dir())
        if not self.sets:
            raise FileNotFoundError(f"system={str(self.path)!r}: no set.* directories")

    @property
    def nloc(self) -> int:
        return int(self.atype.shape[0])

    def _load_set(self, s: Path, dtype: str) -> Frames:
        coord = np.load(s / "coord.npy").astype(np.float64).astype(dtype)
        nf = coord.shape[0]
        coord = coord.reshape(nf, self.nloc, 3)
        box = np.load(s / "box.npy").astype(dtype).reshape(nf, 3, 3) \
            if (s / "box.npy").is_file() and not (self.path / "nopbc").exists() else None
        energy = np.load(s / "energy.npy").astype(dtype).reshape(nf) \
            if (s / "energy.npy").is_file() else None
        force = np.load(s / "force.npy").astype(dtype).reshape(nf, self.nloc, 3) \
            if (s / "force.npy").is_file() else None
        return Frames(coord, np.tile(self.atype, (nf, 1)), box, energy, force)

    def frames(self, dtype: str = "float64") -> Frames:
        """Every frame of every set, concatenated, cast to ``dtype`` (stored float32 is
        first widened to float64 so no precision is invented)."""
        parts = [self._load_set(s, dtype) for s in self.sets]

        def cat(i: int):
            return None if parts[0][i] is None else np.concatenate([p[i] for p in parts])

        return Frames(*(cat(i) for i in range(5)))
