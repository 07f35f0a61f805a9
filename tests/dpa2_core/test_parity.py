"""Parity with deepmd-kit 3.2.0's numpy DescrptDPA2 over a matrix that flips every option.

Inputs come from deepmd-kit's own neighbor-list builder so these tests isolate the
descriptor. Statistics are random and non-trivial so the padding residual (§5.5) is
exercised. Tolerance: per output, max|ours - deepmd| <= 1e-10 * max|deepmd| (float64).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import STRUCTURES, random_stats, tiny_dict
from shims import SHIMS

import dpa2_core as dc

pytest.importorskip("deepmd", reason="deepmd-kit (the parity oracle) is not installed")

from oracle import deepmd_call, deepmd_descriptor, deepmd_inputs  # noqa: E402

TB = {"use_three_body": True, "three_body_sel": 20, "three_body_rcut": 3.0,
      "three_body_rcut_smth": 0.8}
RES = {"update_style": "res_residual", "update_residual": 0.2}

MATRIX = {
    "default": ({}, "water"),
    "default-cluster": ({}, "cluster"),
    "default-triclinic": ({}, "triclinic"),
    "strip": (tiny_dict({"tebd_input_mode": "strip"}), "triclinic"),
    "strip-one-side": (tiny_dict({"tebd_input_mode": "strip", "type_one_side": True}), "water"),
    "concat-one-side": (tiny_dict({"type_one_side": True}), "cluster"),
    "three-body": (tiny_dict(TB), "water"),
    "three-body-strip": (tiny_dict({**TB, "tebd_input_mode": "strip"}), "triclinic"),
    "three-body-nonsmooth": (tiny_dict(TB, smooth=False), "cluster"),
    "three-body-strip-nonsmooth": (
        tiny_dict({**TB, "tebd_input_mode": "strip"}, smooth=False), "water"),
    "three-body-shares-repformer-list": (
        tiny_dict({**TB, "three_body_rcut": 3.5, "three_body_sel": 30}), "triclinic"),
    "gate-h2-res-residual": (
        tiny_dict(repformer={**RES, "attn2_has_gate": True, "update_h2": True}), "water"),
    "res-incr": (tiny_dict(repformer={"update_style": "res_incr", "update_h2": True}), "cluster"),
    "res-residual-const": (
        tiny_dict(repformer={**RES, "update_residual_init": "const", "g1_out_mlp": False}),
        "triclinic"),
    "old-architecture": (tiny_dict(repformer={"use_sqrt_nnei": False, "g1_out_conv": False,
                                              "g1_out_mlp": False}), "water"),
    "non-smooth": (tiny_dict(smooth=False, repformer={"update_h2": True,
                                                      "attn2_has_gate": True}), "triclinic"),
    "non-smooth-no-sqrt": (tiny_dict(smooth=False, repformer={"use_sqrt_nnei": False}),
                           "cluster"),
    "direct-dist": (tiny_dict(repformer={"direct_dist": True, "update_h2": True}), "water"),
    "exclude-hetero": (tiny_dict(exclude_types=[[0, 1]]), "water"),
    "exclude-homo-three-body": (tiny_dict(TB, exclude_types=[[1, 1]]), "triclinic"),
    "tebd-add-no-concat": (
        tiny_dict(add_tebd_to_repinit_out=True, concat_output_tebd=False), "cluster"),
    "identity-transform": (tiny_dict({"neuron": [4, 6], "axis_neuron": 2}), "water"),
    "gelu-silu": (tiny_dict({"activation_function": "gelu"},
                            {"activation_function": "silu"}), "triclinic"),
    "softplus-relu": (tiny_dict({"activation_function": "softplus"},
                                {"activation_function": "relu"}), "cluster"),
    "relu6-sigmoid": (tiny_dict({"activation_function": "relu6"},
                                {"activation_function": "sigmoid"}), "water"),
    "silut-custom-silu": (tiny_dict({"activation_function": "silut:2.0"},
                                    {"activation_function": "custom_silu"}), "triclinic"),
    "gelu-tf-linear": (tiny_dict({**TB, "activation_function": "gelu_tf"},
                                 {"activation_function": "linear"}), "cluster"),
    "resnet-dt": (tiny_dict({**TB, "resnet_dt": True, "neuron": [4, 8, 16],
                             "three_body_neuron": [3, 6, 12]}), "water"),
    "econf-bias": (tiny_dict(use_econf_tebd=True, use_tebd_bias=True), "triclinic"),
    "econf-no-bias": (tiny_dict(use_econf_tebd=True), "cluster"),
    "econf-other-elements": (tiny_dict(use_econf_tebd=True, type_map=["Cu", "Gd"]), "water"),
    "tebd-equals-ntypes": (tiny_dict({"tebd_dim": 2}, use_tebd_bias=True), "water"),
    "tebd-twice-ntypes": (tiny_dict({"tebd_dim": 4, "tebd_input_mode": "strip"},
                                    type_map=["O", "H"]), "triclinic"),
    "env-protection": (tiny_dict(TB, env_protection=0.1), "cluster"),
    "attention-off": (tiny_dict(repformer={"update_g1_has_attn": False,
                                           "update_g2_has_attn": False}), "water"),
    "one-layer": (tiny_dict(repformer={"nlayers": 1}), "triclinic"),
    "ln-frozen-eps": (tiny_dict(repformer={"trainable_ln": False, "ln_eps": 1e-3}), "cluster"),
    "terms-off": (tiny_dict(repformer={"update_g1_has_conv": False, "update_g1_has_drrd": False,
                                       "update_g2_has_g1g1": False, "g1_out_mlp": False}),
                  "water"),
    "inner-conv-no-grrg": (tiny_dict(repformer={"g1_out_conv": False,
                                                "update_g1_has_grrg": False}), "triclinic"),
    "davg-flags-untrainable": (tiny_dict({"set_davg_zero": False},
                                         {"set_davg_zero": False}, trainable=False), "cluster"),
    "seeded": (tiny_dict(seed=7), "water"),
    "concat-first-layer-skip": (tiny_dict({**TB, "neuron": [9, 18]}), "triclinic"),
    # attn2_hidden >= g2_dim: the q and k projections fold into one (attention._logits)
    "folded-qk-gate-h2": (tiny_dict(repformer={"attn2_hidden": 6, "attn2_has_gate": True,
                                               "update_h2": True}), "water"),
    "folded-qk-non-smooth": (tiny_dict(smooth=False, repformer={
        "attn2_hidden": 8, "attn2_nhead": 3, "update_h2": True}), "triclinic"),
}


def _config_dict(d: dict) -> dict:
    return d if d else tiny_dict()


def _compare(ours, ref, rtol: float) -> None:
    for name, a, b in zip(ours._fields, ours, ref, strict=True):
        a = np.asarray(a)
        assert a.shape == b.shape, name
        scale = max(np.abs(b).max(), 1e-300)
        err = np.abs(a - b).max() / scale
        assert err <= rtol, f"{name}: relative error {err:.3e} > {rtol:.0e}"


def run_pair(config: dc.DPA2Config, params: dict, coord, atype, box, nnei=None):
    """Our outputs and deepmd's on the same deepmd-built inputs."""
    ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, nnei or config.nsel)
    ref = deepmd_call(dc.dump_deepmd(config, params), ce, ae, nl, mp)
    return dc.descriptor(params, config, ce, ae, nl, mp), ref


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_matrix_float64(case):
    d, structure = MATRIX[case]
    config = dc.DPA2Config.from_dict(_config_dict(d))
    params = random_stats(dc.init_params(config, seed=3), seed=4)
    ours, ref = run_pair(config, params, *STRUCTURES[structure]())
    _compare(ours, ref, 1e-10)


