"""The descriptor called three ways, for tests that must hold on the core and both shims.

Each runner takes numpy ``(params, config, coord_ext, atype_ext, nlist, mapping)`` and
returns the five outputs as numpy arrays: ``core`` is :func:`dpa2_core.descriptor` on
numpy, ``torch`` the :class:`dpa2_torch.DescrptDPA2` module's forward (CPU, eager, under
anomaly detection), ``jax`` :func:`dpa2_jax.jit_descriptor` under ``jax_debug_nans``.
"""

from __future__ import annotations

import numpy as np
import pytest

import dpa2_core as dc


def run_core(params, config, coord, atype, nlist, mapping=None):
    return dc.descriptor(params, config, coord, atype, nlist, mapping)


def run_torch(params, config, coord, atype, nlist, mapping=None):
    torch = pytest.importorskip("torch")
    from dpa2_torch import DescrptDPA2

    module = DescrptDPA2.from_params(config, params)
    args = [None if x is None else torch.from_numpy(np.asarray(x))
            for x in (coord, atype, nlist, mapping)]
    with torch.autograd.detect_anomaly(), torch.no_grad():
        out = module(*args)
    return dc.DescriptorOutput(*(x.numpy() for x in out))


def run_jax(params, config, coord, atype, nlist, mapping=None):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import dpa2_jax as dj

    args = [None if x is None else jax.numpy.asarray(x) for x in (coord, atype, nlist, mapping)]
    with jax.debug_nans(True):  # inputs converted first: a NaN input must reach the checks
        out = dj.jit_descriptor(dj.to_jax(params), config, *args)
    return dc.DescriptorOutput(*(np.asarray(x) for x in out))


SHIMS = {"core": run_core, "torch": run_torch, "jax": run_jax}
