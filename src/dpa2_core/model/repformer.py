"""Repformer block (§10): message passing over single-atom g1 and pair g2/h2 channels."""

from __future__ import annotations

import math
from typing import NamedTuple

from .._compat import (
    Array,
    BlockPlan,
    Namespace,
    device,
    gather_rows,
    in_atom_order,
    take_rows,
    width_blocks,
)
from .activations import activation
from .attention import atten2_ev_apply, atten2_map, atten2_mh_apply, local_atten
from .config import DPA2Config, RepformerConfig
from .env_mat import Geometry, centre_stats, env_mat, exclusion_mask, safe_norm, type_index
from .layers import dense

__all__ = ["EPS", "Channels", "Neighborhood", "RepformerOut", "ghost_features", "grrg", "layer",
           "neighborhood", "repformer", "sym"]

EPS = 1e-4


class Neighborhood(NamedTuple):
    """Fixed per-block quantities shared by every layer.

    valid: (nf, nloc, S) bool; sw: (nf, nloc, S) masked switch; idx: (nf, nloc, S)
    neighbor index (invalid -> 0); weight: valid * sw (smooth) or valid as float;
    count: (nf, nloc, 1) number of valid neighbors; nsel: the configured width S_f, which
    the smooth normalisations use (S < nsel after the eager fast path cut empty slots).
    """

    valid: Array
    sw: Array
    idx: Array
    weight: Array
    count: Array
    nsel: int

    @property
    def silent(self) -> int:
        """Number of cut empty slots (they only join the smooth softmax sums)."""
        return self.nsel - self.valid.shape[-1]

    def cut(self, width: int) -> Neighborhood:
        """The first ``width`` slots."""
        return Neighborhood(*(x[..., :width] for x in self[:4]), self.count, self.nsel)

    def take(self, xp: Namespace, rows: Array | None) -> Neighborhood:
        """The centres ``rows`` ((n,) int; None: all of them)."""
        return Neighborhood(*(take_rows(xp, x, rows) for x in self[:5]), self.nsel)


class RepformerOut(NamedTuple):
    """Outputs of the block: g1 (nf, nloc, g1d), g2 (nf, nloc, S, g2d), h2 (nf, nloc, S, 3),
    rot_mat (nf, nloc, g2d, 3), sw (nf, nloc, S)."""

    g1: Array
    g2: Array
    h2: Array
    rot_mat: Array
    sw: Array


def _combine(xp: Namespace, style: str, updates: list[Array], residuals: list | None) -> Array:
    """res_avg / res_incr / res_residual over ``[u0, u1, ...]`` (§10.7)."""
    first, rest = updates[0], updates[1:]
    if not rest:
        return first
    if style == "res_residual":
        out = first
        for r, u in zip(residuals, rest, strict=True):
            out = out + r * u
        return out
    total = rest[0]
    for u in rest[1:]:
        total = total + u
    if style == "res_avg":
        return (first + total) / math.sqrt(len(updates))
    return first + total / math.sqrt(len(rest))


def sym(xp: Namespace, g: Array, h: Array, nb: Neighborhood, smooth: bool,
        sqrt_nnei: bool) -> Array:
    """HG_i = c * sum_j h_ij^T (g_ij * weight_ij): (nf, nloc, 3, G) (§10.6)."""
    nsel = nb.nsel
    if smooth:
        scale = 1.0 / (math.sqrt(nsel) if sqrt_nnei else nsel)
    else:
        n = xp.sqrt(nb.count) if sqrt_nnei else nb.count
        scale = (1.0 / (EPS + n))[..., None]
    return xp.matmul(xp.matrix_transpose(h), g * nb.weight[..., None]) * scale


def grrg(xp: Namespace, hg: Array, axis: int) -> Array:
    """Invariant (nf, nloc, axis*G) from HG, ``axis``-major, with the 1/3 factor."""
    out = xp.matmul(xp.matrix_transpose(hg[..., :axis]), hg) / 3.0
    return xp.reshape(out, (*out.shape[:-2], -1))


