"""A neighbor list kept between MD steps: candidates within ``rcut + skin``, re-cut each call.

The Verlet-list rule: while no atom has moved more than ``skin / 2`` since the build, every
pair within ``rcut`` now was within ``rcut + skin`` then, so the candidates of the build
contain every neighbor. Each evaluation re-sorts the candidates by their current distance,
cuts at ``rcut`` and truncates to ``nsel`` with the rule of a fresh build
(:func:`dpa2_core.neighbors.vesin_engine.frame_list`: ``r <= rcut``, ordered by ``(r², index)``),
so the descriptor sees the same neighbors, in the same order, as after a fresh build.

Ghosts follow their atoms: ``coord_ext = coord[mapping] + shift`` with the ``shift``
(image offset plus folding into the cell) fixed at the build, as in
:mod:`dpa2_core.neighbors.extension`. Host-side numpy, one frame.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .cells import check_images, check_structure
from .vesin_engine import frame_list

__all__ = ["SkinList", "build_skin_list", "extended_coord", "moved_too_far", "select"]


class SkinList(NamedTuple):
    """One frame's ghosts and neighbor candidates at the last build.

    atype_ext, mapping: (nall,) int64 (ghost -> local index); shift: (nall, 3) float64, Å;
    candidates: (nloc, ncand) int64 extended indices within ``rcut + skin`` at the build,
    -1 padded; reference: (nloc, 3) float64 positions at the build, Å; skin: Å.
    """

    atype_ext: np.ndarray
    mapping: np.ndarray
    shift: np.ndarray
    candidates: np.ndarray
    reference: np.ndarray
    skin: float


def build_skin_list(coord: Any, atype: Any, cell: Any, pbc: Any, rcut: float, skin: float,
                    capacity: int = 1) -> SkinList:
    """Ghosts and candidates of one frame within ``rcut + skin``.

    coord: (nloc, 3) Å; atype: (nloc,) int (< 0: virtual); cell: (3, 3) rows = lattice
    vectors or None; pbc: three bools (None: periodic along all axes with a cell).
    ``capacity`` is a first guess of the candidates per atom (the list grows to fit).
    """
    if not skin >= 0:
        raise ValueError(f"skin={skin!r}: must be >= 0 (Å)")
    s = check_structure(coord, atype, cell, pbc)
    cutoff = float(rcut) + float(skin)
    check_images(s.cell, s.periodic, cutoff)
    frame_cell = None if s.cell is None else s.cell[0]
    args = (s.coord[0], s.atype[0], frame_cell, s.periodic, cutoff)
    f = frame_list(*args, max(int(capacity), 1), np.dtype(np.float64))
    most = int(f.count.max()) if f.count.size else 0
    if most > f.nlist.shape[1]:
        f = frame_list(*args, most, np.dtype(np.float64))
    here = s.coord[0]
    shift = f.coord_ext.astype(np.float64) - here[f.mapping]
    return SkinList(f.atype_ext, f.mapping, shift, f.nlist, here.copy(), float(skin))


def extended_coord(sl: SkinList, coord: np.ndarray) -> np.ndarray:
    """coord (nloc, 3) -> coord_ext (nall, 3) = coord[mapping] + shift (float64)."""
    return np.asarray(coord, dtype=np.float64)[sl.mapping] + sl.shift


def moved_too_far(sl: SkinList, coord: np.ndarray) -> bool:
    """True when some atom moved more than ``skin / 2`` since the build (list is stale)."""
    d = np.asarray(coord, dtype=np.float64) - sl.reference
    most = float(np.max(np.sum(d * d, axis=-1), initial=0.0))
    return most > (0.5 * sl.skin) ** 2


def select(sl: SkinList, coord_ext: np.ndarray, rcut: float, nsel: int,
           dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """The neighbor list of the current positions: (nlist (nloc, nsel) int64, r2min (nloc,)).

    coord_ext: (nall, 3) from :func:`extended_coord`. Distances are those of ``coord_ext``
    cast to ``dtype`` (what the model computes), kept when ``r <= rcut`` (deepmd-kit
    compares r), sorted by ``(r², extended index)``, -1 padded. ``r2min`` is each atom's
    smallest squared distance to a candidate (inf without one), for overlap checks.
    """
    nloc = sl.reference.shape[0]
    x = np.asarray(coord_ext).astype(dtype).astype(np.float64)
    cand = sl.candidates
    valid = cand >= 0
    safe = np.where(valid, cand, 0)
    d = x[safe] - x[:nloc, None, :]
    r2 = np.sum(d * d, axis=-1)
    r2 = np.where(valid, r2, np.inf)
    key = np.where(np.sqrt(r2) <= rcut, r2, np.inf)
    index = np.where(valid, cand, np.iinfo(np.int64).max)
    order = np.lexsort((index, key), axis=-1)[:, :nsel]
    chosen = np.take_along_axis(cand, order, axis=-1)
    nlist = np.where(np.isfinite(np.take_along_axis(key, order, axis=-1)), chosen, -1)
    if nlist.shape[1] < nsel:
        nlist = np.concatenate([nlist, np.full((nloc, nsel - nlist.shape[1]), -1, np.int64)],
                               axis=1)
    return nlist.astype(np.int64), np.min(r2, axis=-1, initial=np.inf)
