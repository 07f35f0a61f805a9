"""Dense layer, embedding net and layer norm over parameter dicts.

A layer's parameters are ``{"w": (in, out), "b": (out,), "idt": (out,)}`` with
``b`` and ``idt`` optional; their presence (pytree structure) and the shapes are
all the forward pass needs besides the activation name.
"""

from __future__ import annotations

from typing import Any

from .activations import activation

Array = Any
Params = dict[str, Any]


def dense(p: Params, x: Array, xp: Any, act: str = "none", resnet: bool = False) -> Array:
    """``act(x @ w + b) * idt`` plus the deepmd skip rule (out == in or 2*in).

    x: (..., in) -> (..., out).
    """
    w = p["w"]
    # one 2-D GEMM: numpy would otherwise loop over every leading index
    z = xp.reshape(xp.matmul(xp.reshape(x, (-1, w.shape[0])), w), (*x.shape[:-1], w.shape[1]))
    if "b" in p:
        z = z + p["b"]
    z = activation(act, xp, z)
    if "idt" in p:
        z = z * p["idt"]
    if resnet:
        n_in, n_out = p["w"].shape
        if n_out == n_in:
            z = z + x
        elif n_out == 2 * n_in:
            z = z + xp.concat([x, x], axis=-1)
    return z


def embedding_net(layers: list[Params], x: Array, xp: Any, act: str) -> Array:
    """Chain of resnet dense layers with the net's activation. x: (..., in) -> (..., neuron[-1])."""
    for p in layers:
        x = dense(p, x, xp, act=act, resnet=True)
    return x


def layer_norm(p: Params, x: Array, xp: Any, eps: float) -> Array:
    """Normalise the last axis with the biased variance, then scale ``w`` and shift ``b``."""
    mean = xp.mean(x, axis=-1, keepdims=True)
    centered = x - mean
    var = xp.mean(centered * centered, axis=-1, keepdims=True)
    return centered / xp.sqrt(var + eps) * p["w"] + p["b"]