@pytest.mark.parametrize("shim", ["torch", "jax"])
@pytest.mark.parametrize("case", sorted(MATRIX))
def test_matrix_through_the_shims(case, shim):
    """The whole matrix through dpa2_torch.DescrptDPA2 and dpa2_jax.jit_descriptor."""
    d, structure = MATRIX[case]
    config = dc.DPA2Config.from_dict(_config_dict(d))
    params = random_stats(dc.init_params(config, seed=3), seed=4)
    ce, ae, nl, mp = deepmd_inputs(*STRUCTURES[structure](), config.rcut, config.nsel)
    ref = deepmd_call(dc.dump_deepmd(config, params), ce, ae, nl, mp)
    _compare(SHIMS[shim](params, config, ce, ae, nl, mp), ref, 1e-10)


def test_every_option_is_flipped():
    """The matrix leaves no config field at its default only."""
    base = dc.DPA2Config.from_dict(tiny_dict())
    configs = [dc.DPA2Config.from_dict(_config_dict(d)) for d, _ in MATRIX.values()]
    seen = set()
    for c in configs:
        for section, ref in (("", base), ("repinit.", base.repinit),
                             ("repformer.", base.repformer)):
            obj = c if not section else getattr(c, section[:-1])
            for key, value in vars(obj).items():
                if value != vars(ref)[key] and not hasattr(value, "__dataclass_fields__"):
                    seen.add(section + key)
    never = {"ntypes", "rot_mat_use_sqrt_nnei", "precision",
             "repinit.rcut", "repinit.rcut_smth", "repinit.nsel", "repinit.tebd_dim",
             "repformer.rcut", "repformer.rcut_smth", "repformer.nsel", "repformer.g1_dim",
             "repformer.g2_dim", "repformer.axis_neuron", "repformer.attn1_hidden",
             "repformer.attn1_nhead", "repformer.attn2_hidden", "repformer.attn2_nhead",
             "repformer.update_residual"}
    fields = {k for k in vars(base)} | {"repinit." + k for k in vars(base.repinit)} | {
        "repformer." + k for k in vars(base.repformer)}
    missing = fields - seen - never - {"repinit", "repformer"}
    assert not missing, f"options never flipped in the parity matrix: {sorted(missing)}"


