"""Input statistics, the pure part (§12): per-type sums of the raw environment matrix.

:func:`env_stat_sums` is array-API code: it takes one batch of extended inputs in any
namespace and returns, per block and centre type, the count, sum and sum of squares of
the raw environment matrix (radial column; the three angular columns pooled).
:func:`finalize` turns accumulated sums into ``davg``/``dstd`` exactly as deepmd-kit's
``DescrptDPA2.compute_input_stats`` does; :func:`with_stats` puts them into a params tree.
Streaming frames through the neighbor-list builder is :mod:`dpa2_core.training.statistics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._compat import Array, device, namespace
from .checks import check_shapes, check_values
from .config import DPA2Config
from .env_mat import env_mat, exclusion_mask, geometry, pad_nlist, sub_list

__all__ = ["env_stat_sums", "finalize", "stat_blocks", "STD_EMPTY", "STD_FLOOR", "with_stats"]

STD_FLOOR = 1e-2  # a std below this is raised to it
STD_EMPTY = 0.1  # std of a type that never occurs


def stat_blocks(config: DPA2Config) -> dict[str, tuple[float, float, int, bool]]:
    """``{block: (rcut, rcut_smth, nsel, set_davg_zero)}`` of the blocks that carry statistics."""
    ri, rf = config.repinit, config.repformer
    blocks = {"repinit": (ri.rcut, ri.rcut_smth, ri.nsel, ri.set_davg_zero)}
    if ri.use_three_body:
        blocks["three_body"] = (ri.three_body_rcut, ri.three_body_rcut_smth,
                                ri.three_body_sel, ri.set_davg_zero)
    blocks["repformer"] = (rf.rcut, rf.rcut_smth, rf.nsel, rf.set_davg_zero)
    return blocks


def _type_sums(xp: Any, raw: Array, onehot: Array) -> Array:
    """raw (nf, nloc, S, 4), onehot (nf, nloc, nt) -> (nt, 2, 3): [r, a] x [N, sum, sum sq]."""
    nsel = raw.shape[2]
    r, a = raw[..., 0], raw[..., 1:]
    per_atom = xp.stack([xp.sum(r, axis=-1), xp.sum(r * r, axis=-1),
                         xp.sum(a, axis=(-2, -1)), xp.sum(a * a, axis=(-2, -1))], axis=-1)
    # (nf, nloc, nt, 1) * (nf, nloc, 1, 4) summed over frames and atoms -> (nt, 4)
    sums = xp.sum(onehot[..., None] * per_atom[..., None, :], axis=(0, 1))
    atoms = xp.sum(onehot, axis=(0, 1))  # (nt,)
    radial = xp.stack([atoms * nsel, sums[:, 0], sums[:, 1]], axis=-1)
    angular = xp.stack([atoms * (3 * nsel), sums[:, 2], sums[:, 3]], axis=-1)
    return xp.stack([radial, angular], axis=1)


def env_stat_sums(
    config: DPA2Config,
    coord_ext: Array,
    atype_ext: Array,
    nlist: Array,
    mapping: Array | None = None,
    *,
    validate: bool = True,
) -> dict[str, Array]:
    """Per-block sums of the raw environment matrix of one batch, in the inputs' namespace.

    coord_ext: (nf, nall, 3) or (nf, nall*3); atype_ext: (nf, nall); nlist: (nf, nloc,
    nnei) sorted by distance, -1 padded, built at ``config.rcut``; mapping as in
    :func:`dpa2_core.descriptor`. Each block uses the prefix sub-list of its own
    ``(rcut, nsel)``, which equals a list built with those (§3.5).
    Returns ``{block: (ntypes, 2, 3)}`` in ``coord_ext``'s dtype: for the radial column
    and the pooled angular columns, the number of entries, their sum and sum of
    squares, over every slot (empty and excluded slots count as zeros) of every
    centre of that type. Virtual centres (type < 0) are not counted.
    """
    xp = namespace(coord_ext, atype_ext, nlist)
    coord_ext, mapping = check_shapes(xp, coord_ext, atype_ext, nlist, mapping)
    if validate:
        check_values(xp, config.ntypes, coord_ext, atype_ext, nlist, mapping,
                     env_protection=config.env_protection)
    nloc, nt, dtype = nlist.shape[1], config.ntypes, coord_ext.dtype
    nlist = pad_nlist(xp, nlist, config.nsel)
    geo = geometry(xp, coord_ext, nlist)
    atype = atype_ext[:, :nloc]
    types = xp.arange(nt, dtype=atype.dtype, device=device(atype))
    onehot = xp.astype(atype[..., None] == types, dtype)  # (nf, nloc, nt)
    out = {}
    for block, (rcut, rcut_smth, nsel, _) in stat_blocks(config).items():
        sub = sub_list(xp, nlist, geo.r2, rcut, nsel)
        zeros = xp.zeros((nt, nsel, 4), dtype=dtype, device=device(coord_ext))
        raw, _, _ = env_mat(xp, geo, sub >= 0, atype, zeros, zeros + 1.0, rcut, rcut_smth,
                            config.env_protection)
        keep = exclusion_mask(xp, config, atype_ext, sub)
        if keep is not None:  # excluded pairs become zero rows but are still counted
            raw = raw * xp.astype(keep, dtype)[..., None]
        out[block] = _type_sums(xp, raw, onehot)
    return out


def finalize(sums: np.ndarray, nsel: int) -> tuple[np.ndarray, np.ndarray]:
    """(ntypes, 2, 3) accumulated sums -> davg, dstd of shape (ntypes, nsel, 4), float64.

    mean = sum/N (0 if N = 0); std = sqrt(max(sumsq/N - mean**2, 0)) floored at 1e-2,
    0.1 if N = 0. davg = (mean_r, 0, 0, 0), dstd = (std_r, std_a, std_a, std_a).
    """
    sums = np.asarray(sums, dtype=np.float64)
    n, s, q = sums[..., 0], sums[..., 1], sums[..., 2]  # (nt, 2)
    seen = n > 0
    safe_n = np.where(seen, n, 1.0)
    mean = np.where(seen, s / safe_n, 0.0)
    var = np.clip(q / safe_n - mean * mean, 0.0, None)
    std = np.where(seen, np.maximum(np.sqrt(var), STD_FLOOR), STD_EMPTY)
    zero = np.zeros_like(mean[:, 0])
    davg = np.stack([mean[:, 0], zero, zero, zero], axis=-1)
    dstd = np.stack([std[:, 0], std[:, 1], std[:, 1], std[:, 1]], axis=-1)
    tile = (1, nsel, 1)
    return np.tile(davg[:, None, :], tile), np.tile(dstd[:, None, :], tile)



def with_stats(params: dict, config: DPA2Config, totals: dict[str, np.ndarray]) -> dict:
    """Copy of ``params`` with each block's dstd (and davg unless set_davg_zero) replaced."""
    out = dict(params)
    for block, (_, _, nsel, davg_zero) in stat_blocks(config).items():
        old = params[block]
        if tuple(old["dstd"].shape) != (config.ntypes, nsel, 4):
            raise ValueError(f"params[{block}/dstd]: expected shape {(config.ntypes, nsel, 4)}, "
                             f"got {tuple(old['dstd'].shape)}")
        davg, dstd = finalize(totals[block], nsel)
        xp = namespace(old["dstd"])
        new = {**old, "dstd": xp.asarray(dstd, dtype=old["dstd"].dtype,
                                          device=device(old["dstd"]))}
        if not davg_zero:
            new["davg"] = xp.asarray(davg, dtype=old["davg"].dtype, device=device(old["davg"]))
        out[block] = new
    return out