class Channels(NamedTuple):
    """The features a repformer layer reads.

    g1: (nf, nloc, g1d) single-atom features; gg1: (nf, nloc, S, g1d) g1 of each
    neighbor; g2: (nf, nloc, S, g2d) pair features; h2: (nf, nloc, S, 3) pair vectors.
    """

    g1: Array
    gg1: Array
    g2: Array
    h2: Array


def _g1_updates(xp: Namespace, p: dict, cfg: RepformerConfig, smooth: bool, c: Channels,
                nb: Neighborhood) -> list[Array]:
    """The U1 list of §10.4, each (nf, nloc, g1d): g1, self-MLP, outer conv, linear1 output,
    local attention."""
    act = cfg.activation_function
    u1, mlp = [c.g1], []
    if cfg.g1_out_mlp:
        u1.append(activation(xp, act, dense(xp, p["g1_self_mlp"], c.g1)))
    else:
        mlp.append(c.g1)
    if cfg.update_g1_has_conv:
        scale = 1.0 / nb.nsel if smooth else 1.0 / (EPS + nb.count)
        w = nb.weight[..., None]
        if cfg.g1_out_conv:
            # proj_g1g2 has no bias: the weight goes on its narrower g2d input, not on g1d
            u1.append(xp.sum(dense(xp, p["proj_g1g2"], c.g2 * w) * c.gg1, axis=-2) * scale)
        else:
            mlp.append(xp.sum(w * c.g2 * dense(xp, p["proj_g1g2"], c.gg1), axis=-2) * scale)
    if cfg.update_g1_has_grrg:
        mlp.append(grrg(xp, sym(xp, c.g2, c.h2, nb, smooth, cfg.use_sqrt_nnei), cfg.axis_neuron))
    if cfg.update_g1_has_drrd:
        mlp.append(grrg(xp, sym(xp, c.gg1, c.h2, nb, smooth, cfg.use_sqrt_nnei),
                        cfg.axis_neuron))
    u1.append(activation(xp, act, dense(xp, p["linear1"], xp.concat(mlp, axis=-1))))
    if cfg.update_g1_has_attn:
        u1.append(local_atten(xp, p["loc_attn"], cfg, smooth, c.g1, c.gg1, nb.sw, nb.valid,
                              nb.silent))
    return u1


def _pair_updates(xp: Namespace, p: dict, cfg: RepformerConfig, smooth: bool, c: Channels,
                  nb: Neighborhood) -> tuple[list[Array], list[Array]]:
    """The U2 list, each (nf, nloc, S, g2d), and the Uh list, each (nf, nloc, S, 3), of a
    layer that updates its pair channels."""
    u2 = [c.g2, activation(xp, cfg.activation_function, dense(xp, p["linear2"], c.g2))]
    uh = [c.h2]
    if cfg.update_g2_has_g1g1:
        # no bias: the weight goes on the g2d output, not on the g1d input
        u2.append(dense(xp, p["proj_g1g1g2"], c.g1[:, :, None, :] * c.gg1) * nb.weight[..., None])
    if cfg.update_g2_has_attn or cfg.update_h2:
        attn = atten2_map(xp, p["attn2g_map"], cfg, smooth, c.g2, c.h2, nb.sw, nb.valid,
                          nb.silent)
        if cfg.update_g2_has_attn:
            u2.append(atten2_mh_apply(xp, p["attn2_mh_apply"], p["attn2_lm"], cfg, attn, c.g2))
        if cfg.update_h2:
            uh.append(atten2_ev_apply(xp, p["attn2_ev_apply"], attn, c.h2))
    return u2, uh


