"""Serialization: deepmd-kit dicts and files both ways, legacy versions, our own .npz."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from conftest import STRUCTURES, random_stats, tiny_dict
from test_parity import TB, _compare

import dpa2_core as dc
from dpa2_core.model.params import tree_paths

pytest.importorskip("deepmd", reason="deepmd-kit (the parity oracle) is not installed")

from oracle import MODEL_DP, deepmd_call, deepmd_descriptor, deepmd_inputs, water_frames  # noqa: E402


def _assert_same_params(a: dict, b: dict) -> None:
    pa, pb = dict(tree_paths(a)), dict(tree_paths(b))
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(np.asarray(pa[k]), np.asarray(pb[k]), err_msg=str(k))


@pytest.fixture(scope="module")
def model():
    config = dc.DPA2Config.from_dict(tiny_dict(TB, repformer={"update_style": "res_residual",
                                                              "update_h2": True}))
    return config, random_stats(dc.init_params(config, seed=2), seed=3)


def test_real_model_matches_deepmd():
    """The shared model trained by deepmd-kit, on two water frames of two systems."""
    config, params = dc.load_deepmd(MODEL_DP)
    assert config.repinit.use_three_body and config.repformer.nlayers == 3
    raw = dc.io.deepmd_files.read_deepmd_file(MODEL_DP)["model"]["descriptor"]
    for system in (0, 3):
        coord, atype, box = water_frames(system, (0, 5))
        ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, config.nsel)
        _compare(dc.descriptor(params, config, ce, ae, nl, mp),
                 deepmd_call(raw, ce, ae, nl, mp), 1e-10)


def test_ours_deepmd_ours_round_trip(model):
    config, params = model
    back = deepmd_descriptor(dc.dump_deepmd(config, params)).serialize()
    config2, params2 = dc.load_deepmd(back)
    assert config2 == config
    _assert_same_params(params, params2)


def test_deepmd_ours_deepmd_round_trip(model):
    config, params = model
    theirs = deepmd_descriptor(dc.dump_deepmd(config, params)).serialize()
    again = dc.dump_deepmd(*dc.load_deepmd(theirs))
    flat_a, flat_b = dict(tree_paths(theirs)), dict(tree_paths(again))
    assert flat_a.keys() == flat_b.keys()
    for k, v in flat_a.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, flat_b[k], err_msg=str(k))
        else:
            assert v == flat_b[k], k


@pytest.mark.parametrize("suffix", [".dp", ".yaml", ".json"])
def test_model_files(tmp_path, model, suffix):
    """Files as deepmd-kit writes them (json: its yaml array encoding as JSON)."""
    from deepmd.dpmodel.utils.serialization import save_dp_model

    config, params = model
    tree = {"model": {"type": "standard", "descriptor": dc.dump_deepmd(config, params)}}
    path = tmp_path / f"model{suffix}"
    if suffix == ".json":
        save_dp_model(str(tmp_path / "model.yaml"), tree)
        import yaml

        path.write_text(json.dumps(yaml.safe_load((tmp_path / "model.yaml").read_text())))
    else:
        save_dp_model(str(path), tree)
    config2, params2 = dc.load_deepmd(path)
    assert config2 == config
    _assert_same_params(params, params2)


def _relabel(d: dict, version: int) -> dict:
    d = copy.deepcopy(d)
    d["@version"] = version
    return d


def test_version2_forces_block_flags(model):
    """@version < 3: the block-level use_sqrt_nnei is forced off; only rot_mat changes."""
    config, params = model
    legacy = _relabel(dc.dump_deepmd(config, params), 2)
    config2, params2 = dc.load_deepmd(legacy)
    assert config2.rot_mat_use_sqrt_nnei is False
    coord, atype, box = STRUCTURES["water"]()
    ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, config.nsel)
    ours = dc.descriptor(params2, config2, ce, ae, nl, mp)
    _compare(ours, deepmd_call(legacy, ce, ae, nl, mp), 1e-10)
    new = dc.descriptor(params, config, ce, ae, nl, mp)
    np.testing.assert_array_equal(ours.descriptor, new.descriptor)
    assert not np.allclose(ours.rot_mat, new.rot_mat)
    again = dc.dump_deepmd(config2, params2)
    assert again["@version"] == 2
    _compare(ours, deepmd_call(again, ce, ae, nl, mp), 1e-10)


def test_version1_tebd_bias_and_layer_residuals():
    """@version 1: missing use_tebd_bias means True; v1 layers keep residuals at top level."""
    config = dc.DPA2Config.from_dict(tiny_dict(use_tebd_bias=True, repformer={
        "update_style": "res_residual", "update_residual": 0.2}))
    params = random_stats(dc.init_params(config, seed=4), seed=1)
    d = _relabel(dc.dump_deepmd(config, params), 1)
    del d["use_tebd_bias"]
    d["type_embedding"]["@version"] = 1
    del d["type_embedding"]["use_tebd_bias"]
    for layer in d["repformers_variable"]["repformer_layers"]:
        layer["@version"] = 1
        layer.update(layer.pop("@variables"))
    config2, params2 = dc.load_deepmd(d)
    assert config2.use_tebd_bias
    coord, atype, box = STRUCTURES["cluster"]()
    ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, config.nsel)
    _compare(dc.descriptor(params2, config2, ce, ae, nl, mp), deepmd_call(d, ce, ae, nl, mp),
             1e-10)


def test_version2_layers_without_flags_take_the_layer_defaults():
    """A legacy layer dict that lacks use_sqrt_nnei / g1_out_conv (g1_out_mlp it requires):
    deepmd builds the layer with its constructor defaults (True), the block's forced off."""
    config = dc.DPA2Config.from_dict(tiny_dict())
    params = random_stats(dc.init_params(config, seed=5), seed=6)
    d = _relabel(dc.dump_deepmd(config, params), 2)
    for layer in d["repformers_variable"]["repformer_layers"]:
        for key in ("use_sqrt_nnei", "g1_out_conv"):
            del layer[key]
    config2, params2 = dc.load_deepmd(d)
    coord, atype, box = STRUCTURES["water"]()
    ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, config.nsel)
    _compare(dc.descriptor(params2, config2, ce, ae, nl, mp), deepmd_call(d, ce, ae, nl, mp),
             1e-10)


