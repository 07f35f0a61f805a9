"""Parameter pytrees, conversions and the float64 / x64 policy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_dict
from oracle import MODEL_DP

import dpa2_core as dc
import dpa2_jax as dj
from dpa2_jax.descriptor import check_inputs


@pytest.fixture(scope="module")
def config():
    return dc.DPA2Config.from_dict(tiny_dict(repformer={"nlayers": 1}))


def test_init_params_are_the_core_draws_as_jax_arrays(config):
    ours = dj.init_params(config, seed=7)
    ref = dc.init_params(config, seed=7)
    assert jax.tree.structure(ours) == jax.tree.structure(ref)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref), strict=True):
        assert isinstance(a, jax.Array) and a.dtype == np.float64
        np.testing.assert_array_equal(np.asarray(a), b)


def test_to_numpy_round_trip_copies(config):
    params = dj.init_params(config)
    host = dj.to_numpy(params)
    assert all(isinstance(x, np.ndarray) for x in jax.tree.leaves(host))
    back = dj.to_jax(host)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    jax.tree.leaves(host)[0][...] = 123.0  # the copy is independent of the jax arrays
    assert float(jnp.max(jax.tree.leaves(params)[0])) != 123.0


def test_load_deepmd_gives_jax_params():
    config, params = dj.load_deepmd(MODEL_DP)
    ref_config, ref = dc.load_deepmd(MODEL_DP)
    assert config == ref_config
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_float64_without_x64_raises(config):
    with jax.enable_x64(False):
        for call in (lambda: dj.init_params(config), lambda: dj.load_deepmd(MODEL_DP),
                     lambda: dj.to_jax(dc.init_params(config))):
            with pytest.raises(ValueError, match="jax_enable_x64"):
                call()


def test_explicit_downcast_without_x64(config):
    with jax.enable_x64(False):
        cfg32, params = dj.load_deepmd(MODEL_DP, precision="float32")
        assert cfg32.dtype_name == "float32"
        assert {x.dtype for x in jax.tree.leaves(params)} == {np.dtype("float32")}
        cfg, p = dj.cast(config, dc.init_params(config), "float32")
        assert cfg.precision == "float32" and jax.tree.leaves(p)[0].dtype == np.float32
        with pytest.raises(ValueError, match="jax_enable_x64"):
            dj.cast(cfg, p, "float64")


def test_float32_descriptor_runs_without_x64():
    """A float32 model on float32 inputs with x64 off: float32 out, no 64-bit anywhere;
    float64 host coordinates are refused instead of silently truncated."""
    from conftest import small_water
    from oracle import deepmd_inputs

    config = dc.DPA2Config.from_dict(tiny_dict(precision="float32", repformer={"nlayers": 1}))
    coord, atype, box = small_water()
    ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, config.nsel)
    with jax.enable_x64(False):
        params = dj.init_params(config)
        with pytest.raises(ValueError, match="jax_enable_x64"):
            dj.descriptor(params, config, ce, ae, nl, mp)
        out = dj.jit_descriptor(params, config, ce.astype(np.float32), ae, nl, mp)
        assert {x.dtype for x in out} == {np.dtype("float32")}
    ref = dc.descriptor(dc.init_params(config), config, ce.astype(np.float32), ae, nl, mp)
    np.testing.assert_allclose(np.asarray(out.descriptor), ref.descriptor, rtol=1e-4,
                               atol=1e-5)


def test_dtype_mismatches_raise(config):
    params = dj.init_params(config)
    coord = jnp.zeros((1, 4, 3), dtype=jnp.float32)
    with pytest.raises(ValueError, match="narrower"):
        check_inputs(params, config, coord)
    mixed = jax.tree.map(lambda x: x, params)
    mixed["repinit"]["embedding"][0]["w"] = mixed["repinit"]["embedding"][0]["w"].astype(
        jnp.float32)
    with pytest.raises(ValueError, match=r"\['repinit'\]\['embedding'\]\[0\]\['w'\]"):
        check_inputs(mixed, config, jnp.zeros((1, 4, 3)))
    with pytest.raises(ValueError, match="shape"):
        check_inputs({**params, "repinit": {**params["repinit"], "davg": jnp.zeros(3)}},
                     config, jnp.zeros((1, 4, 3)))


def test_import_disables_the_crashing_ynn_dot_unless_opted_out():
    import os
    import subprocess
    import sys

    code = "import os, dpa2_jax; print(os.environ.get('XLA_FLAGS', ''))"
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",
                                                             "DPA2_JAX_KEEP_XLA_FLAGS")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    assert "--xla_cpu_experimental_ynn_fusion_type=" in run.stdout
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "DPA2_JAX_KEEP_XLA_FLAGS": "1"}, check=True)
    assert "ynn" not in run.stdout
