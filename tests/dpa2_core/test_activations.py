"""Activation functions: deepmd-kit's values, and finite values and gradients everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from dpa2_core.model.activations import activation

NAMES = ["tanh", "relu", "relu6", "softplus", "sigmoid", "silu", "gelu", "gelu_tf", "linear",
         "none", "silut", "silut:2.0", "custom_silu:5.0"]
X = np.concatenate([np.linspace(-60.0, 60.0, 2401), [-1e4, -800.0, -710.0, 710.0, 1e4]])


@pytest.mark.parametrize("name", NAMES)
def test_values_match_deepmd(name):
    pytest.importorskip("deepmd", reason="deepmd-kit (the parity oracle) is not installed")
    from deepmd.dpmodel.utils.network import get_activation_fn

    x = np.linspace(-60.0, 60.0, 2401)
    theirs = get_activation_fn(name)(x)
    # atol: deepmd's softplus log(1 + e^x) loses the tail below 1e-16 that log1p keeps
    np.testing.assert_allclose(activation(np, name, x), theirs, rtol=1e-14, atol=2e-16)


@pytest.mark.parametrize("name", NAMES)
def test_finite_values_and_gradients_at_extremes(name):
    """No overflow NaN/inf for |x| up to 1e4 (a sigmoid written 1/(1+e^-x) has a NaN
    gradient below -709): checked with torch autograd under anomaly detection."""
    torch = pytest.importorskip("torch")
    x = torch.tensor(X, requires_grad=True)
    with torch.autograd.detect_anomaly():
        y = activation(torch, name, x)
        (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.isfinite(y).all() and torch.isfinite(g).all()
