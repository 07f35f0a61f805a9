"""Bad descriptor inputs raise ValueError naming the argument, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cluster, run_descriptor, tiny_dict

import dpa2_core as dc


@pytest.fixture(scope="module")
def setup():
    config = dc.DPA2Config.from_dict(tiny_dict())
    params = dc.init_params(config)
    coord, atype = cluster(12)
    d = np.linalg.norm(coord[0, :, None] - coord[0, None], axis=-1)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1)[:, : config.nsel]
    nlist = np.where(np.take_along_axis(d, order, 1) <= config.rcut, order, -1)[None]
    return config, params, coord, atype, nlist


def _call(setup, to_backend, run=dc.descriptor, **override):
    config, params, coord, atype, nlist = setup
    args = {"coord_ext": coord, "atype_ext": atype, "nlist": nlist, "mapping": None, **override}
    conv = {k: (None if v is None else to_backend(v)) for k, v in args.items()}
    p = dc.model.params.tree_map(lambda _, x: to_backend(x), params)
    return run(p, config, **conv)


def test_ok_without_mapping_when_no_ghosts(setup, to_backend):
    out = _call(setup, to_backend, run_descriptor)
    assert out.descriptor.shape == (1, 12, setup[0].dim_out)


def test_flat_coordinates_are_accepted(setup, to_backend):
    """coord_ext as (nf, nall*3), as deepmd-kit passes it, gives identical outputs."""
    coord = setup[2]
    flat = _call(setup, to_backend, run_descriptor, coord_ext=coord.reshape(1, -1))
    shaped = _call(setup, to_backend, run_descriptor)
    for a, b in zip(flat, shaped, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


CASES = {
    "coord rank": ({"coord_ext": np.zeros((12, 3))}, "coord_ext: expected shape"),
    "coord width": ({"coord_ext": np.zeros((1, 12, 2))}, "coord_ext: expected shape"),
    "integer coord": ({"coord_ext": np.zeros((1, 12, 3), dtype=np.int64)},
                      "coord_ext: must be a floating"),
    "float types": ({"atype_ext": np.zeros((1, 12))}, "atype_ext: must be an integer"),
    "types rank": ({"atype_ext": np.zeros(12, dtype=np.int64)}, "atype_ext: expected shape"),
    "type too large": ({"atype_ext": np.full((1, 12), 2)}, "atype_ext: types must be < ntypes"),
    "nlist past nall": ({"nlist": np.full((1, 12, 5), 12)}, r"nlist: entries must lie in"),
    "nlist below -1": ({"nlist": np.full((1, 12, 5), -2)}, r"nlist: entries must lie in"),
    "nlist rank": ({"nlist": np.zeros((12, 5), dtype=np.int64)}, "nlist: expected shape"),
    "frames mismatch": ({"nlist": np.zeros((2, 12, 5), dtype=np.int64)},
                        "nlist: expected shape"),
    "coord frames": ({"coord_ext": np.zeros((2, 12, 3))}, "coord_ext: expected shape"),
    "mapping length": ({"mapping": np.zeros((1, 11), dtype=np.int64)},
                       "mapping: expected shape"),
    "mapping past nloc": ({"mapping": np.full((1, 12), 12)}, r"mapping: entries must lie in"),
    "mapping below -1": ({"mapping": np.full((1, 12), -7)}, r"mapping: entries must lie in"),
    "mapping not identity": ({"mapping": np.zeros((1, 12), dtype=np.int64)},
                             "mapping: local atoms"),
    "nan coord": ({"coord_ext": np.full((1, 12, 3), np.nan)}, "coord_ext: contains NaN"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(setup, to_backend, case):
    override, message = CASES[case]
    with pytest.raises(ValueError, match=message):
        _call(setup, to_backend, **override)


def test_ghosts_need_mapping(setup, to_backend):
    config, params, coord, atype, nlist = setup
    coord_ext = np.concatenate([coord, coord + 20.0], axis=1)
    atype_ext = np.concatenate([atype, atype], axis=1)
    with pytest.raises(ValueError, match="mapping: required"):
        _call(setup, to_backend, coord_ext=coord_ext, atype_ext=atype_ext)


def test_params_dtype_must_match_precision(setup):
    config, params, coord, atype, nlist = setup
    p32 = dc.model.params.tree_map(lambda _, x: x.astype(np.float32), params)
    with pytest.raises(ValueError, match="params: dtype float32 does not match"):
        dc.descriptor(p32, config, coord, atype, nlist)
