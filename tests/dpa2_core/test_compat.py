"""The backend fast paths of ``dpa2_core._compat`` against the formula as written."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpa2_core._compat import muladd, softmax

torch = pytest.importorskip("torch")
xt = pytest.importorskip("array_api_compat.torch")


def _reference(x: np.ndarray, extra: int, logit: float) -> np.ndarray:
    """The softmax of ``x`` with ``extra`` keys of value ``logit`` appended, those dropped."""
    full = np.concatenate([x, np.full((*x.shape[:-1], extra), logit)], axis=-1)
    e = np.exp(full - full.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True))[..., : x.shape[-1]]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), extra=st.integers(0, 20),
       spread=st.sampled_from([0.1, 5.0, 40.0]), shift=st.sampled_from([-60.0, -20.0, 0.0, 30.0]))
def test_softmax_with_extra_keys_on_every_path(seed, extra, spread, shift):
    # shift -60: every real key far below the extra keys' -20 (their terms dominate)
    x = np.random.default_rng(seed).normal(shift, spread, size=(3, 2, 7))
    want = _reference(x, extra, -20.0)
    got_np = softmax(np, x, extra, -20.0)
    got_t = softmax(xt, torch.from_numpy(x), extra, -20.0).numpy()
    np.testing.assert_allclose(got_np, want, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(got_t, want, rtol=1e-12, atol=1e-300)


def test_softmax_gradients_agree_between_torch_and_the_formula():
    x = torch.from_numpy(np.random.default_rng(1).normal(0, 3, size=(4, 5, 6)))
    grads = []
    for fused in (True, False):
        xi = x.clone().requires_grad_(True)
        if fused:
            y = softmax(xt, xi, 7, -20.0)
        else:  # the generic formula on torch tensors
            m = xi.amax(-1, keepdim=True).clamp_min(-20.0)
            e = (xi - m).exp()
            y = e / (e.sum(-1, keepdim=True) + 7 * (-20.0 - m).exp())
        (g,) = torch.autograd.grad((y * torch.arange(6.0, dtype=y.dtype)).sum(), xi)
        grads.append(g.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-11, atol=1e-15)


def test_muladd_broadcasts_like_the_formula():
    rng = np.random.default_rng(2)
    a, b, c = rng.normal(size=(2, 4, 3, 3)), rng.normal(size=(2, 1, 3, 3)), rng.normal(size=(3,))
    want = a * b + c
    np.testing.assert_array_equal(muladd(np, a, b, c), want)
    got = muladd(xt, *(torch.from_numpy(v) for v in (a, b, c))).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15)


def test_softmax_gradients_under_jax_match_the_formula():
    """jax takes no gradient through the max (stop_gradient); the result does not depend
    on it, so the gradient is the formula's, ties in the max included."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    x = np.random.default_rng(3).normal(0, 3, size=(4, 5, 6))
    x[0, 0, :2] = x[0, 0].max() + 1.0  # a tie in the max
    weight = np.arange(6.0)

    def loss(v):
        return jnp.sum(softmax(jnp, v, 7, -20.0) * weight)

    got = np.asarray(jax.grad(loss)(jnp.asarray(x)))
    xi = torch.from_numpy(x).requires_grad_(True)
    e = xi.exp()
    want = e / (e.sum(-1, keepdim=True) + 7 * np.exp(-20.0))
    (g,) = torch.autograd.grad((want * torch.from_numpy(weight)).sum(), xi)
    np.testing.assert_allclose(got, g.numpy(), rtol=1e-10, atol=1e-15)
