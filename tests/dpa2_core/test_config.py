"""DPA2Config: deepmd-kit defaults, round trips and clear errors at construction."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import tiny_dict

import dpa2_core as dc


def test_defaults_match_deepmd_argcheck():
    """Every default equals the one deepmd-kit's input checker declares."""
    argcheck = pytest.importorskip("deepmd.utils.argcheck")
    cfg = dc.DPA2Config.from_dict(tiny_dict())
    sections = {
        argcheck.dpa2_repinit_args: dc.RepinitConfig,
        argcheck.dpa2_repformer_args: dc.RepformerConfig,
    }
    for fn, cls in sections.items():
        ours = {f.name: f.default for f in dataclasses.fields(cls)}
        for arg in fn():
            if arg.optional and arg.name in ours:
                default = arg.default if arg.default is not None else 1e-5  # ln_eps None -> 1e-5
                expected = tuple(default) if isinstance(default, list) else default
                assert ours[arg.name] == expected, arg.name
    top = {f.name: f.default for f in dataclasses.fields(dc.DPA2Config)}
    for arg in argcheck.descrpt_dpa2_args():
        if arg.optional and arg.name in top and arg.name not in ("precision", "seed"):
            expected = tuple(arg.default) if isinstance(arg.default, list) else arg.default
            assert top[arg.name] == expected, arg.name
    assert cfg.precision == "default" and cfg.dtype_name == "float64"


def test_round_trip_and_hash():
    cfg = dc.DPA2Config.from_dict(tiny_dict(exclude_types=[[0, 1]], seed=[1, 2]))
    again = dc.DPA2Config.from_dict(cfg.to_dict())
    assert again == cfg and hash(again) == hash(cfg)
    assert cfg.exclude_types == ((0, 1),) and cfg.seed == (1, 2)


def test_ntypes_from_type_map_and_alias():
    d = tiny_dict(repformer_add_type_ebd_to_seq=True)
    del d["ntypes"]
    cfg = dc.DPA2Config.from_dict(d)
    assert cfg.ntypes == 2 and cfg.add_tebd_to_repinit_out


def test_dim_out():
    cfg = dc.DPA2Config.from_dict(tiny_dict())
    assert cfg.dim_out == 12 + 4
    assert dc.DPA2Config.from_dict(tiny_dict(concat_output_tebd=False)).dim_out == 12


BAD = [
    (tiny_dict(bogus=1), "bogus"),
    (tiny_dict({"bogus": 1}), "repinit.bogus"),
    (tiny_dict(repformer={"nlayers": "3"}), "repformer.nlayers"),
    (tiny_dict(repformer={"g1_dim": -4}), "repformer.g1_dim"),
    (tiny_dict({"neuron": [4, 0]}), "repinit.neuron"),
    (tiny_dict({"activation_function": "swish9"}), "repinit.activation_function"),
    (tiny_dict(repformer={"activation_function": "tanhh"}), "repformer.activation_function"),
    (tiny_dict(precision="float128"), "precision"),
    (tiny_dict(repformer={"rcut": 5.0}), "repformer.rcut"),
    (tiny_dict(repformer={"nsel": 60}), "repformer.nsel"),
    (tiny_dict({"rcut_smth": 5.0}), "repinit.rcut_smth"),
    (tiny_dict(repformer={"update_style": "res_sum"}), "repformer.update_style"),
    (tiny_dict(repformer={"update_residual_init": "zeros"}), "repformer.update_residual_init"),
    (tiny_dict({"tebd_input_mode": "mix"}), "repinit.tebd_input_mode"),
    (tiny_dict(repformer={"update_g1_has_grrg": False, "update_g1_has_drrd": False}),
     "repformer.update_g1_has_grrg"),
    (tiny_dict({"use_three_body": True, "three_body_rcut": 7.0}), "repinit.three_body_rcut"),
    (tiny_dict({"use_three_body": True, "three_body_sel": 80}), "repinit.three_body_sel"),
    (tiny_dict({"use_three_body": True, "three_body_sel": 10, "three_body_rcut": 4.0}),
     "repinit.three_body_sel"),
    (tiny_dict(exclude_types=[[0, 2]]), "exclude_types"),
    (tiny_dict(exclude_types=[0, 1]), "exclude_types"),
    (tiny_dict(type_map=["O", "H", "C"]), "type_map"),
    (tiny_dict(use_econf_tebd=True, type_map=["O", "Xx"]), "type_map"),
    (tiny_dict(env_protection=-1.0), "env_protection"),
    (tiny_dict(smooth="yes"), "smooth"),
    (tiny_dict({"axis_neuron": 20}), "repinit.axis_neuron"),
    (tiny_dict(type="se_e2_a"), "type"),
]


@pytest.mark.parametrize(("d", "key"), BAD, ids=[k for _, k in BAD])
def test_invalid_config_names_key(d, key):
    with pytest.raises(ValueError, match=rf"^{key.replace('.', r'[.]')}"):
        dc.DPA2Config.from_dict(d)


def test_missing_required_key():
    d = tiny_dict()
    del d["repinit"]["rcut"]
    with pytest.raises(ValueError, match="repinit.rcut: required"):
        dc.DPA2Config.from_dict(d)


def test_frozen():
    cfg = dc.DPA2Config.from_dict(tiny_dict())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ntypes = 3
