"""change_type_map (§13): deepmd-kit parity, relabelling invariance, new types, errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import neighbor_inputs, random_stats, tiny_dict
from oracle import water_frames

import dpa2_core as dc
from dpa2_core._compat import to_numpy
from dpa2_core.model.params import tree_map, tree_paths

TB = {"use_three_body": True, "three_body_sel": 20, "three_body_rcut": 3.0,
      "three_body_rcut_smth": 0.8, "set_davg_zero": False}
CASES = {
    "onehot-tebd8": tiny_dict({**TB, "tebd_dim": 8}),
    "onehot-tebd-eq-ntypes": tiny_dict({**TB, "tebd_dim": 2}, use_tebd_bias=True),
    "onehot-tebd-twice-ntypes": tiny_dict({**TB, "tebd_dim": 4, "tebd_input_mode": "strip"}),
    "onehot-tebd-eq-new-ntypes": tiny_dict({**TB, "tebd_dim": 3}),
    "econf": tiny_dict(TB, use_econf_tebd=True, use_tebd_bias=True),
}
NEW = ["H", "C", "O"]
RELABEL = np.array([2, 0])  # old O=0 -> 2, old H=1 -> 0
TE_W = ("type_embedding", 0, "w")


def setup_model(case: str, exclude=((1, 1), (0, 1))):
    config = dc.DPA2Config.from_dict({**CASES[case], "exclude_types": [list(p) for p in exclude]})
    return config, random_stats(dc.init_params(config, seed=5), seed=6)


@pytest.fixture(scope="module")
def water():
    config = dc.DPA2Config.from_dict(tiny_dict())
    coord, atype, box = water_frames(0, (0,))
    coord_ext, atype_ext, mapping, nlist = neighbor_inputs(coord, atype, config, box)
    return np.asarray(coord_ext), np.asarray(atype_ext), np.asarray(nlist), np.asarray(mapping)


def relabelled(inputs):
    coord_ext, atype_ext, nlist, mapping = inputs
    return coord_ext, RELABEL[atype_ext], nlist, mapping


def deepmd_changed(config, params, new, stats_from=None):
    pytest.importorskip("deepmd", reason="deepmd-kit (the parity oracle) is not installed")
    from oracle import deepmd_descriptor

    model = deepmd_descriptor(dc.dump_deepmd(config, params))
    with_stat = None if stats_from is None else deepmd_descriptor(dc.dump_deepmd(*stats_from))
    model.change_type_map(new, model_with_new_type_stat=with_stat)
    return model.serialize()


def assert_params_equal(ours: dict, ref: dict, skip_rows: dict | None = None) -> None:
    """Every leaf equal (to 1e-15); ``skip_rows[path]`` rows are not compared."""
    a, b = dict(tree_paths(ours)), dict(tree_paths(ref))
    assert a.keys() == b.keys()
    for path, x in a.items():
        x, y = to_numpy(x), to_numpy(b[path])
        assert x.shape == y.shape, path
        keep = [i for i in range(x.shape[0]) if i not in (skip_rows or {}).get(path, ())]
        np.testing.assert_allclose(x[keep], y[keep], rtol=0, atol=1e-15, err_msg=str(path))


def assert_outputs_close(a, b, rtol: float) -> None:
    for name, x, y in zip(a._fields, a, b, strict=True):
        x, y = to_numpy(x), to_numpy(y)
        scale = max(np.abs(y).max(), 1e-300)
        assert np.abs(x - y).max() <= rtol * scale, name


@pytest.mark.parametrize("case", sorted(CASES))
def test_parity_with_deepmd_and_relabelling(case, water):
    config, params = setup_model(case)
    new_config, new_params = dc.change_type_map(params, config, NEW, seed=0)
    assert new_config.type_map == tuple(NEW) and new_config.ntypes == 3
    assert new_config.exclude_types == ((0, 0), (2, 0))
    ref_dict = deepmd_changed(config, params, NEW)
    ref_config, ref_params = dc.load_deepmd(ref_dict)
    assert ref_config == new_config
    onehot = not config.use_econf_tebd
    assert_params_equal(new_params, ref_params, {TE_W: (1,)} if onehot else None)
    for block in ("repinit", "three_body", "repformer"):  # C: default statistics
        np.testing.assert_array_equal(new_params[block]["davg"][1], 0.0)
        np.testing.assert_array_equal(new_params[block]["dstd"][1], 1.0)
    # the same physics: the old model on O/H equals the new model on relabelled O/H
    old_out = dc.descriptor(params, config, *water)
    new_out = dc.descriptor(new_params, new_config, *relabelled(water))
    assert_outputs_close(new_out, old_out, 1e-12)
    from oracle import deepmd_call

    assert_outputs_close(new_out, deepmd_call(ref_dict, *relabelled(water)), 1e-10)


def test_drop_and_reorder_matches_deepmd():
    config, params = setup_model("onehot-tebd-eq-ntypes")
    new_config, new_params = dc.change_type_map(params, config, ["H"])
    assert new_config.exclude_types == ((0, 0),) and new_config.ntypes == 1
    ref_config, ref_params = dc.load_deepmd(deepmd_changed(config, params, ["H"]))
    assert ref_config == new_config
    assert_params_equal(new_params, ref_params)


def test_stats_from_model_with_new_types():
    config, params = setup_model("onehot-tebd8")
    donor_config = dc.DPA2Config.from_dict({**CASES["onehot-tebd8"], "type_map": NEW,
                                            "ntypes": 3})
    donor_params = random_stats(dc.init_params(donor_config, seed=1), seed=9)
    new_config, new_params = dc.change_type_map(params, config, NEW,
                                                stats_from=(donor_config, donor_params))
    for block in ("repinit", "three_body", "repformer"):
        for key in ("davg", "dstd"):
            np.testing.assert_array_equal(new_params[block][key][1], donor_params[block][key][1])
            np.testing.assert_array_equal(new_params[block][key][0], params[block][key][1])
    ref = deepmd_changed(config, params, NEW, stats_from=(donor_config, donor_params))
    assert_params_equal(new_params, dc.load_deepmd(ref)[1], {TE_W: (1,)})
    # looked up by name: a donor with another order gives the same rows
    shuffled = dc.change_type_map(donor_params, donor_config, ["O", "C", "H"])
    again = dc.change_type_map(params, config, NEW, stats_from=shuffled)[1]
    assert_params_equal(again, new_params, {TE_W: (1,)})


def test_seeded_rows_round_trip_and_no_mutation():
    config, params = setup_model("onehot-tebd8")
    before = {p: np.copy(x) for p, x in tree_paths(params)}
    a = dc.change_type_map(params, config, NEW, seed=3)[1]
    b = dc.change_type_map(params, config, NEW, seed=3)[1]
    c = dc.change_type_map(params, config, NEW, seed=4)[1]
    assert_params_equal(a, b)
    assert not np.array_equal(a["type_embedding"][0]["w"][1], c["type_embedding"][0]["w"][1])
    assert np.all((a["type_embedding"][0]["w"][1] >= 0) & (a["type_embedding"][0]["w"][1] < 1))
    back_config, back = dc.change_type_map(*dc.change_type_map(params, config, ["H", "O"])[::-1],
                                           ["O", "H"])
    assert back_config == config
    assert_params_equal(back, params)
    for path, x in tree_paths(params):
        np.testing.assert_array_equal(x, before[path])


def test_torch_params_stay_torch():
    torch = pytest.importorskip("torch")
    config, params = setup_model("onehot-tebd-eq-ntypes")
    tparams = tree_map(lambda _, x: torch.from_numpy(x), params)
    _, out = dc.change_type_map(tparams, config, NEW, seed=0)
    assert all(isinstance(x, torch.Tensor) for _, x in tree_paths(out))
    assert_params_equal(out, dc.change_type_map(params, config, NEW, seed=0)[1])


ERRORS = {
    "no type_map": ({"type_map": None}, NEW, "config.type_map"),
    "duplicates": ({}, ["H", "H"], "duplicate"),
    "not strings": ({}, ["H", 1], "must be a list of type names"),
    "a string": ({}, "HO", "must be a list of type names"),
    "empty": ({}, [], "at least one type"),
    "econf non-element": ({"use_econf_tebd": True}, ["H", "Xx"], "type_map"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors(case):
    top, new, message = ERRORS[case]
    config = dc.DPA2Config.from_dict(tiny_dict(**top))
    with pytest.raises(ValueError, match=message):
        dc.change_type_map(dc.init_params(config), config, new)


def test_stats_from_without_the_type():
    config, params = setup_model("onehot-tebd8")
    with pytest.raises(ValueError, match="stats_from: type 'C'"):
        dc.change_type_map(params, config, NEW, stats_from=(config, params))


def test_stats_from_must_be_a_pair():
    config, params = setup_model("onehot-tebd8")
    with pytest.raises(ValueError, match="stats_from: must be a"):
        dc.change_type_map(params, config, NEW, stats_from=(params, config))
