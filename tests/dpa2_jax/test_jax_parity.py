"""dpa2_jax.descriptor under jit and eagerly vs deepmd-kit's dpmodel and the numpy core.

Inputs come from deepmd-kit's own builder; statistics are random (padding residual
exercised). float64: <= 1e-10 relative to deepmd, jit == eager to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import STRUCTURES, assert_outputs_close, jax_inputs, random_stats, tiny_dict

import dpa2_core as dc
import dpa2_jax as dj

pytest.importorskip("deepmd", reason="deepmd-kit (the parity oracle) is not installed")

from oracle import MODEL_DP, deepmd_call, deepmd_inputs  # noqa: E402

TB = {"use_three_body": True, "three_body_sel": 20, "three_body_rcut": 3.0,
      "three_body_rcut_smth": 0.8}
# The float64 configuration matrix runs through jit_descriptor against deepmd-kit in
# tests/dpa2_core/test_parity.py::test_matrix_through_the_shims; here the float32 model.
MATRIX = {
    "float32": (tiny_dict(TB, precision="float32", repformer={"update_h2": True}), "water"),
}


def _setup(case: str):
    d, structure = MATRIX[case]
    config = dc.DPA2Config.from_dict(d)
    params = random_stats(dc.init_params(config, seed=3), seed=4)
    coord, atype, box = STRUCTURES[structure]()
    return config, params, deepmd_inputs(coord, atype, box, config.rcut, config.nsel)


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_matrix(case):
    config, params, (ce, ae, nl, mp) = _setup(case)
    jparams = dj.to_jax(params)
    fp32 = config.dtype_name == "float32"
    coord = ce.astype(np.float32) if fp32 else ce
    jitted = dj.jit_descriptor(jparams, config, *jax_inputs(coord, ae, nl, mp))
    ref = deepmd_call(dc.dump_deepmd(config, params), ce, ae, nl, mp)
    core = dc.descriptor(params, config, coord, ae, nl, mp)
    assert jitted.descriptor.dtype == coord.dtype
    assert_outputs_close(jitted, ref, 1e-5 if fp32 else 1e-10)
    assert_outputs_close(jitted, core, 1e-5 if fp32 else 1e-12)


def test_eager_equals_jit():
    """Op-by-op (eager) and compiled runs agree to 1e-12 (float64) on a rich config.

    One case only: the first eager call compiles every primitive separately (slow).
    """
    d = tiny_dict({**TB, "tebd_input_mode": "strip"}, exclude_types=[[1, 1]], repformer={
        "update_style": "res_residual", "update_h2": True, "attn2_has_gate": True})
    config = dc.DPA2Config.from_dict(d)
    params = dj.to_jax(random_stats(dc.init_params(config, seed=3), seed=4))
    coord, atype, box = STRUCTURES["cluster"]()
    inputs = jax_inputs(*deepmd_inputs(coord, atype, box, config.rcut, config.nsel))
    eager = dj.descriptor(params, config, *inputs)
    jitted = dj.jit_descriptor(params, config, *inputs)
    assert_outputs_close(jitted, eager, 1e-12)


def test_float32_model_float64_coordinates():
    """deepmd's rule: a float32 model takes float64 coordinates and returns float64."""
    config, params, (ce, ae, nl, mp) = _setup("float32")
    out = dj.jit_descriptor(dj.to_jax(params), config, *jax_inputs(ce, ae, nl, mp))
    assert out.descriptor.dtype == np.float64
    ref = deepmd_call(dc.dump_deepmd(config, params), ce, ae, nl, mp)
    assert_outputs_close(out, ref, 1e-5)


def test_real_model_matches_deepmd():
    """The shared trained water model, one frame: jit vs deepmd-kit."""
    config, jparams = dj.load_deepmd(MODEL_DP)
    _, params = dc.load_deepmd(MODEL_DP)
    coord, atype, box = STRUCTURES["water"]()
    ce, ae, nl, mp = deepmd_inputs(coord[:1], atype[:1], box[:1], config.rcut, config.nsel)
    out = dj.jit_descriptor(jparams, config, *jax_inputs(ce, ae, nl, mp))
    ref = deepmd_call(dc.dump_deepmd(config, params), ce, ae, nl, mp)
    assert_outputs_close(out, ref, 1e-10)
