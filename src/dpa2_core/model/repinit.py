"""Repinit (se_atten without attention) and its optional three-body block."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._compat import (
    Array,
    BlockPlan,
    Namespace,
    gather_rows,
    in_atom_order,
    plan_width,
    take_rows,
    used_width,
    width_blocks,
)
from .config import DPA2Config
from .env_mat import Geometry, env_mat, exclusion_mask, neighbor_types, type_index
from .layers import dense_split, embedding_net, skips

__all__ = ["block_env", "BlockEnv", "repinit", "silent_beyond", "three_body"]


class BlockEnv(NamedTuple):
    """Pre-processed environment of one repinit-style block (§7.1).

    rr: (nf, nloc, S, 4) normalised env-mat with excluded rows zeroed;
    sw: (nf, nloc, S) switch, zero at invalid slots; mask: (nf, nloc, S) bool;
    idx: (nf, nloc, S) neighbor index with invalid slots sent to atom 0.
    """

    rr: Array
    sw: Array
    mask: Array
    idx: Array

    def take(self, xp: Namespace, rows: Array | None, width: int) -> BlockEnv:
        """The centres ``rows`` ((n,) int; None: all) and their first ``width`` slots."""
        rr = take_rows(xp, self.rr, rows)[..., :width, :]
        return BlockEnv(rr, *(take_rows(xp, x, rows)[..., :width] for x in self[1:]))


def block_env(xp: Namespace, config: DPA2Config, params: dict, geo: Geometry, nlist: Array,
              atype_ext: Array, rcut: float, rcut_smth: float) -> BlockEnv:
    """Env-mat first, exclusion after: empty slots keep their ``-davg/dstd`` residual (§5.5).

    nlist: (nf, nloc, S) sub-list of the block, -1 padded; atype_ext: (nf, nall); rcut,
    rcut_smth in Å.
    """
    nloc = nlist.shape[1]
    valid = nlist >= 0
    rr, _, sw = env_mat(xp, geo, valid, atype_ext[:, :nloc], params["davg"], params["dstd"],
                        rcut, rcut_smth, config.env_protection)
    keep = exclusion_mask(xp, config, atype_ext, nlist)
    if keep is not None:
        valid = valid & keep
        sw = xp.where(valid, sw, xp.zeros_like(sw))
        rr = xp.where(keep[..., None], rr, xp.zeros_like(rr))
    idx = xp.where(valid, nlist, xp.zeros_like(nlist))
    return BlockEnv(rr, sw, valid, idx)


def _concat_net(xp: Namespace, layers: list, parts: list[Array], act: str) -> Array:
    """Embedding net of the (broadcast) concatenation of ``parts`` (concat input mode).

    The first layer is applied part by part, so the wide pair input is never built.
    """
    if skips(layers[0]):
        shape = np.broadcast_shapes(*(tuple(x.shape[:-1]) for x in parts))
        full = [xp.broadcast_to(x, (*shape, x.shape[-1])) for x in parts]
        return embedding_net(xp, layers, xp.concat(full, axis=-1), act)
    return embedding_net(xp, layers[1:], dense_split(xp, layers[0], parts, act), act)


def _pair_table(xp: Namespace, strip_net: list, tebd_table: Array, act: str,
                centre_first: bool) -> Array:
    """((nt+1)**2, ng) strip-net outputs for every ordered type pair.

    Row ``a*(nt+1) + b`` holds Net([T[a], T[b]]) (``centre_first``) or Net([T[b], T[a]]).
    """
    ntp, tebd = tebd_table.shape
    first = xp.broadcast_to(tebd_table[:, None, :], (ntp, ntp, tebd))
    second = xp.broadcast_to(tebd_table[None, :, :], (ntp, ntp, tebd))
    pair = [first, second] if centre_first else [second, first]
    pairs = xp.reshape(xp.concat(pair, axis=-1), (ntp * ntp, 2 * tebd))
    return embedding_net(xp, strip_net, pairs, act)


def repinit(xp: Namespace, config: DPA2Config, params: dict, geo: Geometry, nlist: Array,
            atype_ext: Array, tebd_ext: Array, tebd_table: Array,
            width: int | BlockPlan | None = None) -> Array:
    """Repinit output (nf, nloc, ng * axis_neuron), ``ng``-major flattening (§7).

    nlist: (nf, nloc, S_i) sub-list; atype_ext: (nf, nall); tebd_ext: (nf, nall, tebd);
    tebd_table: (nt+1, tebd); width: a static bound on the silent cut, or static sorted
    blocks (:func:`.dpa2.live_widths`), None to read them from the values when eager.
    """
    cfg = config.repinit
    nf, nloc, nsel = nlist.shape  # the normalisation keeps the configured S_i
    nlist, params = _cut_silent_slots(xp, nlist, params, 0, width)
    env = block_env(xp, config, params, geo, nlist, atype_ext, cfg.rcut, cfg.rcut_smth)
    ng = max(layer["w"].shape[-1] for layer in params["embedding"])
    blocks = _silent_blocks(xp, nlist, params["davg"], 0, lambda w: w * ng, width)
    out = [_repinit_rows(xp, config, params, env.take(xp, rows, w), rows, atype_ext, tebd_ext,
                         tebd_table) for rows, w in blocks]
    gr = in_atom_order(xp, out, blocks) / nsel  # (nf, nloc, ng, 4)
    d = xp.matmul(gr, xp.matrix_transpose(gr[..., : cfg.axis_neuron, :]))
    return xp.reshape(d, (nf, nloc, -1))


def _repinit_rows(xp: Namespace, config: DPA2Config, params: dict, env: BlockEnv,
                  rows: Array | None, atype_ext: Array, tebd_ext: Array, tebd_table: Array
                  ) -> Array:
    """sum_j g_ij^T R_ij of the centres ``rows`` (None: all): (nf, n, ng, 4), unscaled."""
    cfg = config.repinit
    act = cfg.activation_function
    nloc = env.rr.shape[1] if rows is None else None
    local = atype_ext[:, :nloc] if rows is None else take_rows(xp, atype_ext, rows)
    ss = env.rr[..., 0:1]
    if cfg.tebd_input_mode == "concat":
        parts = [ss, gather_rows(xp, tebd_ext, env.idx)]
        if not cfg.type_one_side:
            centre = tebd_ext[:, :nloc, ...] if rows is None else take_rows(xp, tebd_ext, rows)
            parts.append(centre[:, :, None, :])
        g = _concat_net(xp, params["embedding"], parts, act)
    else:
        g = embedding_net(xp, params["embedding"], ss, act)
        ntp = config.ntypes + 1
        tj = neighbor_types(xp, atype_ext, env.idx, config.ntypes)
        if cfg.type_one_side:
            table, pair = embedding_net(xp, params["embedding_strip"], tebd_table, act), tj
        else:
            table = _pair_table(xp, params["embedding_strip"], tebd_table, act, False)
            ti = type_index(xp, local, config.ntypes)[:, :, None]
            pair = ti * ntp + tj
        gt = xp.reshape(xp.take(table, xp.reshape(pair, (-1,)), axis=0), g.shape)
        if config.smooth:
            gt = gt * env.sw[..., None]
        g = g * gt + g
    return xp.matmul(xp.matrix_transpose(g), env.rr)


def _silent_blocks(xp: Namespace, nlist: Array, davg: Array, first: int, per_row: Any,
                   width: int | BlockPlan | None = None) -> list[tuple[Array | None, int]]:
    """Centres sorted into blocks by the slots they use (:func:`.._compat.width_blocks`),
    each block cut to its own width when the slots it drops are silent (components
    ``first:4`` of davg zero beyond the narrowest width); otherwise every block keeps all
    of the list's slots. While traced: the blocks of a static plan (``width``, checked
    silent by :func:`.dpa2.live_widths`), else one block of all rows and slots."""
    nsel = nlist.shape[-1]
    if isinstance(width, tuple):
        return [(rows, min(w, nsel)) for rows, w in width_blocks(xp, nlist >= 0, None, width)]
    blocks = width_blocks(xp, nlist >= 0, per_row)
    if blocks is None:
        return [(None, nsel)]
    narrowest = min(w for _, w in blocks)
    if narrowest < nsel and not silent_beyond(xp, davg, narrowest, first):
        return [(rows, nsel) for rows, _ in blocks]
    return blocks


def silent_beyond(xp: Namespace, davg: Array, width: int, first: int) -> bool:
    """Whether the slots ``width:`` are silent in a repinit-style block: components
    ``first:4`` of davg (ntypes, S, 4) are zero there, so an empty slot's §5.5 residual
    adds nothing to the block's sum (``first=0`` repinit, ``first=1`` three-body)."""
    return bool(xp.all(davg[:, width:, first:] == 0))