def test_version4_compressed_is_evaluated_uncompressed(model):
    config, params = model
    d = _relabel(dc.dump_deepmd(config, params), 4)
    d["repinit_variable"]["compress"] = {"@variables": {"type_embd_data": np.zeros((9, 8))},
                                         "geo_compress": False}
    config2, params2 = dc.load_deepmd(d)
    _assert_same_params(params, params2)
    coord, atype, box = STRUCTURES["triclinic"]()
    ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, config.nsel)
    _compare(dc.descriptor(params2, config2, ce, ae, nl, mp), deepmd_call(d, ce, ae, nl, mp),
             1e-10)


def test_future_version_rejected(model):
    with pytest.raises(ValueError, match="@version=5"):
        dc.load_deepmd(_relabel(dc.dump_deepmd(*model), 5))


def test_loader_errors(tmp_path, model):
    config, params = model
    with pytest.raises(FileNotFoundError, match="no such file"):
        dc.load_deepmd(tmp_path / "missing.dp")
    (tmp_path / "x.txt").write_text("{}")
    with pytest.raises(ValueError, match="unknown extension"):
        dc.load_deepmd(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="no DPA-2 descriptor"):
        dc.load_deepmd({"model": {"descriptor": {"type": "se_e2_a"}}})
    bad = dc.dump_deepmd(config, params)
    bad["repformers_variable"]["@variables"]["davg"] = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"params\[repformer/davg\]: expected shape"):
        dc.load_deepmd(bad)
    bad = dc.dump_deepmd(config, params)
    bad["repformers_variable"]["repformer_layers"][0]["update_h2"] = False
    with pytest.raises(ValueError, match=r"repformer_layers\[0\]\.update_h2"):
        dc.load_deepmd(bad)
