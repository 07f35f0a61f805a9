"""Repformer block (§10): message passing over single-atom g1 and pair g2/h2 channels."""

from __future__ import annotations

import math
from typing import NamedTuple

from .._compat import Array, gather_rows
from .activations import activation
from .attention import atten2_ev_apply, atten2_map, atten2_mh_apply, local_atten
from .env_mat import Geometry, env_mat, exclusion_mask, safe_norm
from .layers import dense

__all__ = [
    "EPS", "extend", "grrg", "layer", "Neighborhood", "neighborhood", "repformer",
    "RepformerOut", "sym",
]

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
    g1: Array
    g2: Array
    h2: Array
    rot_mat: Array
    sw: Array


def _combine(xp, style: str, updates: list, residuals: list | None) -> Array:
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


def sym(xp, g: Array, h: Array, nb: Neighborhood, smooth: bool, sqrt_nnei: bool) -> Array:
    """HG_i = c * sum_j h_ij^T (g_ij * weight_ij): (nf, nloc, 3, G) (§10.6)."""
    nsel = g.shape[-2]
    if smooth:
        scale = 1.0 / (math.sqrt(nsel) if sqrt_nnei else nsel)
    else:
        n = xp.sqrt(nb.count) if sqrt_nnei else nb.count
        scale = (1.0 / (EPS + n))[..., None]
    return xp.matmul(xp.matrix_transpose(h), g * nb.weight[..., None]) * scale


def grrg(xp, hg: Array, axis: int) -> Array:
    """Invariant (nf, nloc, axis*G) from HG, ``axis``-major, with the 1/3 factor."""
    out = xp.matmul(xp.matrix_transpose(hg[..., :axis]), hg) / 3.0
    return xp.reshape(out, (*out.shape[:-2], -1))


def _g1_updates(xp, p, cfg, smooth, g1, gg1, g2, h2, nb) -> list:
    """The U1 list of §10.4: g1, self-MLP, outer conv, linear1 output, local attention."""
    act = cfg.activation_function
    u1, mlp = [g1], []
    if cfg.g1_out_mlp:
        u1.append(activation(act, xp, dense(p["g1_self_mlp"], g1, xp)))
    else:
        mlp.append(g1)
    if cfg.update_g1_has_conv:
        scale = 1.0 / g2.shape[-2] if smooth else 1.0 / (EPS + nb.count)
        w = nb.weight[..., None]
        if cfg.g1_out_conv:
            u1.append(xp.sum(w * dense(p["proj_g1g2"], g2, xp) * gg1, axis=-2) * scale)
        else:
            mlp.append(xp.sum(w * g2 * dense(p["proj_g1g2"], gg1, xp), axis=-2) * scale)
    if cfg.update_g1_has_grrg:
        mlp.append(grrg(xp, sym(xp, g2, h2, nb, smooth, cfg.use_sqrt_nnei), cfg.axis_neuron))
    if cfg.update_g1_has_drrd:
        mlp.append(grrg(xp, sym(xp, gg1, h2, nb, smooth, cfg.use_sqrt_nnei), cfg.axis_neuron))
    u1.append(activation(act, xp, dense(p["linear1"], xp.concat(mlp, axis=-1), xp)))
    if cfg.update_g1_has_attn:
        u1.append(local_atten(xp, p["loc_attn"], cfg, smooth, g1, gg1, nb.sw, nb.valid))
    return u1


def _pair_updates(xp, p, cfg, smooth, g1, gg1, g2, h2, nb) -> tuple[list, list]:
    """The U2 and Uh lists of a layer that updates its pair channels."""
    u2 = [g2, activation(cfg.activation_function, xp, dense(p["linear2"], g2, xp))]
    uh = [h2]
    if cfg.update_g2_has_g1g1:
        u2.append(dense(p["proj_g1g1g2"], g1[:, :, None, :] * gg1 * nb.weight[..., None], xp))
    if cfg.update_g2_has_attn or cfg.update_h2:
        attn = atten2_map(xp, p["attn2g_map"], cfg, smooth, g2, h2, nb.sw, nb.valid)
        if cfg.update_g2_has_attn:
            u2.append(atten2_mh_apply(xp, p["attn2_mh_apply"], p["attn2_lm"], cfg, attn, g2))
        if cfg.update_h2:
            uh.append(atten2_ev_apply(xp, p["attn2_ev_apply"], attn, h2))
    return u2, uh


def layer(xp, p, cfg, smooth: bool, last: bool, g1_ext, g2, h2, nb: Neighborhood):
    """One repformer layer. g1_ext: (nf, nall, g1d) -> new (g1, g2, h2)."""
    nloc = g2.shape[1]
    g1 = g1_ext[:, :nloc, ...]
    gg1 = gather_rows(xp, g1_ext, nb.idx)  # (nf, nloc, S, g1d)
    residual = cfg.update_style == "res_residual"
    g1_new = _combine(xp, cfg.update_style, _g1_updates(xp, p, cfg, smooth, g1, gg1, g2, h2, nb),
                      p.get("g1_residual") if residual else None)
    if last:
        return g1_new, g2, h2
    u2, uh = _pair_updates(xp, p, cfg, smooth, g1, gg1, g2, h2, nb)
    g2 = _combine(xp, cfg.update_style, u2, p.get("g2_residual") if residual else None)
    h2 = _combine(xp, cfg.update_style, uh, p.get("h2_residual") if residual else None)
    return g1_new, g2, h2


def extend(xp, g: Array, mapping: Array) -> Array:
    """Ghost features from local ones: (nf, nloc, d) -> (nf, nall, d), zero where mapping < 0."""
    ok = mapping >= 0
    out = gather_rows(xp, g, xp.where(ok, mapping, xp.zeros_like(mapping)))
    return xp.where(ok[..., None], out, xp.zeros_like(out))


def neighborhood(xp, config, params, geo: Geometry, nlist, atype_ext):
    """Exclusion before the env-mat (§10.1); returns (R, d, Neighborhood)."""
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


def repformer(xp, config, params, geo: Geometry, nlist, atype_ext, g, mapping) -> RepformerOut:
    """Run the block on the repformer sub-list (nf, nloc, S_f) from local features g.

    g: (nf, nloc, g1d) glue output; mapping: (nf, nall) ghost -> local index.
    """
    cfg = config.repformer
    act = cfg.activation_function
    rr, d, nb = neighborhood(xp, config, params, geo, nlist, atype_ext)
    if cfg.direct_dist:
        dist = safe_norm(xp, xp.sum(d * d, axis=-1), nb.valid) * xp.astype(nb.valid, d.dtype)
        g2, h2 = dist[..., None] / cfg.rcut, d / cfg.rcut
    else:
        g2, h2 = rr[..., 0:1], rr[..., 1:4]
    g2 = activation(act, xp, dense(params["g2_embd"], g2, xp))
    g1 = activation(act, xp, g)
    for i, p in enumerate(params["layers"]):
        last = i == cfg.nlayers - 1
        g1, g2, h2 = layer(xp, p, cfg, config.smooth, last, extend(xp, g1, mapping), g2, h2, nb)
    hg = sym(xp, g2, h2, nb, config.smooth, config.rot_mat_sqrt_nnei)
    return RepformerOut(g1, g2, h2, xp.matrix_transpose(hg), nb.sw)