def layer(xp: Namespace, p: dict, cfg: RepformerConfig, smooth: bool, last: bool,
          g1_ext: Array, g2: Array, h2: Array, nb: Neighborhood, rows: Array | None = None
          ) -> tuple[Array, Array, Array]:
    """One repformer layer (§10.4).

    g1_ext: (nf, nall, g1d) features of local and ghost atoms; g2: (nf, n, S, g2d);
    h2: (nf, n, S, 3) of the centres ``rows`` ((n,) int; None: all local atoms in order).
    Returns the new (g1 (nf, n, g1d), g2, h2); the last layer leaves g2 and h2 as they are.
    """
    nloc = g2.shape[1]
    g1 = g1_ext[:, :nloc, ...] if rows is None else take_rows(xp, g1_ext, rows)  # local < nloc
    c = Channels(g1, gather_rows(xp, g1_ext, nb.idx), g2, h2)
    residual = cfg.update_style == "res_residual"
    g1_new = _combine(xp, cfg.update_style, _g1_updates(xp, p, cfg, smooth, c, nb),
                      p.get("g1_residual") if residual else None)
    if last:
        return g1_new, g2, h2
    u2, uh = _pair_updates(xp, p, cfg, smooth, c, nb)
    g2 = _combine(xp, cfg.update_style, u2, p.get("g2_residual") if residual else None)
    h2 = _combine(xp, cfg.update_style, uh, p.get("h2_residual") if residual else None)
    return g1_new, g2, h2


def ghost_features(xp: Namespace, g: Array, mapping: Array) -> Array:
    """Ghost features from local ones: (nf, nloc, d) -> (nf, nall, d), zero where mapping < 0."""
    ok = mapping >= 0
    out = gather_rows(xp, g, xp.where(ok, mapping, xp.zeros_like(mapping)))
    return xp.where(ok[..., None], out, xp.zeros_like(out))


def neighborhood(xp: Namespace, config: DPA2Config, params: dict, geo: Geometry, nlist: Array,
                 atype_ext: Array) -> tuple[Array, Array, Neighborhood]:
    """Exclusion before the env-mat (§10.1).

    nlist: (nf, nloc, S) repformer sub-list, -1 padded; atype_ext: (nf, nall). Returns
    R (nf, nloc, S, 4) normalised environment matrix, d (nf, nloc, S, 3) displacements (Å)
    and the :class:`Neighborhood` every layer shares.
    """
    cfg = config.repformer
    nloc = nlist.shape[1]
    valid = nlist >= 0
    keep = exclusion_mask(xp, config, atype_ext, nlist)
    if keep is not None:
        valid = valid & keep
    rr, d, sw = env_mat(xp, geo, valid, atype_ext[:, :nloc], params["davg"], params["dstd"],
                        cfg.rcut, cfg.rcut_smth, config.env_protection)
    idx = xp.where(valid, nlist, xp.zeros_like(nlist))
    fvalid = xp.astype(valid, sw.dtype)
    weight = sw if config.smooth else fvalid
    count = xp.sum(fvalid, axis=-1, keepdims=True)
    return rr, d, Neighborhood(valid, sw, idx, weight, count, nlist.shape[-1])


