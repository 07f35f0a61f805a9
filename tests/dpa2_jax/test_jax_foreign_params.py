"""Every entry point of the jax shim takes the core's numpy pytree, a torch one or a jax
one (converted once, at the edge), also closed over inside the caller's ``jax.jit``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import cluster, random_stats, tiny_dict

import dpa2_core as dc
import dpa2_jax as dj
from dpa2_core.model.params import tree_map, tree_paths

KINDS = {"numpy": lambda x: x, "torch": lambda x: torch.from_numpy(np.array(x)),
         "jax": jnp.asarray}


@pytest.fixture(scope="module")
def setup():
    # one repformer layer: the three compiles below stay short
    config = dc.DPA2Config.from_dict(tiny_dict(repformer={"nlayers": 1}))
    params = random_stats(dc.init_params(config, seed=1), seed=2)
    coord, atype = cluster(8)
    mconfig = dj.ModelConfig.build(config, {"neuron": [4]})
    fit = dc.model.fitting.init_fitting_params(mconfig.fitting, 3)
    model = {"descriptor": params, "fitting": fit, "out_bias": np.array([-1.5, -0.5])}
    ext = dc.neighbors.extension.extension(coord, atype, config)
    ref = dc.descriptor(params, config, *dc.build_neighbor_list(coord, atype, config)[:2],
                        ext.nlist, ext.mapping)
    return config, params, mconfig, model, coord, ext, ref


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_entry_point_takes_numpy_torch_and_jax_parameters(kind, setup):
    config, params, mconfig, model, coord, ext, ref = setup
    convert = KINDS[kind]
    p = tree_map(lambda _, x: convert(x), params)
    m = tree_map(lambda _, x: convert(x), model)
    coord_j = jnp.asarray(coord)
    ext_j = dj.Extension(*(jnp.asarray(x) for x in ext))
    coord_ext = dj.model.extend_coord(coord_j, ext_j)

    @jax.jit
    def forward(c):  # the failure: numpy params closed over inside jit
        ce = dj.model.extend_coord(c, ext_j)
        d = dj.descriptor(p, config, ce, ext_j.atype_ext, ext_j.nlist, ext_j.mapping)
        e = dj.atom_energy(m, mconfig, ce, ext_j.atype_ext, ext_j.nlist, ext_j.mapping)
        return d.descriptor, e

    desc, atom_e = forward(coord_j)
    np.testing.assert_allclose(desc, ref.descriptor, rtol=0, atol=1e-12)
    if kind == "numpy":  # the gradient entry points too (each compile costs seconds)
        @jax.jit
        def gradients(c):
            total, force = dj.energy_and_forces(m, mconfig, c, ext_j)
            return total, force, *dj.energy_force_virial(m, mconfig, c, ext_j)

        total, force, atom_e2, force2, _ = gradients(coord_j)
        np.testing.assert_allclose(total, atom_e.sum(-1), rtol=1e-14)
        np.testing.assert_allclose(atom_e2, atom_e, rtol=0, atol=1e-12)
        np.testing.assert_allclose(force2, force, rtol=0, atol=1e-12)
    jitted = dj.jit_descriptor(p, config, coord_ext, ext_j.atype_ext, ext_j.nlist,
                               ext_j.mapping, validate=False)  # eager checks: slow, not here
    np.testing.assert_allclose(jitted.descriptor, ref.descriptor, rtol=0, atol=1e-12)
    fresh = dj.init_model(mconfig, descriptor_params=p)
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(fresh))
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(dj.to_jax(p)))
    _, cast = dj.cast(config, p, "float32")
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(cast))



FOREIGN = {"torch": KINDS["torch"], "jax": KINDS["jax"],
           # a torch module's own parameter: requires grad, so .numpy() alone would refuse it
           "torch-parameter": lambda x: torch.nn.Parameter(torch.from_numpy(np.array(x)))}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_energy_gradients_and_from_record_take_foreign_leaves(kind, setup):
    """dj.energy and dj.energy_force_virial on torch/jax leaves closed over inside jit give
    the numpy pytree's numbers (energies: the core's numpy fitting on the core's
    descriptor); from_record of a DeepmdModel holding such leaves gives the same jax
    arrays. (One compile per kind, ~4 s: the torch Parameter only goes through from_record,
    the edge where a tensor that requires grad needs a detach.)"""
    config, params, mconfig, model, coord, ext, ref = setup
    convert = FOREIGN[kind]
    m = tree_map(lambda _, x: convert(x), model)
    record = dc.DeepmdModel(config, m["descriptor"], mconfig.fitting, m["fitting"],
                            m["out_bias"])
    cfg, p = dj.from_record(record)
    assert cfg == mconfig
    want = dict(tree_paths(model))
    for path, leaf in tree_paths(p):
        assert isinstance(leaf, jax.Array), path
        np.testing.assert_array_equal(leaf, want[path], err_msg=str(path))
    if kind == "torch-parameter":
        return
    coord_j = jnp.asarray(coord)
    ext_j = dj.Extension(*(jnp.asarray(x) for x in ext))

    @jax.jit
    def run(c):
        return dj.energy(m, mconfig, c, ext_j), *dj.energy_force_virial(m, mconfig, c, ext_j)

    total, atom_e, force, virial = run(coord_j)
    atype = ext.atype_ext[:, : coord.shape[1]]
    want_e = dc.model.fitting.atomic_energy(model["fitting"], mconfig.fitting, ref.descriptor,
                                            atype, model["out_bias"])
    np.testing.assert_allclose(atom_e, want_e, rtol=0, atol=1e-12)
    np.testing.assert_allclose(total, want_e.sum(-1), rtol=1e-13)
    # the force is the gradient: a central difference of the energy along one coordinate
    h, (i, k) = 1e-5, (3, 1)
    step = np.zeros_like(coord)
    step[0, i, k] = h
    e_plus, e_minus = (run(coord_j + s)[0] for s in (step, -step))
    assert abs(-(e_plus - e_minus)[0] / (2 * h) - force[0, i, k]) < 1e-6
    assert virial.shape == (1, 3, 3) and np.isfinite(np.asarray(virial)).all()