def _cut_silent_slots(xp: Namespace, nlist: Array, params: dict, first: int,
                      width: int | BlockPlan | None = None) -> tuple[Array, dict]:
    """Eager fast path of the repinit and three-body blocks: drop the trailing slots that
    are empty in every row when they are silent, i.e. components ``first:4`` of their
    §5.5 residual ``-davg/dstd`` are zero (``davg == 0`` there, as ``set_davg_zero`` and
    standard statistics leave them). Such a slot adds exactly 0 to the block's sum: in
    repinit (``first=0``) its env-mat row is zero; in the three-body block (``first=1``)
    every pair with it has ``angle == 0``. The cut changes nothing but the summation
    order. In water 16% of the repinit slots and 71% of the three-body pairs are such
    padding.

    nlist: (nf, nloc, S) -> (nf, nloc, S') and params with davg/dstd cut to S'.
    ``width``: a static bound whose slots beyond are known silent (:func:`.dpa2.live_widths`
    checked it on concrete values; of a plan: its widest block); without one, under
    jit/compile (or with traced parameters) nothing is cut.
    """
    davg, dstd = params["davg"], params["dstd"]
    width = plan_width(width)
    static = width is not None
    if not static:
        width = used_width(xp, nlist >= 0, davg, dstd)
    if width is None or width >= nlist.shape[-1]:
        return nlist, params
    width = max(width, 1)
    if not static and not silent_beyond(xp, davg, width, first):
        return nlist, params
    cut = {**params, "davg": davg[:, :width, ...], "dstd": dstd[:, :width, ...]}
    return nlist[..., :width], cut


