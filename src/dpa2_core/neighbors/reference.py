"""The dense O(N²) neighbor-list builder: pure array API, the reference for small systems.

Runs eagerly on any array namespace (numpy, torch, jax, array-api-strict): no in-place
updates, no boolean indexing. Ghosts are every image within ``ceil(rcut / height)``
cells along each periodic axis (like deepmd-kit), shift-major: extended atom
``s * nloc + i`` is local atom ``i`` moved by the ``s``-th shift, shift 0 being (0, 0, 0).
Memory is O(nf · nloc · nall); use the vesin engine beyond a few thousand atoms.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._compat import Array, device, to_numpy
from .cells import heights

__all__ = ["dense_list", "extend", "image_shifts", "reference_neighbor_list", "wrap"]


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


def _cross(xp: Any, a: Array, b: Array) -> Array:
    """Row-wise cross product of (..., 3) arrays (``linalg.cross`` is an extension)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return xp.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def wrap(xp: Any, coord: Array, cell: Array, periodic: tuple[bool, bool, bool]) -> Array:
    """Fold coord (nf, nloc, 3) into cell (nf, 3, 3) along periodic axes, s in [0, 1)."""
    a0, a1, a2 = cell[:, 0, :], cell[:, 1, :], cell[:, 2, :]
    cols = xp.stack([_cross(xp, a1, a2), _cross(xp, a2, a0), _cross(xp, a0, a1)], axis=-1)
    det = xp.sum(a0 * cols[..., 0], axis=-1)
    frac = xp.matmul(coord, cols / det[:, None, None])  # (nf, nloc, 3)
    folded = frac - xp.floor(frac)
    folded = xp.where(folded >= 1.0, folded - 1.0, folded)
    mask = xp.asarray(list(periodic), device=device(coord))
    return xp.matmul(xp.where(mask, folded, frac), cell)


def extend(xp: Any, coord: Array, atype: Array, cell: Array, shifts: np.ndarray):
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


def dense_list(xp: Any, coord_ext: Array, atype_ext: Array, nloc: int, rcut: float,
               nsel: int) -> tuple[Array, Array]:
    """Sorted mixed-type list (nf, nloc, nsel) and neighbor counts (nf, nloc).

    Rows hold every real neighbor with sqrt(r²) <= rcut (r² as the descriptor computes it),
    closest first, ties by extended index; then -1. Virtual atoms are never neighbors and
    have empty rows.
    """
    nall = atype_ext.shape[1]
    d = coord_ext[:, None, :, :] - coord_ext[:, :nloc, None, :]  # (nf, nloc, nall, 3)
    r2 = xp.sum(d * d, axis=-1)
    dev = device(coord_ext)
    other = xp.arange(nall, device=dev)[None, :] != xp.arange(nloc, device=dev)[:, None]
    real = (atype_ext[:, None, :] >= 0) & (atype_ext[:, :nloc, None] >= 0)
    valid = real & other[None, ...] & (xp.sqrt(r2) <= rcut)  # r, as deepmd-kit
    key = xp.where(valid, r2, xp.full_like(r2, math.inf))
    order = xp.astype(xp.argsort(key, axis=-1, stable=True), xp.int64)
    width = min(nsel, nall)
    found = xp.sort(key, axis=-1, stable=True)[..., :width] < math.inf
    nlist = xp.where(found, order[..., :width], -xp.ones_like(order[..., :width]))
    if width < nsel:
        pad = -xp.ones((*nlist.shape[:2], nsel - width), dtype=xp.int64, device=dev)
        nlist = xp.concat([nlist, pad], axis=-1)
    return nlist, xp.sum(xp.astype(valid, xp.int64), axis=-1)


def reference_neighbor_list(xp: Any, coord: Array, atype: Array, cell: Array | None,
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
        coord_w = wrap(xp, coord, cell, periodic)
        shifts = image_shifts(cell, periodic, rcut)
        coord_ext, atype_ext, mapping = extend(xp, coord_w, atype, cell, shifts)
    nlist, count = dense_list(xp, coord_ext, atype_ext, nloc, rcut, nsel)
    return coord_ext, atype_ext, mapping, nlist, count