def repformer(xp: Namespace, config: DPA2Config, params: dict, geo: Geometry, nlist: Array,
              atype_ext: Array, g: Array, mapping: Array,
              width: int | BlockPlan | None = None) -> RepformerOut:
    """Run the block (§10) on the repformer sub-list nlist (nf, nloc, S) from local features.

    g: (nf, nloc, g1d) glue output; atype_ext: (nf, nall); mapping: (nf, nall) ghost ->
    local index. Returns g1 (nf, nloc, g1d), g2 (nf, nloc, S, g2d), h2 (nf, nloc, S, 3),
    rot_mat (nf, nloc, g2d, 3) and sw (nf, nloc, S).
    ``width``: a static bound on the slots in use (:func:`live_width`), which lets a traced
    call cut the empty trailing slots as an eager one does; any bound >= the slots in use
    gives the same numbers. A :data:`.._compat.BlockPlan` (:func:`.dpa2.live_widths` with
    ``blocks``): the traced call sorts the centres and runs those blocks. None: read from
    the list when eager, no cut when traced.

    The trailing slots a centre leaves empty never reach g1 and only join the smooth
    softmax sums (see :attr:`Neighborhood.silent`), so they are cut from the layers: eager
    calls run blocks of centres sorted by the slots they use, each block as wide as its
    widest row. The cut slots' own g2/h2 outputs depend on the centre type alone and come
    from a per-type table.
    """
    rr, d, nb = neighborhood(xp, config, params, geo, nlist, atype_ext)
    g2, h2 = _initial_pairs(xp, config, params, rr, d, nb.valid)
    blocks = _blocks(xp, config.repformer, nb, g.shape[-1], width)
    parts = [_Part(rows, *(take_rows(xp, x[..., :w, :], rows) for x in (g2, h2)),
                   nb.cut(w).take(xp, rows)) for rows, w in blocks]
    g1, parts = _layers(xp, config, params, g, parts, mapping, blocks)
    narrowest = min(w for _, w in blocks)
    table = None if narrowest >= nb.nsel else _empty_slot_table(xp, config, params, g,
                                                                narrowest, nb.nsel)
    tix = type_index(xp, atype_ext[:, : nlist.shape[1]], config.ntypes)  # (nf, nloc)
    outs = [_block_outputs(xp, config, q, table, narrowest, tix) for q in parts]
    g2, h2, hg = (in_atom_order(xp, [o[k] for o in outs], blocks) for k in range(3))
    return RepformerOut(g1, g2, h2, xp.matrix_transpose(hg), nb.sw)


class _Part(NamedTuple):
    """One block of centres through the layers: rows (n,) int or None (all, in order);
    g2 (nf, n, w, g2d) and h2 (nf, n, w, 3) of its ``w`` live slots; its neighborhood."""

    rows: Array | None
    g2: Array
    h2: Array
    nb: Neighborhood


def _per_row(cfg: RepformerConfig, g1d: int, width: int) -> int:
    """Elements of the largest intermediate of one centre with ``width`` slots."""
    return width * max(g1d, 2 * cfg.attn2_nhead * cfg.attn2_hidden, cfg.attn2_nhead * width)


def _blocks(xp: Namespace, cfg: RepformerConfig, nb: Neighborhood, g1d: int,
            width: int | BlockPlan | None) -> list[tuple[Array | None, int]]:
    """``[(rows, width), ...]``: sorted blocks when eager or given a static plan, one block
    (all rows, the static bound or no cut) when traced."""
    if isinstance(width, tuple):
        return [(rows, min(w, nb.nsel)) for rows, w in width_blocks(xp, nb.valid, None, width)]
    if width is None:
        blocks = width_blocks(xp, nb.valid, lambda w: _per_row(cfg, g1d, w))
        if blocks is not None:
            return blocks
        width = nb.nsel
    return [(None, min(max(width, 1), nb.nsel))]


def _block_outputs(xp: Namespace, config: DPA2Config, part: _Part, table: tuple | None,
                   narrowest: int, tix: Array) -> tuple[Array, Array, Array]:
    """g2 (nf, n, S, g2d), h2 (nf, n, S, 3) with the cut slots from the table, and HG
    (nf, n, 3, g2d) of one block; tix: (nf, nloc) centre type index."""
    hg = sym(xp, part.g2, part.h2, part.nb, config.smooth, config.rot_mat_sqrt_nnei)
    width = part.g2.shape[-2]
    if width >= part.nb.nsel:
        return part.g2, part.h2, hg
    t = take_rows(xp, tix, part.rows)
    nf, n = t.shape

    def per_atom(cut: Array) -> Array:
        rows = xp.take(cut[0, :, width - narrowest :, ...], xp.reshape(t, (-1,)), axis=0)
        return xp.reshape(rows, (nf, n, *rows.shape[1:]))

    return (xp.concat([part.g2, per_atom(table[0])], axis=-2),
            xp.concat([part.h2, per_atom(table[1])], axis=-2), hg)