def three_body(xp: Namespace, config: DPA2Config, params: dict, geo: Geometry, nlist: Array,
               atype_ext: Array, tebd_ext: Array, tebd_table: Array,
               width: int | BlockPlan | None = None) -> Array:
    """Three-body output (nf, nloc, ng3) from angle features of every slot pair (§8).

    nlist: (nf, nloc, S_3) sub-list; atype_ext: (nf, nall); tebd_ext: (nf, nall, tebd);
    tebd_table: (nt+1, tebd); width: as in :func:`repinit`.
    """
    cfg = config.repinit
    nsel = nlist.shape[-1]  # the normalisation keeps the configured S_3
    nlist, params = _cut_silent_slots(xp, nlist, params, 1, width)
    env = block_env(xp, config, params, geo, nlist, atype_ext,
                    cfg.three_body_rcut, cfg.three_body_rcut_smth)
    ng = max(layer["w"].shape[-1] for layer in params["embedding"])
    # centres are independent: eager calls run cache-sized blocks of them sorted by the
    # slots they use, each cut to its own width
    blocks = _silent_blocks(xp, nlist, params["davg"], 1, lambda w: w * w * ng, width)
    out = [_three_body_rows(xp, config, params, env.take(xp, rows, w), atype_ext, tebd_ext,
                            tebd_table) for rows, w in blocks]
    return in_atom_order(xp, out, blocks) / (nsel * nsel)


def _three_body_rows(xp: Namespace, config: DPA2Config, params: dict, env: BlockEnv,
                     atype_ext: Array, tebd_ext: Array, tebd_table: Array) -> Array:
    """sum_jk angle * g of one block of centres: (nf, n, ng3), unscaled."""
    cfg = config.repinit
    act = cfg.activation_function
    vec = env.rr[..., 1:4]
    angle = xp.matmul(vec, xp.matrix_transpose(vec))[..., None]  # (nf, n, S3, S3, 1)
    idx = env.idx
    if cfg.tebd_input_mode == "concat":
        nei = gather_rows(xp, tebd_ext, idx)  # (nf, n, S3, tebd)
        parts = [angle, nei[:, :, :, None, :], nei[:, :, None, :, :]]
        g = _concat_net(xp, params["embedding"], parts, act)
    else:
        g = embedding_net(xp, params["embedding"], angle, act)
        ntp = config.ntypes + 1
        tj = neighbor_types(xp, atype_ext, idx, config.ntypes)
        pair = tj[:, :, :, None] * ntp + tj[:, :, None, :]
        table = _pair_table(xp, params["embedding_strip"], tebd_table, act, True)
        gt = xp.reshape(xp.take(table, xp.reshape(pair, (-1,)), axis=0), g.shape)
        if config.smooth:
            sw = env.sw
            gt = gt * (sw[:, :, :, None] * sw[:, :, None, :])[..., None]
        g = g * gt + g
    return xp.sum(angle * g, axis=(2, 3))
