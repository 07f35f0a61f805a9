"""Our own file format and config dicts: no deepmd-kit needed (this file never imports it)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import random_stats, tiny_dict

import dpa2_core as dc
from dpa2_core.model.params import tree_paths


@pytest.fixture(scope="module")
def model():
    config = dc.DPA2Config.from_dict(tiny_dict(repinit={"use_three_body": True,
                                                         "three_body_sel": 20,
                                                         "three_body_rcut": 3.0},
                                               repformer={"update_style": "res_residual"}))
    return config, random_stats(dc.init_params(config, seed=2), seed=3)


def test_own_format_round_trip(tmp_path, model):
    config, params = model
    dc.save(tmp_path / "m.npz", config, params)
    config2, params2 = dc.load(tmp_path / "m.npz")
    assert config2 == config
    a, b = dict(tree_paths(params)), dict(tree_paths(params2))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=str(k))
        assert a[k].dtype == b[k].dtype


def test_own_format_loads_without_deepmd(tmp_path, model, monkeypatch):
    """Loading our file never touches deepmd-kit (imports of it would fail here)."""
    config, params = model
    dc.save(tmp_path / "m.npz", config, params)
    monkeypatch.setitem(sys.modules, "deepmd", None)
    config2, _ = dc.load(tmp_path / "m.npz")
    assert config2 == config


def test_config_dict_round_trip(model):
    config, _ = model
    assert dc.DPA2Config.from_dict(config.to_dict()) == config
    assert hash(dc.DPA2Config.from_dict(config.to_dict())) == hash(config)
    json.dumps(config.to_dict())
