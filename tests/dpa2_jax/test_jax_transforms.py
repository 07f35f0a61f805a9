"""jax.grad (coordinates and parameters), jax.vmap, static config and retracing."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import STRUCTURES, assert_outputs_close, random_stats, tiny_dict

import dpa2_core as dc
import dpa2_jax as dj
from dpa2_jax.model import Extension, extend_coord
from dpa2_jax.training.data import extension_of

TB = {"use_three_body": True, "three_body_sel": 20, "three_body_rcut": 3.0,
      "three_body_rcut_smth": 0.8, "nsel": 80}
RICH = tiny_dict(TB, repformer={"update_style": "res_residual", "update_h2": True,
                                "attn2_has_gate": True, "update_residual": 0.3})


def _setup(d=RICH, structure="triclinic", nframes=1):
    """config, jax params, numpy coord (nf, nloc, 3), jax Extension. Tests keep host-side
    arithmetic in numpy: every distinct eager jax op would compile on its own."""
    config = dc.DPA2Config.from_dict(d)
    params = dj.to_jax(random_stats(dc.init_params(config, seed=5), seed=6))
    coord, atype, box = STRUCTURES[structure]()
    coord, atype = coord[:nframes], atype[:nframes]
    box = None if box is None else box[:nframes]
    ext = extension_of(coord, atype, box, config)
    return config, params, coord, jax.tree.map(jnp.asarray, ext)


def _scalar(params, config, coord, ext: Extension, weights):
    """A scalar touching every output: sum_k <w_k, out_k>, through the ghost extension."""
    out = dj.descriptor(params, config, extend_coord(coord, ext), ext.atype_ext, ext.nlist,
                        ext.mapping)
    return sum(jnp.sum(w * o) for w, o in zip(weights, out, strict=True))


def _weights(config, coord, ext, seed=0):
    """Random weights shaped like the five outputs (shapes from the numpy core)."""
    nloc, nall = coord.shape[1], ext.mapping.shape[1]
    params = dc.init_params(config)
    out = dc.descriptor(params, config, np.zeros((coord.shape[0], nall, 3)),
                        np.asarray(ext.atype_ext), np.asarray(ext.nlist), np.asarray(ext.mapping),
                        validate=False)
    assert out.descriptor.shape[1] == nloc
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(rng.normal(size=o.shape)) for o in out)


@pytest.fixture(scope="module")
def gradients():
    """One compile for both tests: value and gradient in (coordinates, parameters)."""
    with jax.enable_x64(True), jax.debug_nans(True), jax.numpy_dtype_promotion("strict"):
        config, params, coord, ext = _setup()
        w = _weights(config, coord, ext)
        fn = jax.jit(jax.value_and_grad(
            lambda c, p: _scalar(p, config, c, ext, w), argnums=(0, 1)))
        value, (g_coord, g_params) = fn(coord, params)
        yield fn, params, coord, np.asarray(g_coord), g_params


def test_coordinate_gradient_matches_finite_differences(gradients):
    """d/d(local coords) in a cell shorter than the cutoff: each atom moves together with
    all its periodic images (ghosts are coord[mapping] + shift); float64."""
    fn, params, coord, grad, _ = gradients

    def f(c):
        return float(fn(c, params)[0])

    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
    h = 1e-5
    direction = np.random.default_rng(1).normal(size=coord.shape)
    fd = (f(coord + h * direction) - f(coord - h * direction)) / (2 * h)
    assert abs(fd - np.sum(grad * direction)) <= 1e-7 * np.abs(grad).sum()
    for atom, axis in [(0, 0), (3, 1), (coord.shape[1] - 1, 2)]:
        e = np.zeros(coord.shape)
        e[0, atom, axis] = h
        fd = (f(coord + e) - f(coord - e)) / (2 * h)
        assert abs(fd - grad[0, atom, axis]) <= 1e-7 * np.abs(grad).max()


def test_gradients_reach_every_parameter(gradients):
    """Every leaf gets a finite, non-zero gradient (statistics included: they enter the
    normalised env-mat; only their training is switched off, in the optimiser)."""
    _, params, _, _, grads = gradients
    leaves = jax.tree_util.tree_leaves_with_path(grads)
    assert len(leaves) == len(jax.tree.leaves(params))
    for path, g in leaves:
        name = jax.tree_util.keystr(path)
        g = np.asarray(g)
        assert np.isfinite(g).all(), name
        assert float(np.sum(g * g)) > 0.0, f"{name}: zero gradient"


def test_vmap_over_frames_equals_batched_and_one_by_one():
    config, params, coord, ext = _setup(tiny_dict(), "water", nframes=2)
    ce = jax.jit(extend_coord)(coord, ext)
    batched = dj.jit_descriptor(params, config, ce, ext.atype_ext, ext.nlist, ext.mapping)
    one = jax.jit(jax.vmap(lambda c, a, n, m: dj.descriptor(params, config, c, a, n, m)))
    mapped = one(ce, ext.atype_ext, ext.nlist, ext.mapping)
    assert_outputs_close(mapped, batched, 1e-13)
    host = [np.asarray(x) for x in (ce, ext.atype_ext, ext.nlist, ext.mapping)]
    for f in range(2):
        single = dj.jit_descriptor(params, config, *(x[f] for x in host))
        assert single.descriptor.ndim == 2
        assert_outputs_close(single, [np.asarray(o)[f] for o in batched], 1e-13)


def test_config_is_hashable_and_static():
    d = tiny_dict()
    a, b = dc.DPA2Config.from_dict(d), dc.DPA2Config.from_dict(d)
    assert a == b and hash(a) == hash(b)
    c = dataclasses.replace(a, repformer=dataclasses.replace(a.repformer, nlayers=1))
    assert hash(c) != hash(a)
    f = jax.jit(lambda cfg, x: x * cfg.repformer.nlayers, static_argnums=0)
    assert float(f(a, jnp.ones(()))) == 2.0 and float(f(c, jnp.ones(()))) == 1.0


def test_one_trace_per_shape():
    """Same shapes and config: no retrace; a new shape or config: exactly one more."""
    config, params, coord, ext = _setup(tiny_dict(repformer={"nlayers": 1}), "cluster")
    traces = []

    def counted(p, cfg, *args):
        traces.append(1)
        return dj.descriptor(p, cfg, *args)

    f = jax.jit(counted, static_argnums=1)
    args = [np.asarray(x) for x in (jax.jit(extend_coord)(coord, ext), ext.atype_ext,
                                    ext.nlist, ext.mapping)]
    for shift in (0.0, 0.01, 0.02):
        jax.block_until_ready(f(params, config, args[0] + shift, *args[1:]))
    moved = dj.to_jax(jax.tree.map(lambda x: np.asarray(x) * 1.5, params))
    f(moved, config, *args)
    assert len(traces) == 1
    wider = np.concatenate([args[2], -np.ones_like(args[2][..., :3])], axis=-1)
    f(params, config, args[0], args[1], wider, args[3])
    assert len(traces) == 2
    f(params, dc.DPA2Config.from_dict(tiny_dict(repformer={"nlayers": 1})), *args)  # equal
    assert len(traces) == 2
    before = dj.jit_descriptor.jitted._cache_size()
    for shift in (0.0, 0.01):
        dj.jit_descriptor(params, config, args[0] + shift, *args[1:])
    assert dj.jit_descriptor.jitted._cache_size() - before <= 1
