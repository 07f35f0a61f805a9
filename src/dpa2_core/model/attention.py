"""Attention maps of the repformer layer (§10.5): pair (g2) and local (g1) attention.

The pair attention is query-major, ``(nf, nloc, S, nh, S)``: the value mixing reads it as
one (S, nh*S) matrix per atom without a copy. The local attention is head-leading,
``(nf, nloc, nh, 1, S)``. The interleaved channel layouts of deepmd's projections are
undone by reshape + permute of the weights where possible.
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


def _logits(xp: Namespace, p: dict, cfg: RepformerConfig, g2: Array) -> Array:
    """Unscaled pair logits q_h(j) . k_h(k): (nf, nloc, S, nh, S), query-major.

    When g2d <= nd the two projections fold into one: q_h . k_h = g2_j (Wq_h Wk_h^T) g2_k,
    so one (g2d, nh*g2d) product of g2 and one (nh*S, g2d) x (g2d, S) product per atom
    replace the q and k projections and their head-leading copies.
    """
    nd, nh = cfg.attn2_hidden, cfg.attn2_nhead
    nf, nloc, nsel, g2d = g2.shape
    # mapqk channel c*2nh + h: q of head h, then k of head h at nh + h
    w = xp.permute_dims(xp.reshape(p["mapqk"]["w"], (g2d, nd, 2 * nh)), (2, 0, 1))
    wq, wk = w[:nh, ...], w[nh:, ...]  # (nh, g2d, nd)
    if g2d <= nd:
        m = xp.matmul(wq, xp.matrix_transpose(wk))  # (nh, g2d, g2d)
        m = xp.reshape(xp.permute_dims(m, (1, 0, 2)), (g2d, nh * g2d))
        pq = xp.reshape(dense(xp, {"w": m}, g2), (nf, nloc, nsel * nh, g2d))
        logits = xp.matmul(pq, xp.matrix_transpose(g2))  # (nf, nloc, S*nh, S)
        return xp.reshape(logits, (nf, nloc, nsel, nh, nsel))
    q, k = (xp.reshape(dense(xp, {"w": xp.reshape(xp.permute_dims(x, (1, 0, 2)),
                                                  (g2d, nh * nd))}, g2),
                       (nf, nloc, nsel, nh, nd)) for x in (wq, wk))
    q, k = xp.permute_dims(q, (0, 1, 3, 2, 4)), xp.permute_dims(k, (0, 1, 3, 4, 2))
    return xp.permute_dims(xp.matmul(q, k), (0, 1, 3, 2, 4))  # (nf, nloc, nh, S, S) -> q-major


def atten2_map(xp: Namespace, p: dict, cfg: RepformerConfig, smooth: bool, g2: Array, h2: Array,
               sw: Array, valid: Array, silent: int = 0) -> Array:
    """Pair attention weights A (nf, nloc, S, nh, S), query-major, the h2 Gram factor
    included.

    g2: (nf, nloc, S, g2d); h2: (nf, nloc, S, 3); sw: (nf, nloc, S); valid: bool like sw.
    Per-pair factors are formed on (nf, nloc, S, 1, S) and broadcast over heads once.
    ``silent``: empty slots cut after the S given ones (they only join the softmax sums).
    """
    nd = cfg.attn2_hidden
    logits = _logits(xp, p, cfg, g2)
    gram = xp.matmul(h2, xp.matrix_transpose(h2))[:, :, :, None, :]  # (nf, nloc, S, 1, S)
    if smooth:
        # sw is zero at invalid slots, so pair_w masks invalid queries and keys by itself;
        # 1/sqrt(nd) joins the per-pair factor (nh times fewer multiplications)
        pair_w = (sw[:, :, :, None] * sw[:, :, None, :])[:, :, :, None, :]
        scale = (gram * pair_w if cfg.attn2_has_gate else pair_w) / math.sqrt(nd)
        prob = _softmax(xp, muladd(xp, logits, scale, SHIFT * pair_w - SHIFT), silent)
        return prob * (pair_w * gram / math.sqrt(3.0))
    logits = logits / math.sqrt(nd)
    if cfg.attn2_has_gate:
        logits = logits * gram
    key_ok = valid[:, :, None, None, :]
    prob = _softmax(xp, _hard_mask(xp, logits, key_ok))
    both_ok = key_ok & valid[:, :, :, None, None]
    return xp.where(both_ok, prob, xp.zeros_like(prob)) * (gram / math.sqrt(3.0))


def atten2_mh_apply(xp: Namespace, p: dict, p_ln: dict, cfg: RepformerConfig, attn: Array,
                    g2: Array) -> Array:
    """Multi-head value mixing of g2, head-minor concat, head_map, then layer norm.

    attn: (nf, nloc, S, nh, S); g2: (nf, nloc, S, g2d). Returns (nf, nloc, S, g2d).
    """
    nh = cfg.attn2_nhead
    nf, nloc, nsel = attn.shape[:3]
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
    out = xp.matmul(xp.reshape(attn, (nf, nloc, nsel, nh * nsel)), u) + p["head_map"]["b"]
    return layer_norm(xp, p_ln, out, cfg.ln_eps)


def atten2_ev_apply(xp: Namespace, p: dict, attn: Array, h2: Array) -> Array:
    """Equivariant h2 update: per-head attention sums of h2, mixed by head_map (nh -> 1).

    attn: (nf, nloc, S, nh, S); h2: (nf, nloc, S, 3). Returns (nf, nloc, S, 3).
    """
    nf, nloc, nsel, nh, _ = attn.shape
    u = xp.matmul(xp.reshape(attn, (nf, nloc, nsel * nh, nsel)), h2)  # (nf, nloc, S*nh, 3)
    u = xp.permute_dims(xp.reshape(u, (nf, nloc, nsel, nh, 3)), (0, 1, 2, 4, 3))
    return dense(xp, p["head_map"], u)[..., 0]  # (nf, nloc, S, 3, nh) -> nh mixed


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
