"""Activation functions accepted by deepmd-kit, written once for every array namespace."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .._compat import Array

__all__ = ["activation", "check_activation"]

_GELU_C = math.sqrt(2.0 / math.pi)


def _sigmoid(xp: Any, x: Array) -> Array:
    # 1/(1+e^-x) overflows for x < -709 and its gradient is then inf/inf = NaN; below 0
    # use e^x/(1+e^x). The double where keeps the unused branch's gradient finite.
    zero = xp.zeros_like(x)
    pos, neg = xp.where(x >= 0, x, zero), xp.where(x < 0, x, zero)
    e = xp.exp(neg)
    return xp.where(x >= 0, 1.0 / (1.0 + xp.exp(-pos)), e / (1.0 + e))


def _softplus(xp: Any, x: Array) -> Array:
    # log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}): finite for every x
    return xp.maximum(x, xp.zeros_like(x)) + xp.log1p(xp.exp(-xp.abs(x)))


def _gelu(xp: Any, x: Array) -> Array:
    return 0.5 * x * (1.0 + xp.tanh(_GELU_C * (x + 0.044715 * x * x * x)))


def _silut(threshold: float) -> Callable[[Any, Array], Array]:
    sig_t = 1.0 / (1.0 + math.exp(-threshold))
    c0 = threshold * sig_t
    c1 = sig_t * (1.0 + threshold * (1.0 - sig_t))

    def act(xp: Any, x: Array) -> Array:
        # clamp the silu branch so its (discarded) value stays finite for large x
        below = xp.minimum(x, xp.full_like(x, threshold))
        silu = below * _sigmoid(xp, below)
        tail = xp.tanh(c1 * (x - threshold)) + c0
        return xp.where(x >= threshold, tail, silu)

    return act


_SIMPLE: dict[str, Callable[[Any, Array], Array]] = {
    "tanh": lambda xp, x: xp.tanh(x),
    "relu": lambda xp, x: xp.maximum(x, xp.zeros_like(x)),
    "relu6": lambda xp, x: xp.clip(x, 0.0, 6.0),
    "softplus": _softplus,
    "sigmoid": _sigmoid,
    "silu": lambda xp, x: x * _sigmoid(xp, x),
    "gelu": _gelu,
    "gelu_tf": _gelu,
    "linear": lambda xp, x: x,
    "none": lambda xp, x: x,
}


def _parse(name: str) -> Callable[[Any, Array], Array]:
    key = name.lower()
    if key in _SIMPLE:
        return _SIMPLE[key]
    base, _, arg = key.partition(":")
    if base in ("silut", "custom_silu"):
        return _silut(float(arg) if arg else 3.0)
    raise KeyError(name)


def check_activation(key: str, name: Any) -> None:
    """Raise ``ValueError`` naming ``key`` when ``name`` is no known activation."""
    try:
        if not isinstance(name, str):
            raise KeyError(name)
        _parse(name)
    except (KeyError, ValueError):
        raise ValueError(
            f"{key}={name!r}: unknown activation; accepted: {sorted(_SIMPLE)} "
            "and silut[:T] / custom_silu[:T]"
        ) from None


def activation(xp: Any, name: str, x: Array) -> Array:
    """Apply the activation called ``name`` (case-insensitive) to ``x``."""
    return _parse(name)(xp, x)
