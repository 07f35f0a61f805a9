"""Dense layer, embedding net and layer norm over parameter dicts.

A layer's parameters are ``{"w": (in, out), "b": (out,), "idt": (out,)}`` with
``b`` and ``idt`` optional; their presence (pytree structure) and the shapes are
all the forward pass needs besides the activation name.
"""

from __future__ import annotations

from typing import Any

from .._compat import Array
from .activations import activation

__all__ = ["dense", "dense_split", "embedding_net", "layer_norm", "skips"]

Params = dict[str, Any]


def dense(xp: Any, p: Params, x: Array, act: str = "none", resnet: bool = False) -> Array:
    """``act(x @ w + b) * idt`` plus the deepmd skip rule (out == in or 2*in).

    x: (..., in) -> (..., out).
    """
    w = p["w"]
    # one 2-D GEMM: numpy would otherwise loop over every leading index
    z = xp.reshape(xp.matmul(xp.reshape(x, (-1, w.shape[0])), w), (*x.shape[:-1], w.shape[1]))
    if "b" in p:
        z = z + p["b"]
    z = activation(xp, act, z)
    if "idt" in p:
        z = z * p["idt"]
    if resnet:
        n_in, n_out = p["w"].shape
        if n_out == n_in:
            z = z + x
        elif n_out == 2 * n_in:  # + concat([x, x]) without building the concat
            lead = tuple(z.shape[:-1])
            z = xp.reshape(xp.reshape(z, (*lead, 2, n_in)) + x[..., None, :], (*lead, n_out))
    return z


def embedding_net(xp: Any, layers: list[Params], x: Array, act: str) -> Array:
    """Chain of resnet dense layers with the net's activation. x: (..., in) -> (..., neuron[-1])."""
    for p in layers:
        x = dense(xp, p, x, act=act, resnet=True)
    return x


def layer_norm(xp: Any, p: Params, x: Array, eps: float) -> Array:
    """Normalise the last axis with the biased variance, then scale ``w`` and shift ``b``."""
    mean = xp.mean(x, axis=-1, keepdims=True)
    centered = x - mean
    var = xp.mean(centered * centered, axis=-1, keepdims=True)
    return centered / xp.sqrt(var + eps) * p["w"] + p["b"]


def skips(p: Params) -> bool:
    """Whether a resnet layer with these weights adds its input (out == in or 2*in)."""
    n_in, n_out = p["w"].shape
    return n_out in (n_in, 2 * n_in)


def dense_split(xp: Any, p: Params, parts: list[Array], act: str) -> Array:
    """``dense(p, concat(parts))`` without the concat: each part meets its rows of ``w``.

    ``parts`` broadcast against each other (e.g. a per-pair, a per-neighbor and a per-centre
    term), so the wide concatenated input never exists. Width-1 parts are scaled rows.
    No skip connection: use only where :func:`skips` is false.
    """
    w = p["w"]
    z, start = None, 0
    for x in parts:
        k = x.shape[-1]
        rows = w[start : start + k, ...]
        term = x * rows[0, ...] if k == 1 else xp.matmul(x, rows)
        z, start = (term if z is None else z + term), start + k
    if "b" in p:
        z = z + p["b"]
    z = activation(xp, act, z)
    return z * p["idt"] if "idt" in p else z
