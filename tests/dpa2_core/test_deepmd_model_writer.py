"""dpa2_core.io.save_deepmd_model: deepmd-kit's own whole-model file, written back.

Its dict equals, key for key and array for array, the file deepmd-kit wrote for the shared
model (``out_std`` aside: metadata deepmd-kit keeps but never applies to energies), it
reads back to the same model (deepmd-kit evaluating it: tests/dpa2_cli/test_freeze.py)."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import MODEL_DP

import dpa2_core as dc
from dpa2_core.io import save_deepmd_model
from dpa2_core.io.deepmd_files import read_deepmd_file
from dpa2_core.io.deepmd_model_writer import to_deepmd_model_dict


def _diff(a, b, path="") -> list[str]:
    if isinstance(a, dict):
        out = [f"{path}: keys {sorted(set(a) ^ set(b))}"] if set(a) != set(b) else []
        return out + [d for k in a if k in b for d in _diff(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in _diff(x, y, f"{path}[{i}]")]
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        same = a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
        return [] if same else [f"{path}: arrays differ"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.fixture(scope="module")
def shared():
    return dc.load_deepmd_model(MODEL_DP), read_deepmd_file(MODEL_DP)


def test_dict_equals_deepmd_kits_file(shared):
    model, theirs = shared
    std = theirs["model"]["@variables"]["out_std"].reshape(-1)
    ours = to_deepmd_model_dict(model, out_std=std)
    assert _diff(ours["model"], theirs["model"]) == []


@pytest.mark.parametrize("suffix", [".dp", ".yaml", ".json"])
def test_round_trip(shared, tmp_path, suffix):
    model, _ = shared
    if suffix != ".dp":  # text formats of a 600k-parameter model are slow: a tiny one
        from conftest import tiny_dict

        config = dc.DPA2Config.from_dict(tiny_dict())
        from dpa2_core.model.fitting import FittingConfig, init_fitting_params

        fit = FittingConfig(ntypes=2, dim_descrpt=config.dim_out, neuron=(4, 4))
        model = dc.DeepmdModel(config, dc.init_params(config, 1), fit,
                               init_fitting_params(fit, 2), np.array([-1.5, -0.5]))
    path = save_deepmd_model(model, tmp_path / f"m{suffix}")
    back = dc.load_deepmd_model(path)
    assert back.config == model.config and back.fitting_config == model.fitting_config
    np.testing.assert_array_equal(back.out_bias, model.out_bias)
    from dpa2_core.model.params import tree_paths

    for (p, a), (q, b) in zip(tree_paths(model.params), tree_paths(back.params), strict=True):
        assert p == q
        np.testing.assert_array_equal(a, b)
    for (p, a), (q, b) in zip(tree_paths(model.fitting_params), tree_paths(back.fitting_params),
                              strict=True):
        assert p == q
        np.testing.assert_array_equal(np.reshape(a, -1), np.reshape(b, -1))
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_bad_suffix_and_missing_type_map(shared, tmp_path):
    model, _ = shared
    with pytest.raises(ValueError, match="unknown suffix '.h5'"):
        save_deepmd_model(model, tmp_path / "m.h5")
    import dataclasses

    bare = model._replace(config=dataclasses.replace(model.config, type_map=None))
    with pytest.raises(ValueError, match="no type_map"):
        save_deepmd_model(bare, tmp_path / "m.dp")
