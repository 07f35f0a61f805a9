"""The dense O(N²) neighbor-list builder: pure array API, the reference for small systems.

Runs eagerly on any array namespace (numpy, torch, jax, array-api-strict): no in-place
updates, no boolean indexing. Ghosts are every image within ``ceil(rcut / height)``
cells along each periodic axis (like deepmd-kit), shift-major: extended atom
``s * nloc + i`` is local atom ``i`` moved by the ``s``-th shift, shift 0 being (0, 0, 0).
Memory is O(nf · nloc · nall); use the vesin engine beyond a few thousand atoms.
"""

from __future__ import annotations

import math

import numpy as np

from .._compat import Array, Namespace, device, to_numpy
from .cells import fold_into_cell, heights

__all__ = ["candidates", "dense_list", "image_shifts", "periodic_images",
           "reference_neighbor_list", "sorted_list", "within_cutoff"]


def image_shifts(cell: Array | None, periodic: tuple[bool, bool, bool], rcut: float) -> np.ndarray:
    """Integer image shifts (ns, 3) covering ``rcut`` for every frame of ``cell`` (nf, 3, 3).

    Ordered by length of the integer vector (stable over p-slowest enumeration), so
    shift 0 is (0, 0, 0). Non-periodic axes get no shifts.
    """
    if cell is None:
        return np.zeros((1, 3), dtype=np.int64)
    h = np.min(heights(to_numpy(cell).astype(np.float64)), axis=0)  # (3,)
    nbuff = [math.ceil(rcut / h[d]) if periodic[d] else 0 for d in range(3)]
    grids = np.meshgrid(*[np.arange(-n, n + 1) for n in nbuff], indexing="ij")
    shifts = np.stack([g.reshape(-1) for g in grids], axis=-1)
    order = np.argsort(np.sum(shifts * shifts, axis=-1), kind="stable")
    return shifts[order].astype(np.int64)


def periodic_images(xp: Namespace, coord: Array, atype: Array, cell: Array,
                    shifts: np.ndarray) -> tuple[Array, Array, Array]:
    """Images of every local atom: coord_ext (nf, ns*nloc, 3), atype_ext, mapping (nf, ns*nloc).

    Offsets are ``S0*a0 + S1*a1 + S2*a2``, elementwise as in the vesin engine.
    """
    nf, nloc = atype.shape
    ns = shifts.shape[0]
    s = xp.asarray(shifts, dtype=coord.dtype, device=device(coord))
    offsets = (s[None, :, 0:1] * cell[:, None, 0, :] + s[None, :, 1:2] * cell[:, None, 1, :]
               + s[None, :, 2:3] * cell[:, None, 2, :])  # (nf, ns, 3)
    coord_ext = xp.reshape(coord[:, None, :, :] + offsets[:, :, None, :], (nf, ns * nloc, 3))
    atype_ext = xp.reshape(xp.broadcast_to(atype[:, None, :], (nf, ns, nloc)), (nf, ns * nloc))
    local = xp.arange(nloc, dtype=xp.int64, device=device(atype))
    mapping = xp.reshape(xp.broadcast_to(local[None, None, :], (nf, ns, nloc)), (nf, ns * nloc))
    return coord_ext, atype_ext, mapping


def candidates(xp: Namespace, coord_ext: Array, atype_ext: Array, nloc: int,
               rcut: float) -> tuple[Array, Array]:
    """Which extended atoms are neighbors of each local one: the one candidate rule.

    coord_ext: (nf, nall, 3) with the local atoms first; atype_ext: (nf, nall). Returns
    valid (nf, nloc, nall) bool (a real atom other than the centre with sqrt(r²) <= rcut,
    r as deepmd-kit decides it; virtual atoms are never neighbors and have none) and
    r2 (nf, nloc, nall) squared distances (Å²) as the descriptor computes them.
    """
    nall = atype_ext.shape[1]
    d = coord_ext[:, None, :, :] - coord_ext[:, :nloc, None, :]  # (nf, nloc, nall, 3)
    r2 = xp.sum(d * d, axis=-1)
    dev = device(coord_ext)
    other = xp.arange(nall, device=dev)[None, :] != xp.arange(nloc, device=dev)[:, None]
    real = (atype_ext[:, None, :] >= 0) & (atype_ext[:, :nloc, None] >= 0)
    return real & other[None, ...] & within_cutoff(xp, r2, rcut), r2


def within_cutoff(xp: Namespace, r2: Array, rcut: float) -> Array:
    """The cutoff rule: sqrt(r²) <= rcut, decided on r as deepmd-kit does (r² <= rcut²
    disagrees at one ulp)."""
    return xp.sqrt(r2) <= rcut


def sorted_list(xp: Namespace, valid: Array, r2: Array, nsel: int) -> Array:
    """The one sort rule: (nf, nloc, nsel) int64, closest first, ties by extended index,
    then -1. valid, r2: (nf, nloc, nall) from :func:`candidates`."""
    nall = valid.shape[-1]
    key = xp.where(valid, r2, xp.full_like(r2, math.inf))
    order = xp.astype(xp.argsort(key, axis=-1, stable=True), xp.int64)
    width = min(nsel, nall)
    found = xp.sort(key, axis=-1, stable=True)[..., :width] < math.inf
    nlist = xp.where(found, order[..., :width], -xp.ones_like(order[..., :width]))
    if width < nsel:
        pad = -xp.ones((*nlist.shape[:2], nsel - width), dtype=xp.int64, device=device(r2))
        nlist = xp.concat([nlist, pad], axis=-1)
    return nlist


def dense_list(xp: Namespace, coord_ext: Array, atype_ext: Array, nloc: int, rcut: float,
               nsel: int) -> tuple[Array, Array]:
    """Sorted mixed-type list (nf, nloc, nsel) (:func:`sorted_list` of :func:`candidates`)
    and neighbor counts (nf, nloc)."""
    valid, r2 = candidates(xp, coord_ext, atype_ext, nloc, rcut)
    return sorted_list(xp, valid, r2, nsel), xp.sum(xp.astype(valid, xp.int64), axis=-1)


def reference_neighbor_list(xp: Namespace, coord: Array, atype: Array, cell: Array | None,
                            periodic: tuple[bool, bool, bool], rcut: float, nsel: int):
    """(coord_ext, atype_ext, mapping, nlist, count) of a validated batch.

    coord: (nf, nloc, 3) float; atype: (nf, nloc) int64; cell: (nf, 3, 3) invertible or
    None (open boundary: no wrapping, no ghosts).
    """
    nloc = atype.shape[1]
    if cell is None:
        local = xp.arange(nloc, dtype=xp.int64, device=device(atype))
        coord_ext, atype_ext = coord, atype
        mapping = xp.broadcast_to(local[None, :], atype.shape)
    else:
        coord_w = fold_into_cell(xp, coord, cell, periodic)
        shifts = image_shifts(cell, periodic, rcut)
        coord_ext, atype_ext, mapping = periodic_images(xp, coord_w, atype, cell, shifts)
    nlist, count = dense_list(xp, coord_ext, atype_ext, nloc, rcut, nsel)
    return coord_ext, atype_ext, mapping, nlist, count
