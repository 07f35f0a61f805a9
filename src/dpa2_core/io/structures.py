"""Read structures from disk: deepmd-format systems or anything ``ase.io.read`` reads.

``read_frames(path, type_map, frames="0:10")`` returns a list of :class:`Frame`; feed
each to :func:`dpa2_core.build_neighbor_list`. ``frames`` uses python slice syntax and
is parsed, never evaluated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._compat import Array
from ..neighbors.builder import build_neighbor_list
from ..progress import progress_iter
from .npy_data import DeepmdSystem

__all__ = ["INSTALL_HINT", "Frame", "from_ase", "iter_frames", "parse_frames", "read_frames",
           "types_of"]

INSTALL_HINT = "pip install 'dpa2[io]'"
_INDEX = r"\s*(-?\d+)?\s*"
_SLICE = re.compile(rf"^{_INDEX}(?::{_INDEX}(?::{_INDEX})?)?$")
# ase cannot guess LAMMPS data files (no extension or magic of their own).
_LAMMPS_SUFFIXES = (".data", ".lmp", ".lammps", ".lammps-data")


class Frame(NamedTuple):
    """coord (nloc, 3) float64 Å; atype (nloc,) int64 indices into type_map;
    box (3, 3) float64, rows = lattice vectors, or None (open boundary); pbc: None (every
    axis periodic when there is a box) or three bools for mixed periodicity (a slab)."""

    coord: np.ndarray
    atype: np.ndarray
    box: np.ndarray | None
    pbc: tuple[bool, bool, bool] | None = None


def parse_frames(frames: str | int | slice | None) -> int | slice:
    """A frame selection as an int or a slice: ``"3"``, ``"-1"``, ``"0:10"``, ``"::2"``.

    ``None`` selects every frame.
    """
    if frames is None:
        return slice(None)
    if isinstance(frames, int | slice) and not isinstance(frames, bool):
        return frames
    match = _SLICE.match(frames) if isinstance(frames, str) else None
    if match is None or not frames.strip():
        raise ValueError(f"frames={frames!r}: expected python slice syntax such as '0', "
                         "'-1', '0:10' or '::2'")
    parts = [None if p is None else int(p) for p in match.groups()]
    if ":" not in frames:
        return parts[0]
    if parts[2] == 0:
        raise ValueError(f"frames={frames!r}: slice step cannot be zero")
    return slice(*parts)


def _pick(n: int, selection: int | slice, path: Any) -> np.ndarray:
    """Indices of the selected frames among ``n``."""
    if isinstance(selection, slice):
        return np.arange(n)[selection]
    if not -n <= selection < n:
        raise ValueError(f"frames={selection}: {path} has {n} frame(s)")
    return np.asarray([selection % n])


def _deepmd_frames(path: Path, type_map: Sequence[str], selection) -> list[Frame]:

    data = DeepmdSystem(path, list(type_map)).frames()
    return [Frame(data.coord[k], data.atype[k].astype(np.int64),
                  None if data.box is None else data.box[k])
            for k in _pick(data.coord.shape[0], selection, path)]


def types_of(symbols: Sequence[str], type_map: Sequence[str], where: str) -> np.ndarray:
    """The one symbol -> type rule: (n,) int64 indices into ``type_map``; an element the
    map does not hold raises a ValueError naming ``where``, the elements and the map."""
    index = {t: k for k, t in enumerate(type_map)}
    missing = sorted(set(symbols) - set(index))
    if missing:
        raise ValueError(f"{where}: elements {missing} are not in type_map={list(type_map)}")
    return np.asarray([index[s] for s in symbols], dtype=np.int64)


def _ase_frame(atoms: Any, type_map: Sequence[str], where: str) -> Frame:
    pbc = tuple(bool(p) for p in atoms.pbc)
    box = np.asarray(atoms.cell.array, dtype=np.float64) if any(pbc) else None
    return Frame(np.asarray(atoms.positions, dtype=np.float64),
                 types_of(atoms.get_chemical_symbols(), type_map, where), box,
                 None if all(pbc) or not any(pbc) else pbc)


def _lammps_kwargs(path: Path, type_map: Sequence[str], kwargs: dict) -> dict:
    """LAMMPS data: without a Masses section, type k is type_map[k - 1] (deepmd's rule)."""
    if "Z_of_type" in kwargs:
        return kwargs
    with open(path) as f:
        if any(line.split("#")[0].strip() == "Masses" for line in f):
            return kwargs
    from ase.data import atomic_numbers

    unknown = [t for t in type_map if t not in atomic_numbers]
    if unknown:
        raise ValueError(f"type_map={list(type_map)}: {unknown} are not element symbols; pass "
                         "Z_of_type for this LAMMPS data file")
    return {**kwargs, "Z_of_type": {k + 1: atomic_numbers[t] for k, t in enumerate(type_map)}}


def _guess_format(path: Path, fmt: str | None) -> str | None:
    if fmt is not None:
        return fmt
    name = path.name.lower()
    if name.endswith(_LAMMPS_SUFFIXES) or name.startswith("data."):
        return "lammps-data"
    return None


def _ase_read(path: Path, selection, fmt: str | None, kwargs: dict,
              type_map: Sequence[str]) -> list:
    try:
        import ase.io
    except ImportError as err:
        raise ImportError(f"reading {path.name!r} needs ase: {INSTALL_HINT}") from err
    if fmt == "lammps-data":
        kwargs = _lammps_kwargs(path, type_map, kwargs)
    index = selection if isinstance(selection, slice) else \
        slice(selection, None if selection == -1 else selection + 1)
    images = ase.io.read(path, index=index, format=fmt, **kwargs)
    if isinstance(selection, int) and not images:
        raise ValueError(f"frames={selection}: out of range for {path}")
    return images


def read_frames(path: str | os.PathLike, type_map: Sequence[str],
                frames: str | int | slice | None = None, *, format: str | None = None,
                **ase_kwargs: Any) -> list[Frame]:
    """Frames of a deepmd-format system directory or of any file ase reads.

    path: a directory with ``type.raw`` and ``set.*`` or a file (xyz, extxyz, POSCAR,
    CIF, LAMMPS data, ...); type_map: element symbols, index = type; frames: selection
    in slice syntax (None = all). ``format`` and ``ase_kwargs`` go to ``ase.io.read``
    (LAMMPS data is recognised by a ``.data``/``.lmp`` suffix or a ``data.`` prefix).
    Mixed periodicity (a slab) keeps the cell in ``box`` and the flags in ``pbc``. A
    selection that picks no frame raises.
    """
    if type_map is None or not len(type_map):
        raise ValueError("type_map: required to map elements to types")
    path = Path(path)
    selection = parse_frames(frames)
    if path.is_dir():
        out = _deepmd_frames(path, type_map, selection)
    elif not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no such file or directory")
    else:
        images = _ase_read(path, selection, _guess_format(path, format), ase_kwargs, type_map)
        out = [_ase_frame(a, type_map, f"{path.name}, frame {k}")
               for k, a in enumerate(images)]
    if not out:
        raise ValueError(f"frames={frames!r}: selects no frame of {path}")
    return out


def iter_frames(path: str | os.PathLike, type_map: Sequence[str],
                frames: str | int | slice | None = None, *, progress: bool = False,
                **kwargs: Any) -> Iterator[Frame]:
    """:func:`read_frames` as an iterator, with an optional tqdm progress bar."""
    yield from progress_iter(read_frames(path, type_map, frames, **kwargs), progress,
                             desc="frames", unit="frame")


def from_ase(atoms: Any, config: Any, **kwargs: Any) -> tuple[Array, Array, Array, Array]:
    """Descriptor inputs of one ``ase.Atoms`` (nf = 1), honoring its per-axis ``pbc``.

    Types come from ``config.type_map`` by chemical symbol (:func:`types_of`); ``kwargs``
    go to :func:`dpa2_core.build_neighbor_list` (``rcut``, ``nsel``, ``engine``).
    """
    type_map = getattr(config, "type_map", None)
    if type_map is None:
        raise ValueError("config.type_map: required to map chemical symbols to types "
                         "(set type_map in the descriptor config)")
    frame = _ase_frame(atoms, type_map, "atoms")
    return build_neighbor_list(frame.coord, frame.atype, config, frame.box, pbc=frame.pbc,
                               **kwargs)
