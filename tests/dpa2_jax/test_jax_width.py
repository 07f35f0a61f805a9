"""The static repformer width: jit_descriptor reads a bound on the slots in use from the
concrete inputs and its compiled program cuts the trailing slots no atom fills, with the
numbers of the uncut program; the bound is never short."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_stats, tiny_dict
from oracle import water_frames

import dpa2_core as dc
import dpa2_jax as dj
from dpa2_core.model.dpa2 import live_width


@pytest.fixture(scope="module")
def water():
    coord, atype, box = water_frames()
    cfg = dc.DPA2Config.from_dict(tiny_dict(repinit={"nsel": 80}, repformer={"nsel": 60}))
    params = random_stats(dc.init_params(cfg, seed=3), seed=4)
    ext = dc.build_neighbor_list(coord[0], atype[0], cfg, box[0])
    return cfg, params, ext


def test_the_cut_program_equals_the_uncut_one(water):
    cfg, params, (coord_ext, atype_ext, mapping, nlist) = water
    width = live_width(np, cfg, coord_ext, nlist)
    assert width < cfg.repformer.nsel and width % 8 == 0  # a cut really happens
    jp = dj.to_jax(params)
    cut = dj.jit_descriptor(jp, cfg, coord_ext, atype_ext, nlist, mapping)
    full = dj.jit_descriptor.jitted(jp, cfg, coord_ext, atype_ext, nlist, mapping)
    eager = dc.descriptor(params, cfg, coord_ext, atype_ext, nlist, mapping)
    for a, b, c in zip(cut, full, eager, strict=True):
        scale = max(float(np.abs(np.asarray(c)).max()), 1e-300)
        assert float(np.abs(np.asarray(a) - np.asarray(b)).max()) <= 1e-12 * scale
        assert float(np.abs(np.asarray(a) - np.asarray(c)).max()) <= 1e-12 * scale


def test_the_bound_covers_every_used_slot(water):
    cfg, _, (coord_ext, _, _, nlist) = water
    width = live_width(np, cfg, coord_ext, nlist)
    r = np.linalg.norm(coord_ext[0][np.maximum(nlist[0], 0)] - coord_ext[0][:nlist.shape[1],
                                                                              None], axis=-1)
    inside = (nlist[0] >= 0) & (r <= cfg.repformer.rcut)
    used = int(inside[:, : cfg.repformer.nsel].sum(-1).max())
    assert used < width <= cfg.repformer.nsel
    assert live_width(np, cfg, coord_ext, nlist, multiple=1) == used + 1
