"""Host-side checks and geometry of structures: batching, cells, wrapping (numpy).

Cells follow deepmd-kit: rows are lattice vectors, ``x = s @ cell`` for fractional
``s``. Axes that are not periodic (mixed ``pbc``) get their cell vector replaced by
an orthonormal completion of the periodic ones, so every cell used downstream is
invertible; those axes are never wrapped and never imaged.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .._compat import Array, Namespace, device, to_numpy

__all__ = [
    "DEGENERATE_TOL", "MAX_IMAGES", "Structure", "check_cell", "check_images", "check_structure",
    "complete_cell", "fold_into_cell", "heights", "shift_vectors",
]

# |det| / prod(|a_d|) below this means the periodic vectors are (nearly) linearly dependent.
DEGENERATE_TOL = 1e-8
# More periodic images of the cell than this within rcut means a cell far thinner than any
# physical structure (a near-flat cell): refuse it instead of building billions of ghosts.
MAX_IMAGES = 100_000


class Structure(NamedTuple):
    """A validated batch on the host.

    coord: (nf, nloc, 3) float64; atype: (nf, nloc) int64 (< 0 = virtual);
    cell: (nf, 3, 3) float64 invertible (completed on non-periodic axes) or None;
    periodic: three bools (all False when cell is None); dtype: the caller's float dtype.
    """

    coord: np.ndarray
    atype: np.ndarray
    cell: np.ndarray | None
    periodic: tuple[bool, bool, bool]
    dtype: np.dtype


def _float_dtype(coord: np.ndarray) -> np.dtype:
    return coord.dtype if np.issubdtype(coord.dtype, np.floating) else np.dtype(np.float64)


def _batch_shapes(coord: np.ndarray, atype: np.ndarray, box: np.ndarray | None):
    """Add the frame axis to single frames; check every shape. Returns numpy arrays."""
    single = coord.ndim == 2
    if single:
        coord, atype = coord[None], atype[None]
        box = None if box is None else box[None]
    if coord.ndim != 3 or coord.shape[-1] != 3:
        raise ValueError(f"coord: expected shape (nf, nloc, 3) or (nloc, 3), got "
                         f"{tuple(coord.shape) if not single else tuple(coord.shape[1:])}")
    nf, nloc = coord.shape[:2]
    if tuple(atype.shape) != (nf, nloc):
        want = f"({nloc},)" if single else f"({nf}, {nloc})"
        got = tuple(atype.shape[1:]) if single else tuple(atype.shape)
        raise ValueError(f"atype: expected shape {want} to match coord, got {got}")
    if box is not None:
        if box.shape[1:] == (9,):
            box = box.reshape(nf, 3, 3)
        if tuple(box.shape) != (nf, 3, 3):
            want = "(3, 3) or (9,)" if single else \
                f"(nf={nf}, 3, 3) or ({nf}, 9) (a (3, 3) box goes with a single frame)"
            raise ValueError(f"box: expected shape {want}, got "
                             f"{tuple(box.shape[1:]) if single else tuple(box.shape)}")
    return coord, atype, box


def _pbc(pbc: Any, has_box: bool) -> tuple[bool, bool, bool]:
    if not has_box:
        if pbc is not None and bool(np.any(pbc)):
            raise ValueError(f"pbc={pbc!r}: periodic axes need a box")
        return (False, False, False)
    if pbc is None:
        return (True, True, True)
    flags = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    return tuple(bool(p) for p in flags)


def complete_cell(cell: np.ndarray, periodic: tuple[bool, bool, bool]) -> np.ndarray:
    """Replace the vectors of non-periodic axes by an orthonormal completion.

    cell: (3, 3) -> (3, 3), at least one axis periodic. The periodic vectors are kept
    exactly.
    """
    if all(periodic):
        return cell
    keep = [d for d in range(3) if periodic[d]]
    _, _, vt = np.linalg.svd(cell[keep])  # rows len(keep): span the complement
    extra = iter(vt[len(keep):])
    rows = [cell[d] if periodic[d] else next(extra) for d in range(3)]
    return np.stack(rows)


def check_cell(cell: np.ndarray, periodic: tuple[bool, bool, bool], frame: int,
               what: str = "box") -> None:
    """The one degeneracy rule: raise a ValueError naming ``what`` and the frame when the
    lattice vectors of cell (3, 3) span (nearly) no volume, |det| <= 1e-8 prod |a_d|."""
    norms = np.linalg.norm(cell, axis=-1)
    volume = abs(np.linalg.det(cell))
    if not np.all(norms > 0) or volume <= DEGENERATE_TOL * np.prod(norms):
        raise ValueError(f"{what}: frame {frame} is degenerate (zero volume: the periodic "
                         f"lattice vectors are zero or linearly dependent), box=\n"
                         f"{cell.tolist()}")


def check_structure(coord: Any, atype: Any, box: Any = None, pbc: Any = None,
                    ntypes: int | None = None) -> Structure:
    """Validate a structure (any array backend) and return it batched, in numpy float64.

    coord: (nf, nloc, 3) or (nloc, 3); atype: (nf, nloc) or (nloc,); box: (nf, 3, 3),
    (nf, 9), (3, 3) or None; pbc: None (all periodic with a box) or 3 bools.
    """
    coord_np = to_numpy(coord)
    dtype = _float_dtype(coord_np)
    atype_np = to_numpy(atype)
    box_np = None if box is None else to_numpy(box).astype(np.float64)
    coord_np, atype_np, box_np = _batch_shapes(coord_np.astype(np.float64), atype_np, box_np)
    if not (np.issubdtype(atype_np.dtype, np.integer) or atype_np.size == 0):
        raise ValueError(f"atype: must be an integer array, got dtype {atype_np.dtype}")
    atype_np = atype_np.astype(np.int64)
    if not np.all(np.isfinite(coord_np)):
        f, i = np.argwhere(~np.isfinite(coord_np))[0][:2]
        raise ValueError(f"coord: contains NaN or inf (frame {f}, atom {i})")
    if ntypes is not None and atype_np.size and int(atype_np.max()) >= ntypes:
        raise ValueError(f"atype: types must be < ntypes={ntypes}, got {int(atype_np.max())}")
    periodic = _pbc(pbc, box_np is not None)
    if box_np is not None and not any(periodic):
        box_np = None
    if box_np is not None:
        if not np.all(np.isfinite(box_np)):
            raise ValueError("box: contains NaN or inf")
        box_np = np.stack([complete_cell(c, periodic) for c in box_np]) if len(box_np) \
            else box_np
        for f, c in enumerate(box_np):
            check_cell(c, periodic, f)
    return Structure(coord_np, atype_np, box_np, periodic, dtype)


def _cross(xp: Namespace, a: Array, b: Array) -> Array:
    """Row-wise cross product of (..., 3) arrays (``linalg.cross`` is an extension)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return xp.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def fold_into_cell(xp: Namespace, coord: Array, cell: Array,
                   periodic: tuple[bool, bool, bool]) -> Array:
    """The one folding rule: positions into the cell along periodic axes, s -> s mod 1 in
    [0, 1) (array API; the neighbor-list engines and the in-jit JAX list all use it).

    coord: (nf, nloc, 3) Å; cell: (nf, 3, 3) invertible, rows = lattice vectors. The
    fractional coordinates come from cross products (``linalg.inv`` is an extension).
    """
    a0, a1, a2 = cell[:, 0, :], cell[:, 1, :], cell[:, 2, :]
    cols = xp.stack([_cross(xp, a1, a2), _cross(xp, a2, a0), _cross(xp, a0, a1)], axis=-1)
    det = xp.sum(a0 * cols[..., 0], axis=-1)
    frac = xp.matmul(coord, cols / det[:, None, None])  # (nf, nloc, 3)
    folded = frac - xp.floor(frac)
    folded = xp.where(folded >= 1.0, folded - 1.0, folded)
    mask = xp.asarray(list(periodic), device=device(coord))
    return xp.matmul(xp.where(mask, folded, frac), cell)


