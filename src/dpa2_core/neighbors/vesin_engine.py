"""The O(N) neighbor-list engine: vesin's pair search, then ghosts and a sorted list (numpy).

Ghosts are exactly the periodic images that are neighbors of some local atom: the
distinct ``(j, shift != 0)`` pairs vesin returns within the cutoff, ordered by shift
(lexicographic) then by local index ``j``. No nloc × nall array is ever built.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .cells import fold_into_cell, shift_vectors

__all__ = [
    "frame_list", "FrameList", "import_vesin", "INSTALL_HINT", "sorted_rows", "vesin_pairs",
]

INSTALL_HINT = "pip install 'dpa2[io]'"


class FrameList(NamedTuple):
    """One frame: coord_ext (nall, 3) in the caller's dtype; atype_ext, mapping (nall,)
    int64; nlist (nloc, nsel) int64; count (nloc,) neighbors within rcut before truncation."""

    coord_ext: np.ndarray
    atype_ext: np.ndarray
    mapping: np.ndarray
    nlist: np.ndarray
    count: np.ndarray


def import_vesin():
    """The vesin module, or an ImportError that says how to install it."""
    try:
        import vesin
    except ImportError as err:
        raise ImportError(f"the O(N) neighbor-list engine needs vesin: {INSTALL_HINT}") from err
    return vesin


def _search_cutoff(coord: np.ndarray, rcut: float, dtype: np.dtype) -> float:
    """vesin keeps r < cutoff; widen it past rounding so that r <= rcut is decided here."""
    scale = rcut + (float(np.max(np.abs(coord))) if coord.size else 0.0)
    return rcut + 64.0 * float(np.finfo(dtype).eps) * scale + 1e-12


def vesin_pairs(coord: np.ndarray, atype: np.ndarray, cell: np.ndarray | None,
                periodic: tuple[bool, bool, bool], cutoff: float):
    """Directed pairs between real atoms: i, j (P,) int64 local indices, shifts (P, 3) int.

    The neighbor of ``i`` sits at ``coord[j] + shifts @ cell``.
    """
    real = np.flatnonzero(atype >= 0)
    if real.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    box = np.zeros((3, 3)) if cell is None else cell
    search = import_vesin().NeighborList(cutoff=cutoff, full_list=True)
    i, j, shifts = search.compute(coord[real], box, list(periodic), quantities="ijS")
    i, j = i.view(np.int64), j.view(np.int64)  # uint64 indices < 2**63: a free reinterpretation
    if real.size < atype.size:
        i, j = real[i], real[j]
    return i, j, shifts


def _shift_keys(shifts: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Encode every pair's shift as one int (lexicographic order) with its Cartesian offset.

    shifts: (P, 3) -> keys (P,), offsets (K, 3) indexed by key, key of the zero shift.
    Offsets come from :func:`shift_vectors` on the K possible shifts (bit-identical to
    computing them per pair, and P x cheaper).
    """
    lo = shifts.min(axis=0) if shifts.size else np.zeros(3, np.int64)
    lo = np.minimum(lo, 0)
    span = np.maximum(shifts.max(axis=0) if shifts.size else lo, 0) - lo + 1

    def encode(s: np.ndarray) -> np.ndarray:
        return ((s[..., 0] - lo[0]) * span[1] + (s[..., 1] - lo[1])) * span[2] + (s[..., 2] - lo[2])
    grid = np.stack(np.meshgrid(*[np.arange(lo[d], lo[d] + span[d]) for d in range(3)],
                                indexing="ij"), axis=-1).reshape(-1, 3)
    return encode(shifts), shift_vectors(grid, cell), int(encode(np.zeros(3, np.int64)))


def _ghosts(j: np.ndarray, key: np.ndarray, zero: int, nloc: int):
    """Deduplicate the images: (extended index of every pair, first pair of every ghost).

    Ghosts are ordered by shift key, then by local index.
    """
    ghost = np.flatnonzero(key != zero)
    j_ext = j.copy()
    _, first, inverse = np.unique(key[ghost] * nloc + j[ghost], return_index=True,
                                  return_inverse=True)
    j_ext[ghost] = nloc + inverse.reshape(-1)
    return j_ext, ghost[first]


def sorted_rows(i: np.ndarray, j_ext: np.ndarray, r2: np.ndarray, nloc: int, nsel: int):
    """Dense (nloc, nsel) list, rows by (r², index), -1 padded; and counts (nloc,).

    Pairs are grouped by centre into an (nloc, max count) table and each short row is
    sorted: O(N · max count) instead of a global sort of all pairs.
    """
    count = np.bincount(i, minlength=nloc).astype(np.int64)
    width = int(count.max()) if count.size and i.size else 0
    group = np.argsort(i, kind="stable")  # vesin's order is nearly grouped already
    i, j_ext, r2 = i[group], j_ext[group], r2[group]
    slot = np.arange(i.size) - (np.cumsum(count) - count)[i]
    table_r2 = np.full((nloc, width), np.inf)
    table_r2[i, slot] = r2
    table_j = np.full((nloc, width), -1, dtype=np.int64)
    table_j[i, slot] = j_ext
    order = np.lexsort((table_j, table_r2), axis=-1)[:, :nsel]
    nlist = np.take_along_axis(table_j, order, axis=-1)
    if width < nsel:
        nlist = np.concatenate([nlist, np.full((nloc, nsel - width), -1, np.int64)], axis=1)
    return nlist, count


def frame_list(coord: np.ndarray, atype: np.ndarray, cell: np.ndarray | None,
               periodic: tuple[bool, bool, bool], rcut: float, nsel: int,
               dtype: np.dtype) -> FrameList:
    """Wrap, search, extend and sort one frame.

    coord: (nloc, 3) float64; atype: (nloc,) int64; cell: (3, 3) invertible or None.
    Distances are those of the returned ``coord_ext`` (after the cast to ``dtype``),
    computed as the descriptor does, so r² <= rcut² here means kept there.
    """
    nloc = atype.shape[0]
    if cell is not None:
        coord = fold_into_cell(np, coord[None], cell[None], periodic)[0]
    coord = coord.astype(dtype, copy=False).astype(np.float64, copy=False)
    i, j, shifts = vesin_pairs(coord, atype, cell, periodic, _search_cutoff(coord, rcut, dtype))
    key, offsets, zero = _shift_keys(shifts, np.zeros((3, 3)) if cell is None else cell)
    del shifts
    d = coord[j]  # (P, 3): neighbor position, then displacement, then its squares
    d += offsets[key]
    d = d.astype(dtype, copy=False).astype(np.float64, copy=False)  # as the caller gets it
    d -= coord[i]
    d *= d
    r2 = d.sum(axis=-1)  # bit-identical to the descriptor's sum(d * d, axis=-1)
    del d
    within = np.flatnonzero(np.sqrt(r2) <= rcut)  # deepmd-kit compares r, not r²
    i, j, key, r2 = i[within], j[within], key[within], r2[within]
    j_ext, first = _ghosts(j, key, zero, nloc)
    nlist, count = sorted_rows(i, j_ext, r2, nloc, nsel)
    ghosts = coord[j[first]] + offsets[key[first]]
    coord_ext = np.concatenate([coord, ghosts]).astype(dtype)
    atype_ext = np.concatenate([atype, atype[j[first]]])
    mapping = np.concatenate([np.arange(nloc, dtype=np.int64), j[first]])
    return FrameList(coord_ext, atype_ext, mapping, nlist, count)
