"""One implementation, every array namespace: numpy, array-api-strict, torch and jax agree."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_stats, run_descriptor, tiny_dict, triclinic

import dpa2_core as dc
from dpa2_core._compat import to_numpy
from dpa2_core.model.params import tree_map

TB = {"use_three_body": True, "three_body_sel": 20, "three_body_rcut": 3.0,
      "tebd_input_mode": "strip"}
CONFIGS = {
    "strip-three-body-excl": tiny_dict(TB, {"update_h2": True, "attn2_has_gate": True},
                                       exclude_types=[[0, 1]]),
    "nonsmooth-residual": tiny_dict({"use_three_body": True, "three_body_sel": 20,
                                     "three_body_rcut": 3.0},
                                    {"update_style": "res_residual", "update_h2": True},
                                    smooth=False),
}


def _inputs(config):
    coord, atype, box = triclinic()
    pytest.importorskip("deepmd", reason="inputs are built by deepmd-kit's builder here")
    from oracle import deepmd_inputs

    return deepmd_inputs(coord, atype, box, config.rcut, config.nsel)


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_backends_agree(case, to_backend):
    config = dc.DPA2Config.from_dict(CONFIGS[case])
    params = random_stats(dc.init_params(config, seed=1))
    inputs = _inputs(config)
    ref = dc.descriptor(params, config, *inputs)
    converted = [to_backend(x) for x in inputs]
    before = [to_numpy(x).copy() for x in converted]
    p_conv = tree_map(lambda _, x: to_backend(x), params)
    out = run_descriptor(p_conv, config, *converted)
    for name, a, b in zip(out._fields, out, ref, strict=True):
        np.testing.assert_allclose(to_numpy(a), b, rtol=0, atol=1e-12 * np.abs(b).max(),
                                   err_msg=name)
        assert to_numpy(a).dtype == b.dtype
    for x, old in zip(converted, before, strict=True):
        np.testing.assert_array_equal(to_numpy(x), old)  # inputs are never modified
    for path, x in dict(dc.model.params.tree_paths(p_conv)).items():
        np.testing.assert_array_equal(to_numpy(x), dict(dc.model.params.tree_paths(params))[path])


def test_numpy_inputs_are_not_modified_even_if_read_only():
    config = dc.DPA2Config.from_dict(CONFIGS["strip-three-body-excl"])
    params = tree_map(lambda _, x: _read_only(x), dc.init_params(config))
    inputs = [_read_only(x) for x in _inputs(config)]
    dc.descriptor(params, config, *inputs)


def _read_only(x):
    x = np.array(x)
    x.setflags(write=False)
    return x


def test_torch_meta_device_needs_no_host():
    """Every creation call carries device=: the whole forward runs on torch's meta device."""
    torch = pytest.importorskip("torch")
    config = dc.DPA2Config.from_dict(CONFIGS["strip-three-body-excl"])
    params = tree_map(lambda _, x: torch.from_numpy(x).to("meta"), dc.init_params(config))
    inputs = [torch.from_numpy(np.asarray(x)).to("meta") for x in _inputs(config)]
    out = dc.descriptor(params, config, *inputs)
    assert all(x.device.type == "meta" for x in out)
    assert out.descriptor.shape == (1, inputs[2].shape[1], config.dim_out)


def test_float32_inputs_with_float32_model_stay_float32(to_backend):
    config = dc.DPA2Config.from_dict({**CONFIGS["strip-three-body-excl"], "precision": "float32"})
    params = tree_map(lambda _, x: to_backend(x), dc.init_params(config))
    ce, ae, nl, mp = _inputs(config)
    out = run_descriptor(params, config, to_backend(ce.astype(np.float32)), to_backend(ae),
                         to_backend(nl), to_backend(mp))
    assert all(to_numpy(x).dtype == np.float32 for x in out)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_bfloat16_runs_close_to_float64(backend):
    """bfloat16 (no numpy dtype) runs on torch and jax, within bfloat16's 3 digits."""
    from conftest import BACKENDS

    pytest.importorskip(backend)
    d = CONFIGS["strip-three-body-excl"]
    config64 = dc.DPA2Config.from_dict(d)
    config16 = dc.DPA2Config.from_dict({**d, "precision": "bfloat16"})
    params = dc.init_params(config64, seed=2)
    inputs = _inputs(config64)
    ref = dc.descriptor(params, config64, *inputs)
    conv = BACKENDS[backend]
    xp = dc.array_api.namespace(conv(np.zeros(1)))
    p16 = tree_map(lambda _, x: xp.astype(conv(x), xp.bfloat16), params)
    out = run_descriptor(p16, config16, *(conv(x) for x in inputs))
    assert to_numpy(out.descriptor).dtype == np.float64
    err = np.abs(to_numpy(out.descriptor) - ref.descriptor).max()
    assert err <= 2e-2 * np.abs(ref.descriptor).max()
    with pytest.raises(ValueError, match="precision='bfloat16'"):
        dc.descriptor(params, config16, *inputs)
