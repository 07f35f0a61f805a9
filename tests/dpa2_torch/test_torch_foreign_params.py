"""Every entry point of the torch shim takes the core's numpy pytree, a torch one or a jax
one (copied once into the module's tensors)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import cluster, random_stats, tiny_dict

import dpa2_core as dc
import dpa2_torch as dt
from dpa2_core.model.fitting import FittingConfig, init_fitting_params
from dpa2_core.model.params import tree_map

KINDS = {"numpy": lambda x: x, "torch": lambda x: torch.from_numpy(np.array(x)),
         "jax": jnp.asarray}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_entry_point_takes_numpy_torch_and_jax_parameters(kind):
    import jax

    jax.config.update("jax_enable_x64", True)
    config = dc.DPA2Config.from_dict(tiny_dict())
    params = random_stats(dc.init_params(config, seed=1), seed=2)
    fcfg = FittingConfig(config.ntypes, config.dim_out, neuron=(8,))
    fit = init_fitting_params(fcfg, 3)
    bias = np.array([-1.5, -0.5])
    convert = KINDS[kind]
    coord, atype = cluster(12)
    inputs = dc.build_neighbor_list(coord, atype, config)
    ref = dc.descriptor(params, config, inputs[0], inputs[1], inputs[3], inputs[2])
    c = tree_map(lambda _, x: convert(x), params)
    for desc in (dt.DescrptDPA2(config, params=c), dt.DescrptDPA2.from_params(config, c)):
        out = desc(*(torch.from_numpy(np.asarray(x)) for x in
                     (inputs[0], inputs[1], inputs[3], inputs[2])))
        np.testing.assert_allclose(out.descriptor.detach().numpy(), ref.descriptor, atol=1e-12)
    model = dt.EnergyModel(dt.DescrptDPA2(config, params=c), fcfg,
                           tree_map(lambda _, x: convert(x), fit), convert(bias))
    record = dc.DeepmdModel(config, params, fcfg, fit, bias)
    loaded = dt.load_model(record)
    x, a = torch.from_numpy(coord), torch.from_numpy(atype)
    e1, e2 = model(x, a)["energy"], loaded(x, a)["energy"]
    torch.testing.assert_close(e1, e2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["jax", "torch", "torch-parameter"])
def test_load_model_of_a_record_with_foreign_leaves(kind):
    """dt.load_model(DeepmdModel whose leaves are jax arrays or torch tensors, also ones
    that require grad) gives the model of the numpy record, to the bit."""
    import jax

    jax.config.update("jax_enable_x64", True)
    convert = {**KINDS, "torch-parameter":
               lambda x: torch.nn.Parameter(torch.from_numpy(np.array(x)))}[kind]
    config = dc.DPA2Config.from_dict(tiny_dict())
    params = random_stats(dc.init_params(config, seed=1), seed=2)
    fcfg = FittingConfig(config.ntypes, config.dim_out, neuron=(8,))
    fit = init_fitting_params(fcfg, 3)
    bias = np.array([-1.5, -0.5])
    record = dc.DeepmdModel(config, params, fcfg, fit, bias)
    foreign = dc.DeepmdModel(config, tree_map(lambda _, x: convert(x), params), fcfg,
                             tree_map(lambda _, x: convert(x), fit), convert(bias))
    coord, atype = cluster(12)
    x, a = torch.from_numpy(coord), torch.from_numpy(atype)
    ref, got = dt.load_model(record)(x, a), dt.load_model(foreign)(x, a)
    for key in ("energy", "atom_energy", "force"):
        torch.testing.assert_close(got[key], ref[key], rtol=0, atol=0, msg=key)
