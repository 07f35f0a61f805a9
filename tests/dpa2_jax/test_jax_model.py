"""The JAX energy model: a whole deepmd-kit model (descriptor, fitting, bias_atom_e,
out_bias) gives deepmd-kit's energies, and forces equal to central differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import STRUCTURES, random_stats, tiny_dict

import dpa2_core as dc
import dpa2_jax as dj
from dpa2_jax.training.data import extension_of

pytest.importorskip("deepmd", reason="deepmd-kit (the parity oracle) is not installed")

from oracle import deepmd_energy_model  # noqa: E402


def _deepmd_model(seed: int = 0) -> dict:
    config = dc.DPA2Config.from_dict(tiny_dict(
        {"use_three_body": True, "three_body_sel": 20, "three_body_rcut": 3.0, "nsel": 80},
        repformer={"update_style": "res_residual", "update_h2": True}))
    params = random_stats(dc.init_params(config, seed=seed), seed=seed + 1)
    return deepmd_energy_model(dc.dump_deepmd(config, params), seed)


def test_whole_deepmd_model_energy_and_forces():
    import deepmd.dpmodel.model  # noqa: F401  (registers the model classes)
    from deepmd.dpmodel.model.base_model import BaseModel

    d = _deepmd_model()
    ref = BaseModel.deserialize(d)
    config, params = dj.load_deepmd_model(d)
    assert float(jnp.abs(params["out_bias"]).sum()) > 0
    coord, atype, box = STRUCTURES["triclinic"]()

    def energy_ref(x):
        return ref.call(x.reshape(1, -1), atype, box.reshape(1, 9))["energy"][0, 0]

    ext = jax.tree.map(jnp.asarray, extension_of(coord, atype, box, config.descriptor))
    e, f = jax.jit(dj.energy_and_forces, static_argnums=1)(params, config, jnp.asarray(coord),
                                                           ext)
    assert abs(float(e[0]) - energy_ref(coord)) <= 1e-12 * abs(energy_ref(coord))
    h = 1e-5
    for i, k in [(0, 0), (7, 1), (19, 2)]:
        step = np.zeros_like(coord)
        step[0, i, k] = h
        fd = -(energy_ref(coord + step) - energy_ref(coord - step)) / (2 * h)
        assert abs(fd - float(f[0, i, k])) < 1e-7


def test_trainable_flags_of_the_model():
    config, params = dj.load_deepmd_model(_deepmd_model())
    flags = dj.model.model_trainable(params, config)
    assert flags["out_bias"] is False and flags["fitting"]["bias_atom_e"] is False
    assert all(jax.tree.leaves(flags["fitting"]["layers"]))
