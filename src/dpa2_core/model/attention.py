"""Attention maps of the repformer layer (§10.5): pair (g2) and local (g1) attention.

Internal layout is head-leading, ``(nf, nloc, nh, S, ...)``; the interleaved channel
layouts of deepmd's projections are undone by reshape + permute.
"""

from __future__ import annotations

import math

from .._compat import Array, Namespace, muladd, softmax
from .config import RepformerConfig
from .layers import dense, layer_norm

__all__ = ["atten2_ev_apply", "atten2_map", "atten2_mh_apply", "local_atten", "SHIFT"]

SHIFT = 20.0


def _heads(xp: Namespace, x: Array, width: int, nh: int) -> Array:
    """(..., S, width*nh) with channel ``c*nh + h`` -> (..., nh, S, width)."""
    x = xp.reshape(x, (*x.shape[:-1], width, nh))
    nd = x.ndim
    axes = (*range(nd - 3), nd - 1, nd - 3, nd - 2)
    return xp.permute_dims(x, axes)


def _softmax(xp: Namespace, x: Array, silent: int = 0) -> Array:
    """Softmax over the last axis, as if ``silent`` more keys of logit ``-SHIFT`` were there.

    Those are the slots the fast path of :mod:`.repformer` cut: an empty slot's smooth
    logit is exactly ``0 * l + (SHIFT * 0 - SHIFT)``, so its share of the normalisation is
    ``exp(-SHIFT - max)`` each, added back here in closed form (:func:`.softmax`).
    """
    return softmax(xp, x, silent, -SHIFT)


def _hard_mask(xp: Namespace, logits: Array, valid: Array) -> Array:
    """Invalid keys get the most negative finite value (not -inf): the same weights for
    rows with a valid key, and no NaN (forward or backward) for rows without one."""
    return xp.where(valid, logits, xp.full_like(logits, xp.finfo(logits.dtype).min))


def atten2_map(xp: Namespace, p: dict, cfg: RepformerConfig, smooth: bool, g2: Array, h2: Array,
               sw: Array, valid: Array, silent: int = 0) -> Array:
    """Pair attention weights A (nf, nloc, nh, S, S), the h2 Gram factor included.

    g2: (nf, nloc, S, g2d); h2: (nf, nloc, S, 3); sw: (nf, nloc, S); valid: bool like sw.
    Per-pair factors are formed on (nf, nloc, 1, S, S) and broadcast over heads once.
    ``silent``: empty slots cut after the S given ones (they only join the softmax sums).
    """
    nd, nh = cfg.attn2_hidden, cfg.attn2_nhead
    # q and k from their own columns of mapqk (channel c*2nh + h): no slice of a joint
    # (.., 2nh, S, nd) tensor, whose backward would zero-fill and copy it
    w = xp.reshape(p["mapqk"]["w"], (g2.shape[-1], nd, 2 * nh))
    q, k = (_heads(xp, dense(xp, {"w": xp.reshape(w[..., h], (w.shape[0], nd * nh))}, g2),
                   nd, nh) for h in (slice(0, nh), slice(nh, 2 * nh)))  # (nf, nloc, nh, S, nd)
    logits = xp.matmul(q, xp.matrix_transpose(k))  # (nf, nloc, nh, S, S), unscaled
    gram = xp.matmul(h2, xp.matrix_transpose(h2))[:, :, None, ...]  # (nf, nloc, 1, S, S)
    if smooth:
        # sw is zero at invalid slots, so pair_w masks invalid queries and keys by itself;
        # 1/sqrt(nd) joins the per-pair factor (nh times fewer multiplications)
        pair_w = (sw[:, :, :, None] * sw[:, :, None, :])[:, :, None, ...]
        scale = (gram * pair_w if cfg.attn2_has_gate else pair_w) / math.sqrt(nd)
        prob = _softmax(xp, muladd(xp, logits, scale, SHIFT * pair_w - SHIFT), silent)
        return prob * (pair_w * gram / math.sqrt(3.0))
    logits = logits / math.sqrt(nd)
    if cfg.attn2_has_gate:
        logits = logits * gram
    key_ok = valid[:, :, None, None, :]
    prob = _softmax(xp, _hard_mask(xp, logits, key_ok))
    both_ok = key_ok & valid[:, :, None, :, None]
    return xp.where(both_ok, prob, xp.zeros_like(prob)) * (gram / math.sqrt(3.0))


