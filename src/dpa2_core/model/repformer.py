"""Repformer block (§10): message passing over single-atom g1 and pair g2/h2 channels."""

from __future__ import annotations

import math
from typing import NamedTuple

from .._compat import Array, Namespace, gather_rows
from .activations import activation
from .attention import atten2_ev_apply, atten2_map, atten2_mh_apply, local_atten
from .config import DPA2Config, RepformerConfig
from .env_mat import Geometry, env_mat, exclusion_mask, safe_norm
from .layers import dense

__all__ = ["EPS", "Channels", "Neighborhood", "RepformerOut", "ghost_features", "grrg", "layer",
           "neighborhood", "repformer", "sym"]

EPS = 1e-4


class Neighborhood(NamedTuple):
    """Fixed per-block quantities shared by every layer.

    valid: (nf, nloc, S) bool; sw: (nf, nloc, S) masked switch; idx: (nf, nloc, S)
    neighbor index (invalid -> 0); weight: valid * sw (smooth) or valid as float;
    count: (nf, nloc, 1) number of valid neighbors.
    """

    valid: Array
    sw: Array
    idx: Array
    weight: Array
    count: Array


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
    nsel = g.shape[-2]
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
        scale = 1.0 / c.g2.shape[-2] if smooth else 1.0 / (EPS + nb.count)
        w = nb.weight[..., None]
        if cfg.g1_out_conv:
            u1.append(xp.sum(w * dense(xp, p["proj_g1g2"], c.g2) * c.gg1, axis=-2) * scale)
        else:
            mlp.append(xp.sum(w * c.g2 * dense(xp, p["proj_g1g2"], c.gg1), axis=-2) * scale)
    if cfg.update_g1_has_grrg:
        mlp.append(grrg(xp, sym(xp, c.g2, c.h2, nb, smooth, cfg.use_sqrt_nnei), cfg.axis_neuron))
    if cfg.update_g1_has_drrd:
        mlp.append(grrg(xp, sym(xp, c.gg1, c.h2, nb, smooth, cfg.use_sqrt_nnei),
                        cfg.axis_neuron))
    u1.append(activation(xp, act, dense(xp, p["linear1"], xp.concat(mlp, axis=-1))))
    if cfg.update_g1_has_attn:
        u1.append(local_atten(xp, p["loc_attn"], cfg, smooth, c.g1, c.gg1, nb.sw, nb.valid))
    return u1


def _pair_updates(xp: Namespace, p: dict, cfg: RepformerConfig, smooth: bool, c: Channels,
                  nb: Neighborhood) -> tuple[list[Array], list[Array]]:
    """The U2 list, each (nf, nloc, S, g2d), and the Uh list, each (nf, nloc, S, 3), of a
    layer that updates its pair channels."""
    u2 = [c.g2, activation(xp, cfg.activation_function, dense(xp, p["linear2"], c.g2))]
    uh = [c.h2]
    if cfg.update_g2_has_g1g1:
        u2.append(dense(xp, p["proj_g1g1g2"], c.g1[:, :, None, :] * c.gg1 * nb.weight[..., None]))
    if cfg.update_g2_has_attn or cfg.update_h2:
        attn = atten2_map(xp, p["attn2g_map"], cfg, smooth, c.g2, c.h2, nb.sw, nb.valid)
        if cfg.update_g2_has_attn:
            u2.append(atten2_mh_apply(xp, p["attn2_mh_apply"], p["attn2_lm"], cfg, attn, c.g2))
        if cfg.update_h2:
            uh.append(atten2_ev_apply(xp, p["attn2_ev_apply"], attn, c.h2))
    return u2, uh


def layer(xp: Namespace, p: dict, cfg: RepformerConfig, smooth: bool, last: bool,
          g1_ext: Array, g2: Array, h2: Array, nb: Neighborhood) -> tuple[Array, Array, Array]:
    """One repformer layer (§10.4).

    g1_ext: (nf, nall, g1d) features of local and ghost atoms; g2: (nf, nloc, S, g2d);
    h2: (nf, nloc, S, 3). Returns the new (g1 (nf, nloc, g1d), g2, h2); the last layer
    leaves g2 and h2 as they are.
    """
    nloc = g2.shape[1]
    g1 = g1_ext[:, :nloc, ...]
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
    return rr, d, Neighborhood(valid, sw, idx, weight, count)


def repformer(xp: Namespace, config: DPA2Config, params: dict, geo: Geometry, nlist: Array,
              atype_ext: Array, g: Array, mapping: Array) -> RepformerOut:
    """Run the block (§10) on the repformer sub-list nlist (nf, nloc, S) from local features.

    g: (nf, nloc, g1d) glue output; atype_ext: (nf, nall); mapping: (nf, nall) ghost ->
    local index. Returns g1 (nf, nloc, g1d), g2 (nf, nloc, S, g2d), h2 (nf, nloc, S, 3),
    rot_mat (nf, nloc, g2d, 3) and sw (nf, nloc, S).
    """
    cfg = config.repformer
    act = cfg.activation_function
    rr, d, nb = neighborhood(xp, config, params, geo, nlist, atype_ext)
    if cfg.direct_dist:
        dist = safe_norm(xp, xp.sum(d * d, axis=-1), nb.valid) * xp.astype(nb.valid, d.dtype)
        g2, h2 = dist[..., None] / cfg.rcut, d / cfg.rcut
    else:
        g2, h2 = rr[..., 0:1], rr[..., 1:4]
    g2 = activation(xp, act, dense(xp, params["g2_embd"], g2))
    g1 = activation(xp, act, g)
    for i, p in enumerate(params["layers"]):
        last = i == cfg.nlayers - 1
        g1_ext = ghost_features(xp, g1, mapping)  # (nf, nall, g1d)
        g1, g2, h2 = layer(xp, p, cfg, config.smooth, last, g1_ext, g2, h2, nb)
    hg = sym(xp, g2, h2, nb, config.smooth, config.rot_mat_sqrt_nnei)
    return RepformerOut(g1, g2, h2, xp.matrix_transpose(hg), nb.sw)