def heights(cell: np.ndarray) -> np.ndarray:
    """Face-to-face distances (..., 3) of (..., 3, 3) cells (any handedness)."""
    a0, a1, a2 = cell[..., 0, :], cell[..., 1, :], cell[..., 2, :]
    volume = np.abs(np.sum(a0 * np.cross(a1, a2), axis=-1))
    faces = np.stack([np.cross(a1, a2), np.cross(a2, a0), np.cross(a0, a1)], axis=-2)
    return volume[..., None] / np.linalg.norm(faces, axis=-1)


def check_images(cell: np.ndarray | None, periodic: tuple[bool, bool, bool],
                 rcut: float) -> None:
    """Raise a ValueError naming ``box`` when covering ``rcut`` needs more than
    :data:`MAX_IMAGES` periodic images of some frame's cell (nf, 3, 3)."""
    if cell is None:
        return
    for f, h in enumerate(heights(cell)):
        reach = [2 * math.ceil(rcut / h[d]) + 1 if periodic[d] else 1 for d in range(3)]
        if math.prod(reach) > MAX_IMAGES:
            raise ValueError(
                f"box: frame {f} is too thin for rcut={rcut}: face-to-face heights "
                f"{[float(f'{x:.3g}') for x in h]} Å need {reach[0]}x{reach[1]}x{reach[2]} "
                f"periodic images (limit {MAX_IMAGES}); is the cell nearly flat?")


def shift_vectors(shifts: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Cartesian image offsets ``S0*a0 + S1*a1 + S2*a2`` (elementwise, bit-reproducible).

    shifts: (..., 3) integer; cell: (3, 3) -> (..., 3) float64.
    """
    s = shifts.astype(np.float64)
    return s[..., 0:1] * cell[0] + s[..., 1:2] * cell[1] + s[..., 2:3] * cell[2]
