"""The ghost extension as fixed index data, and the extended coordinates it implies.

A neighbor list is built once on the host; what the model needs afterwards is index data
(:class:`Extension`) plus a constant per-ghost ``shift`` (periodic image offset and
folding into the cell), so that ``coord_ext = coord[mapping] + shift`` stays a
differentiable function of the local coordinates: every periodic image moves with its
atom. Both shims use :func:`extension` on the host and :func:`extend_coord` on the device.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._compat import Array, gather_rows, to_numpy
from .builder import build_neighbor_list

__all__ = ["Extension", "extend_coord", "extension"]


class Extension(NamedTuple):
    """Ghost extension of fixed topology: ``coord_ext = coord[mapping] + shift``.

    atype_ext, mapping: (nf, nall) int, -1 on padding; nlist: (nf, nloc, nnei) int, -1
    padded, sorted by distance; shift: (nf, nall, 3) float, Å (0 on padding). The
    leading ``nf`` may be absent (one frame, e.g. under ``vmap``).
    """

    atype_ext: Array
    mapping: Array
    nlist: Array
    shift: Array


def extension(coord: Any, atype: Any, config: Any, box: Any = None, *, pbc: Any = None,
              bucket: int = 1) -> Extension:
    """The ghost extension of a batch as numpy :class:`Extension` (int64 indices, float64
    shift), built with :func:`dpa2_core.build_neighbor_list`.

    coord: (nf, nloc, 3) Å; atype: (nf, nloc); box: (nf, 3, 3), (nf, 9) or None.
    ``nall`` is rounded up to a multiple of ``bucket`` with padding atoms, so that many
    structures share one shape (one compile).
    """
    if bucket < 1:
        raise ValueError(f"bucket={bucket!r}: must be >= 1")
    coord = np.asarray(to_numpy(coord), dtype=np.float64)
    if box is not None:
        box = np.asarray(to_numpy(box), dtype=np.float64).reshape(-1, 3, 3)
    coord_ext, atype_ext, mapping, nlist = (np.asarray(x) for x in build_neighbor_list(
        coord, atype, config, box, pbc=pbc))
    coord = coord.reshape(coord_ext.shape[0], -1, 3)
    own = np.take_along_axis(coord, np.maximum(mapping, 0)[..., None], axis=1)
    shift = np.where(mapping[..., None] >= 0, coord_ext.astype(np.float64) - own, 0.0)
    extra = -(-atype_ext.shape[1] // bucket) * bucket - atype_ext.shape[1]

    def pad(x: np.ndarray, value: Any) -> np.ndarray:
        return np.pad(x, [(0, 0), (0, extra)] + [(0, 0)] * (x.ndim - 2), constant_values=value)

    return Extension(pad(atype_ext.astype(np.int64), -1), pad(mapping.astype(np.int64), -1),
                     nlist.astype(np.int64), pad(shift, 0.0))


def extend_coord(xp: Any, coord: Array, mapping: Array, shift: Array) -> Array:
    """coord (nf, nloc, 3) -> coord_ext (nf, nall, 3) = coord[mapping] + shift.

    mapping: (nf, nall) int, -1 on padding (padding rows read atom 0, plus their shift);
    shift: (nf, nall, 3). Without the leading ``nf`` (one frame) the result has none either.
    """
    if coord.ndim == 2:
        return extend_coord(xp, coord[None], mapping[None], shift[None])[0]
    safe = xp.where(mapping >= 0, mapping, xp.zeros_like(mapping))
    return gather_rows(xp, coord, safe) + xp.astype(shift, coord.dtype)