def _initial_pairs(xp: Namespace, config: DPA2Config, params: dict, rr: Array, d: Array,
                   valid: Array) -> tuple[Array, Array]:
    """g2 (nf, nloc, S, g2d) and h2 (nf, nloc, S, 3) before the first layer."""
    cfg = config.repformer
    if cfg.direct_dist:
        dist = safe_norm(xp, xp.sum(d * d, axis=-1), valid) * xp.astype(valid, d.dtype)
        g2, h2 = dist[..., None] / cfg.rcut, d / cfg.rcut
    else:
        g2, h2 = rr[..., 0:1], rr[..., 1:4]
    return activation(xp, cfg.activation_function, dense(xp, params["g2_embd"], g2)), h2


def _layers(xp: Namespace, config: DPA2Config, params: dict, g: Array, parts: list[_Part],
            mapping: Array, blocks: list) -> tuple[Array, list[_Part]]:
    """Every layer from the glue output g (nf, nloc, g1d): the final g1 and blocks.

    Centres are independent within a layer; only g1 crosses blocks (through the ghost
    features), so it is put back in atom order after each layer.
    """
    cfg = config.repformer
    g1 = activation(xp, cfg.activation_function, g)
    for i, p in enumerate(params["layers"]):
        last = i == cfg.nlayers - 1
        g1_ext = ghost_features(xp, g1, mapping)  # (nf, nall, g1d)
        outs = [layer(xp, p, cfg, config.smooth, last, g1_ext, q.g2, q.h2, q.nb, q.rows)
                for q in parts]
        g1 = in_atom_order(xp, [o[0] for o in outs], blocks)
        parts = [q._replace(g2=o[1], h2=o[2]) for q, o in zip(parts, outs, strict=True)]
    return g1, parts


def _empty_slot_table(xp: Namespace, config: DPA2Config, params: dict, g: Array, width: int,
                      nsel: int) -> tuple[Array, Array]:
    """g2 (1, nt+1, P, g2d) and h2 (1, nt+1, P, 3) after the layers of the P = nsel - width
    cut slots, for a centre of each type (row nt: a virtual centre).

    An empty slot's R is ``-davg/dstd`` of its centre type and slot (§5.5), its switch and
    weight are 0, so every term that would couple it to a neighbor or to g1 is exactly 0
    (zero weights, zero attention rows): the same layers run on the table with empty
    neighborhoods and zero g1 give the values of the full computation.
    """
    cfg = config.repformer
    nt = config.ntypes
    types = xp.reshape(xp.arange(-1, nt, dtype=xp.int64, device=device(g)), (1, nt + 1))
    types = xp.concat([types[:, 1:], types[:, :1]], axis=-1)  # 0 .. nt-1, then -1
    avg, std = centre_stats(xp, types, params["davg"][:, width:, ...],
                            params["dstd"][:, width:, ...])
    rr = (xp.zeros_like(avg) - avg) / std  # (1, nt+1, P, 4): zero raw rows, normalised
    empty = xp.zeros(rr.shape[:3], dtype=xp.bool, device=device(g))
    zero = xp.zeros(rr.shape[:3], dtype=rr.dtype, device=device(g))
    g2, h2 = _initial_pairs(xp, config, params, rr, rr[..., 1:4] * 0.0, empty)
    nb = Neighborhood(empty, zero, xp.zeros(rr.shape[:3], dtype=xp.int64, device=device(g)),
                      zero, zero[..., :1], nsel)
    g1d = g.shape[-1]
    g1 = xp.zeros((1, nt + 1, g1d), dtype=rr.dtype, device=device(g))
    c_gg1 = xp.zeros((*rr.shape[:3], g1d), dtype=rr.dtype, device=device(g))
    residual = cfg.update_style == "res_residual"
    for p in params["layers"][:-1]:
        u2, uh = _pair_updates(xp, p, cfg, config.smooth, Channels(g1, c_gg1, g2, h2), nb)
        g2 = _combine(xp, cfg.update_style, u2, p.get("g2_residual") if residual else None)
        h2 = _combine(xp, cfg.update_style, uh, p.get("h2_residual") if residual else None)
    return g2, h2
