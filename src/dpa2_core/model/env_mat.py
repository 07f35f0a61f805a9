"""Environment matrix, switch function, pair-exclusion mask and per-block sub-lists."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._compat import Array, device, gather_rows

__all__ = [
    "centre_stats", "env_mat", "exclusion_mask", "exclusion_table", "Geometry", "geometry",
    "neighbor_types", "pad_nlist", "safe_norm", "sub_list", "switch", "type_index",
]


class Geometry(NamedTuple):
    """Displacements to the neighbors of the full (repinit-width) list.

    d: (nf, nloc, nnei, 3) neighbor minus centre, gathered once for all blocks
    (empty slots read extended atom 0); r2: (nf, nloc, nnei) squared length.
    """

    d: Array
    r2: Array


def geometry(xp: Any, coord_ext: Array, nlist: Array) -> Geometry:
    """coord_ext: (nf, nall, 3); nlist: (nf, nloc, nnei), -1 padded."""
    nloc = nlist.shape[1]
    idx = xp.where(nlist >= 0, nlist, xp.zeros_like(nlist))
    neighbors = gather_rows(xp, coord_ext, idx)  # (nf, nloc, nnei, 3)
    d = neighbors - coord_ext[:, :nloc, None, :]
    return Geometry(d, xp.sum(d * d, axis=-1))


def safe_norm(xp: Any, r2: Array, valid: Array) -> Array:
    """``sqrt(r2)`` at valid slots (0 for coincident atoms), 1 at empty ones.

    The double ``where`` keeps the gradient finite at empty slots and at r = 0.
    """
    ok = valid & (r2 > 0)
    one = xp.ones_like(r2)
    r = xp.sqrt(xp.where(ok, r2, one))
    return xp.where(ok, r, xp.where(valid, xp.zeros_like(r2), one))


def pad_nlist(xp: Any, nlist: Array, width: int) -> Array:
    """(nf, nloc, nnei) -> (nf, nloc, width): padded with -1, or cut (sub-lists are
    prefixes of the sorted list)."""
    nf, nloc, nnei = nlist.shape
    if nnei >= width:
        return nlist[..., :width]
    pad = -xp.ones((nf, nloc, width - nnei), dtype=nlist.dtype, device=device(nlist))
    return xp.concat([nlist, pad], axis=-1)


def sub_list(xp: Any, nlist: Array, r2: Array, rcut: float, nsel: int) -> Array:
    """First ``nsel`` columns of the sorted list with entries beyond ``rcut`` set to -1.

    nlist, r2: (nf, nloc, nnei >= nsel) -> (nf, nloc, nsel).
    """
    sub = nlist[..., :nsel]
    far = xp.sqrt(r2[..., :nsel]) > rcut  # r, not r²: the two differ by an ulp at rcut
    return xp.where(far, -xp.ones_like(sub), sub)


def switch(xp: Any, r: Array, rcut_smth: float, rcut: float) -> Array:
    """C2 switch: 1 below ``rcut_smth``, 0 above ``rcut``, quintic in between."""
    u = (xp.clip(r, rcut_smth, rcut) - rcut_smth) / (rcut - rcut_smth)
    return u * u * u * (-6.0 * u * u + 15.0 * u - 10.0) + 1.0


def exclusion_table(ntypes: int, exclude_types: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(ntypes+1)**2 flat 0/1 table; index ``ntypes`` is 'no atom' and is never excluded."""
    pairs = {(a, b) for a, b in exclude_types} | {(b, a) for a, b in exclude_types}
    n = ntypes + 1
    return np.asarray([int((a, b) not in pairs) for a in range(n) for b in range(n)],
                      dtype=np.int64)


def type_index(xp: Any, types: Array, ntypes: int) -> Array:
    """Map negative (virtual/empty) types to the padding index ``ntypes``."""
    return xp.where(types >= 0, types, xp.full_like(types, ntypes))


def neighbor_types(xp: Any, atype_ext: Array, nlist: Array, ntypes: int) -> Array:
    """Types of the slots of ``nlist`` (nf, nloc, nnei); empty slots read atom 0's type."""
    idx = xp.where(nlist >= 0, nlist, xp.zeros_like(nlist))
    return type_index(xp, gather_rows(xp, atype_ext, idx), ntypes)


def exclusion_mask(
    xp: Any, config: Any, atype_ext: Array, nlist: Array
) -> Array | None:
    """Per-slot 0/1 keep mask (nf, nloc, nnei) as bool, or ``None`` when nothing is excluded.

    Empty slots count as type ``ntypes`` and are therefore kept.
    """
    if not config.exclude_types:
        return None
    nt = config.ntypes
    nloc = nlist.shape[1]
    ti = type_index(xp, atype_ext[:, :nloc], nt)[:, :, None]
    tj = neighbor_types(xp, atype_ext, nlist, nt)
    tj = xp.where(nlist >= 0, tj, xp.full_like(tj, nt))
    table = xp.asarray(exclusion_table(nt, config.exclude_types), device=device(nlist))
    keep = xp.take(table, xp.reshape(ti * (nt + 1) + tj, (-1,)), axis=0)
    return xp.reshape(keep, nlist.shape) > 0


def env_mat(
    xp: Any,
    geo: Geometry,
    valid: Array,
    atype: Array,
    davg: Array,
    dstd: Array,
    rcut: float,
    rcut_smth: float,
    protection: float,
) -> tuple[Array, Array, Array]:
    """Normalised environment matrix of one block.

    geo: displacements of the full list (the first ``S`` columns are used);
    valid: (nf, nloc, S) bool; atype: (nf, nloc) centre types; davg, dstd: (nt, S, 4).
    Returns R (nf, nloc, S, 4), masked d (nf, nloc, S, 3), masked sw (nf, nloc, S).
    Empty slots of a real centre carry ``-davg/dstd`` (deepmd normalises after masking).
    """
    nsel = valid.shape[-1]
    d, r2 = geo.d[..., :nsel, :], geo.r2[..., :nsel]
    r = safe_norm(xp, r2, valid)
    weight = xp.where(valid, switch(xp, r, rcut_smth, rcut), xp.zeros_like(r))
    # r + p is 0 only for a neighbor on top of its centre with p = 0 (eager calls reject
    # that in check_values); under tracing such a row is 0 instead of inf/NaN.
    denom = r + protection
    ok = denom > 0
    inv = xp.where(ok, 1.0 / xp.where(ok, denom, xp.ones_like(denom)), xp.zeros_like(denom))
    d_masked = xp.where(valid[..., None], d, xp.zeros_like(d))
    raw = xp.concat([inv[..., None], d_masked * (inv * inv)[..., None]], axis=-1)
    raw = raw * weight[..., None]
    avg, std = centre_stats(xp, atype, davg, dstd)
    return (raw - avg) / std, d_masked, weight


def centre_stats(xp: Any, atype: Array, davg: Array, dstd: Array) -> tuple[Array, Array]:
    """davg/dstd rows of each centre (nf, nloc, S, 4); virtual centres get 0 and 1."""
    nf, nloc = atype.shape
    real = (atype >= 0)[..., None, None]
    idx = xp.reshape(xp.where(atype >= 0, atype, xp.zeros_like(atype)), (-1,))
    shape = (nf, nloc, *davg.shape[1:])
    avg = xp.reshape(xp.take(davg, idx, axis=0), shape)
    std = xp.reshape(xp.take(dstd, idx, axis=0), shape)
    return xp.where(real, avg, xp.zeros_like(avg)), xp.where(real, std, xp.ones_like(std))
