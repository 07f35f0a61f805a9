"""Forward outputs and coordinate gradients against deepmd-kit (dpmodel, deepmd.jax) and
finite differences, float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import deepmd_call
from torch_helpers import (
    MATRIX,
    ext_inputs,
    one_thread,  # noqa: F401  (autouse fixture)
    structure,
    tiny_module,
)

FIELDS = ("descriptor", "rot_mat", "g2", "h2", "sw")


def _rel_close(ours, ref, rtol=1e-10):
    ref = np.asarray(ref)
    err = np.max(np.abs(ours - ref)) if ref.size else 0.0
    assert err <= rtol * max(np.max(np.abs(ref)), 1e-300), (err, np.max(np.abs(ref)))


@pytest.mark.parametrize("kind", ["triclinic", "cluster"])
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_forward_matches_deepmd(name, kind):
    m = tiny_module(name)
    coord, atype, box = structure(kind)
    args = ext_inputs(m.config, coord, atype, box)
    ours = m(*args)
    ref = deepmd_call(m.to_deepmd(), *(x.numpy() for x in args))
    for field, x, y in zip(FIELDS, ours, ref, strict=True):
        assert x.dtype == torch.float64, field
        _rel_close(x.detach().numpy(), y)


def _weights(out, seed=0):
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.normal(size=tuple(x.shape))) for x in out[:2]]


def _scalar(out, w):
    return (out.descriptor * w[0]).sum() + (out.rot_mat * w[1]).sum()


def test_coordinate_gradient_matches_deepmd_jax(name="three_body_strip_residual"):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    from deepmd.jax.descriptor.dpa2 import DescrptDPA2 as JaxDPA2

    m = tiny_module(name)
    coord_ext, atype_ext, nlist, mapping = ext_inputs(m.config, *structure())
    c = coord_ext.clone().requires_grad_(True)
    out = m(c, atype_ext, nlist, mapping)
    w = _weights(out)
    (grad,) = torch.autograd.grad(_scalar(out, w), c)

    ref_model = JaxDPA2.deserialize(m.to_deepmd())
    jnp = jax.numpy
    wj = [jnp.asarray(x.numpy()) for x in w]

    def scalar(x):
        d, rot, *_ = ref_model.call(x.reshape(1, -1), jnp.asarray(atype_ext.numpy()),
                                    jnp.asarray(nlist.numpy()), jnp.asarray(mapping.numpy()))
        return (d * wj[0]).sum() + (rot * wj[1]).sum()

    ref = np.asarray(jax.jit(jax.grad(scalar))(jnp.asarray(coord_ext.numpy())))
    _rel_close(grad.numpy(), ref, 1e-10)


@pytest.mark.parametrize("kind", ["triclinic", "cluster"])
def test_coordinate_gradient_matches_finite_differences(kind):
    """Gradient w.r.t. local coordinates (ghost images included) vs central differences."""
    m = tiny_module("three_body_strip_residual")
    coord, atype, box = structure(kind, n=12)
    a = torch.from_numpy(atype[0])
    b = None if box is None else torch.from_numpy(box[0])
    w = _weights(m.forward_structure(torch.from_numpy(coord[0]), a, b))
    w = [x[0] for x in w]

    def f(c):
        out = m.forward_structure(c, a, b)
        return (out.descriptor * w[0]).sum() + (out.rot_mat * w[1]).sum()

    c = torch.from_numpy(coord[0]).requires_grad_(True)
    (grad,) = torch.autograd.grad(f(c), c)
    h = 1e-5
    for i, k in [(0, 0), (3, 1), (7, 2), (11, 0)]:
        plus, minus = c.detach().clone(), c.detach().clone()
        plus[i, k] += h
        minus[i, k] -= h
        fd = (f(plus) - f(minus)).item() / (2 * h)
        assert abs(fd - grad[i, k].item()) <= 1e-6 * max(1.0, abs(fd)), (i, k, fd, grad[i, k])
