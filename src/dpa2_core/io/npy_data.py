"""Reader of deepmd-kit's npy data format: ``type.raw``, ``type_map.raw``, ``set.*/*.npy``.

Every file is checked when the system is opened (:class:`DeepmdSystem`) or its frames are
read (:meth:`DeepmdSystem.frames`), so a trainer names bad data before its first step:
missing or unreadable files, arrays of the wrong shape, frame counts that disagree between
``coord``/``box``/``energy``/``force``, NaN or inf, type indices beyond ``type_map.raw``
or the model's type map, empty sets and boxes of zero volume. The error is a
:class:`DataError` (a ``ValueError``) naming the system, the file and the frame.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..neighbors.cells import check_cell

__all__ = ["DataError", "DeepmdSystem", "Frames"]

class DataError(ValueError):
    """Bad training/test data; the message names the system path, the file and the frame."""


def _first_bad_frame(x: np.ndarray) -> int | None:
    bad = ~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


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
        atype = self._read_types()
        own_map_file = self.path / "type_map.raw"
        own_map = own_map_file.read_text().split() if own_map_file.is_file() else None
        if own_map is not None and atype.max() >= len(own_map):
            i = int(np.argmax(atype >= len(own_map)))
            raise DataError(f"system={str(self.path)!r}: type.raw: atom {i} has type "
                            f"{int(atype[i])}, beyond the {len(own_map)} types of "
                            f"type_map.raw {own_map}")
        if type_map is not None and own_map is not None:
            missing = [t for t in own_map if t not in type_map]
            if missing:
                raise DataError(f"system={str(self.path)!r}: elements {missing} are not in "
                                f"type_map={list(type_map)}")
            atype = np.asarray([type_map.index(own_map[t]) for t in atype], dtype=np.int64)
        elif type_map is not None and atype.max() >= len(type_map):
            i = int(np.argmax(atype >= len(type_map)))
            raise DataError(f"system={str(self.path)!r}: type.raw: atom {i} has type "
                            f"{int(atype[i])}, beyond the model's type_map={list(type_map)} "
                            "(and there is no type_map.raw)")
        self.type_map = list(type_map) if type_map is not None else own_map
        self.atype = atype
        self.sets = sorted(p for p in self.path.glob("set.*") if p.is_dir())
        if not self.sets:
            raise DataError(f"system={str(self.path)!r}: no set.* directories")

    def _read_types(self) -> np.ndarray:
        f = self.path / "type.raw"
        try:
            atype = np.loadtxt(f, dtype=np.int64, ndmin=1)
        except ValueError as err:
            raise DataError(f"system={str(self.path)!r}: type.raw: not a list of integer "
                            f"types ({err})") from None
        if atype.ndim != 1 or atype.size == 0:
            raise DataError(f"system={str(self.path)!r}: type.raw: expected one type per "
                            f"atom, got shape {atype.shape}")
        if atype.min() < 0:
            i = int(np.argmax(atype < 0))
            raise DataError(f"system={str(self.path)!r}: type.raw: atom {i} has the negative "
                            f"type {int(atype[i])}")
        return atype

    @property
    def nloc(self) -> int:
        return int(self.atype.shape[0])

    def _array(self, s: Path, name: str, nf: int | None, shape: tuple[int, ...],
               dtype: str) -> np.ndarray:
        """``s/name.npy`` as (nf, *shape) of ``dtype`` (nf None: from the file), checked."""
        f = s / f"{name}.npy"
        where = f"system={str(self.path)!r}: {f.relative_to(self.path)}"
        try:
            raw = np.load(f, allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"{where}: missing") from None
        except (OSError, ValueError) as err:
            raise DataError(f"{where}: not a readable .npy file ({err})") from None
        if raw.dtype.kind not in "fiu":
            raise DataError(f"{where}: dtype {raw.dtype}, expected numbers")
        per = int(np.prod(shape))
        if raw.ndim > 1 or per == 1:  # (nf, per) or (nf, ...); energies (nf,)
            n, ok = (raw.shape[0], raw.size == raw.shape[0] * per) if raw.ndim else (0, False)
        else:  # one frame stored flat
            n, ok = raw.size // per, raw.size % per == 0
        if not ok:
            expected = f"({nf if nf is not None else 'nf'}, {per})"
            raise DataError(f"{where}: shape {raw.shape}; expected {expected}: frames of "
                            f"{shape}")
        if nf is not None and n != nf:
            raise DataError(f"{where}: {n} frame(s), coord.npy has {nf}")
        if n == 0:
            raise DataError(f"{where}: no frames (an empty set)")
        x = raw.astype(np.float64).astype(dtype).reshape(n, *shape)
        bad = _first_bad_frame(x)
        if bad is not None:
            raise DataError(f"{where}: frame {bad} holds NaN or inf")
        return x

    def _load_set(self, s: Path, dtype: str) -> Frames:
        coord = self._array(s, "coord", None, (self.nloc, 3), dtype)
        nf = coord.shape[0]
        box = self._array(s, "box", nf, (3, 3), dtype) \
            if (s / "box.npy").is_file() and not (self.path / "nopbc").exists() else None
        for i in range(nf if box is not None else 0):
            try:  # the one degeneracy rule of the neighbor lists and the statistics
                check_cell(box[i].astype(np.float64), (True, True, True), i)
            except ValueError:
                name = (s / "box.npy").relative_to(self.path)
                raise DataError(f"system={str(self.path)!r}: {name}: frame {i}: the box has "
                                "zero volume (lattice vectors zero or linearly dependent); "
                                "use a nopbc file for non-periodic data") from None
        energy = self._array(s, "energy", nf, (), dtype) \
            if (s / "energy.npy").is_file() else None
        force = self._array(s, "force", nf, (self.nloc, 3), dtype) \
            if (s / "force.npy").is_file() else None
        return Frames(coord, np.tile(self.atype, (nf, 1)), box, energy, force)

    def frames(self, dtype: str = "float64") -> Frames:
        """Every frame of every set, concatenated, cast to ``dtype`` (stored float32 is
        first widened to float64 so no precision is invented)."""
        parts = [self._load_set(s, dtype) for s in self.sets]
        for name, i in (("box", 2), ("energy", 3), ("force", 4)):
            has = [p[i] is not None for p in parts]
            if any(has) and not all(has):
                raise DataError(f"system={str(self.path)!r}: {name}.npy is in "
                                f"{self.sets[has.index(True)].name} but not in "
                                f"{self.sets[has.index(False)].name}")

        def cat(i: int):
            return None if parts[0][i] is None else np.concatenate([p[i] for p in parts])

        return Frames(*(cat(i) for i in range(5)))