def test_econf_table_covers_every_element_deepmd_knows():
    """Our electron-configuration table equals deepmd-kit's on all its elements."""
    from deepmd.dpmodel.utils.type_embed import get_econf_tebd
    from deepmd.utils.econf_embd import type_map as periodic_table

    from dpa2_core.model.econf import ELEMENTS, econf_table

    assert set(periodic_table) <= set(ELEMENTS)
    theirs, dim = get_econf_tebd(list(periodic_table), precision="float64")
    ours = econf_table(list(periodic_table))
    assert ours.shape == (len(periodic_table), dim)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_matrix_float32(case):
    d, structure = MATRIX[case]
    config = dc.DPA2Config.from_dict({**_config_dict(d), "precision": "float32"})
    params = random_stats(dc.init_params(config, seed=3), seed=4)
    ours, ref = run_pair(config, params, *STRUCTURES[structure]())
    assert ours.descriptor.dtype == np.float64  # float64 in, float64 out (as deepmd)
    _compare(ours, ref, 1e-5)


def test_virtual_atoms():
    """Negative types: never neighbors, zero type embedding, neutral normalisation."""
    config = dc.DPA2Config.from_dict(tiny_dict(TB))
    params = random_stats(dc.init_params(config, seed=1), seed=2)
    coord, atype, box = STRUCTURES["triclinic"]()
    atype = atype.copy()
    atype[0, [3, 7]] = -1
    ours, ref = run_pair(config, params, coord, atype, box)
    _compare(ours, ref, 1e-10)


@pytest.mark.parametrize("nnei", [45, 90])
def test_list_width_differs_from_nsel(nnei):
    config = dc.DPA2Config.from_dict(tiny_dict(TB))
    params = random_stats(dc.init_params(config, seed=1), seed=2)
    ours, ref = run_pair(config, params, *STRUCTURES["water"](), nnei=nnei)
    _compare(ours, ref, 1e-10)


def test_deepmd_initialised_model_loads():
    """A descriptor built and initialised by deepmd-kit itself, read through load_deepmd."""
    from deepmd.dpmodel.descriptor.dpa2 import DescrptDPA2, RepformerArgs, RepinitArgs

    d = tiny_dict(TB)
    model = DescrptDPA2(2, RepinitArgs(**d["repinit"]),
                        RepformerArgs(**d["repformer"], **RES, update_h2=True),
                        type_map=["O", "H"], seed=11)
    serialized = model.serialize()
    config, params = dc.load_deepmd(serialized)
    params = random_stats(params, seed=5)
    ours, ref = run_pair(config, params, *STRUCTURES["water"]())
    _compare(ours, ref, 1e-10)
    assert deepmd_descriptor(serialized).get_dim_out() == config.dim_out


def test_float16_matches_deepmd_float16():
    """Half precision runs end to end; agreement is limited by float16 rounding order."""
    config = dc.DPA2Config.from_dict(tiny_dict(precision="float16"))
    params = random_stats(dc.init_params(config, seed=3), seed=4)
    ours, ref = run_pair(config, params, *STRUCTURES["triclinic"]())
    _compare(ours, ref, 2e-2)