def atten2_mh_apply(xp: Namespace, p: dict, p_ln: dict, cfg: RepformerConfig, attn: Array,
                    g2: Array) -> Array:
    """Multi-head value mixing of g2, head-minor concat, head_map, then layer norm.

    attn: (nf, nloc, nh, S, S); g2: (nf, nloc, S, g2d). Returns (nf, nloc, S, g2d).
    """
    nh = cfg.attn2_nhead
    nf, nloc, _, nsel, _ = attn.shape
    wv, wm = p["mapv"]["w"], p["head_map"]["w"]
    g2d, nout = wv.shape[0], wm.shape[-1]
    dv = wv.shape[1] // nh
    # head_map folded into the values: concat_h(A_h g2 Wv_h) Wm = sum_h A_h (g2 Wv_h Wm_h),
    # one (S, nh*S) x (nh*S, g2d) product per atom and no (S, nh*g2d) concat to map
    wv = xp.permute_dims(xp.reshape(wv, (g2d, dv, nh)), (2, 0, 1))  # (nh, g2d, dv)
    wm = xp.permute_dims(xp.reshape(wm, (dv, nh, nout)), (1, 0, 2))  # (nh, dv, nout)
    wc = xp.reshape(xp.permute_dims(xp.matmul(wv, wm), (1, 0, 2)), (g2d, nh * nout))
    u = xp.reshape(dense(xp, {"w": wc}, g2), (nf, nloc, nsel, nh, nout))
    u = xp.reshape(xp.permute_dims(u, (0, 1, 3, 2, 4)), (nf, nloc, nh * nsel, nout))
    a = xp.reshape(xp.permute_dims(attn, (0, 1, 3, 2, 4)), (nf, nloc, nsel, nh * nsel))
    out = xp.matmul(a, u) + p["head_map"]["b"]
    return layer_norm(xp, p_ln, out, cfg.ln_eps)


def atten2_ev_apply(xp: Namespace, p: dict, attn: Array, h2: Array) -> Array:
    """Equivariant h2 update: per-head attention sums of h2, mixed by head_map (nh -> 1).

    attn: (nf, nloc, nh, S, S); h2: (nf, nloc, S, 3). Returns (nf, nloc, S, 3).
    """
    u = xp.matmul(attn, h2[:, :, None, ...])  # (nf, nloc, nh, S, 3)
    u = xp.permute_dims(u, (0, 1, 3, 4, 2))  # (nf, nloc, S, 3, nh)
    return dense(xp, p["head_map"], u)[..., 0]


def local_atten(xp: Namespace, p: dict, cfg: RepformerConfig, smooth: bool, g1: Array,
                gg1: Array, sw: Array, valid: Array, silent: int = 0) -> Array:
    """Centre-to-neighbor attention on g1 (§10.5).

    g1: (nf, nloc, g1d); gg1: (nf, nloc, S, g1d); sw: (nf, nloc, S); valid: (nf, nloc, S)
    bool; ``silent`` as in :func:`atten2_map`. Returns (nf, nloc, g1d).
    """
    nd, nh = cfg.attn1_hidden, cfg.attn1_nhead
    nf, nloc, ni = g1.shape
    q = xp.reshape(dense(xp, p["mapq"], g1), (nf, nloc, nd, nh))
    q = xp.permute_dims(q, (0, 1, 3, 2))[:, :, :, None, :]  # (nf, nloc, nh, 1, nd)
    kv = _heads(xp, dense(xp, p["mapkv"], gg1), nd + ni, nh)  # (nf, nloc, nh, S, nd+ni)
    k, v = kv[..., :nd], kv[..., nd:]
    logits = xp.matmul(q / math.sqrt(nd), xp.matrix_transpose(k))  # (nf, nloc, nh, 1, S)
    weight = sw[:, :, None, None, :]
    ok = valid[:, :, None, None, :]
    if smooth:  # weight is zero at invalid slots
        prob = _softmax(xp, logits * weight + (SHIFT * weight - SHIFT), silent) * weight
    else:
        prob = _softmax(xp, _hard_mask(xp, logits, ok))
        prob = xp.where(ok, prob, xp.zeros_like(prob))
    out = xp.reshape(xp.matmul(prob, v), (nf, nloc, nh * ni))  # head-major concat
    return dense(xp, p["head_map"], out)
