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
from dpa2_core import _compat
from dpa2_core.model.dpa2 import live_width, live_widths


@pytest.fixture(scope="module")
def water():
    coord, atype, box = water_frames()
    cfg = dc.DPA2Config.from_dict(tiny_dict(repinit={"nsel": 80}, repformer={"nsel": 60}))
    params = random_stats(dc.init_params(cfg, seed=3), seed=4)
    ext = dc.build_neighbor_list(coord[0], atype[0], cfg, box[0])
    return cfg, params, ext


def _assert_cut_equals_uncut(cfg, params, ext, blocks: int = 1) -> None:
    """jit_descriptor (static bounds; ``blocks`` sorted blocks of centres) equals the uncut
    jitted program and the eager core."""
    coord_ext, atype_ext, mapping, nlist = ext
    jp = dj.to_jax(params)
    cut = dj.jit_descriptor(jp, cfg, coord_ext, atype_ext, nlist, mapping, blocks=blocks)
    full = dj.jit_descriptor.jitted(jp, cfg, coord_ext, atype_ext, nlist, mapping)
    eager = dc.descriptor(params, cfg, coord_ext, atype_ext, nlist, mapping)
    for a, b, c in zip(cut, full, eager, strict=True):
        scale = max(float(np.abs(np.asarray(c)).max()), 1e-300)
        assert float(np.abs(np.asarray(a) - np.asarray(b)).max()) <= 1e-12 * scale
        assert float(np.abs(np.asarray(a) - np.asarray(c)).max()) <= 1e-12 * scale


def test_the_cut_program_equals_the_uncut_one(water):
    cfg, params, (coord_ext, atype_ext, mapping, nlist) = water
    width = live_width(np, cfg, coord_ext, nlist)
    assert width < cfg.repformer.nsel and width % 8 == 0  # a cut really happens
    _assert_cut_equals_uncut(cfg, params, (coord_ext, atype_ext, mapping, nlist))


def test_the_bound_covers_every_used_slot(water):
    cfg, _, (coord_ext, _, _, nlist) = water
    width = live_width(np, cfg, coord_ext, nlist)
    r = np.linalg.norm(coord_ext[0][np.maximum(nlist[0], 0)] - coord_ext[0][:nlist.shape[1],
                                                                              None], axis=-1)
    inside = (nlist[0] >= 0) & (r <= cfg.repformer.rcut)
    used = int(inside[:, : cfg.repformer.nsel].sum(-1).max())
    assert used < width <= cfg.repformer.nsel
    assert live_width(np, cfg, coord_ext, nlist, multiple=1) == used + 1


@pytest.fixture(scope="module")
def three_body_water():
    coord, atype, box = water_frames()
    cfg = dc.DPA2Config.from_dict(tiny_dict(
        repinit={"nsel": 80, "use_three_body": True, "three_body_sel": 40,
                 "three_body_rcut": 3.5, "three_body_rcut_smth": 1.0,
                 "three_body_neuron": [2, 4]}, repformer={"nsel": 60}))
    return cfg, dc.init_params(cfg, seed=5), dc.build_neighbor_list(coord[0], atype[0], cfg,
                                                                     box[0])


def _silent(params: dict, seed: int) -> dict:
    """Random statistics, but davg zero in repinit and the three-body block (set_davg_zero)."""
    out = random_stats(params, seed)
    for block in ("repinit", "three_body"):
        out[block] = {**out[block], "davg": np.zeros_like(out[block]["davg"])}
    return out


@pytest.mark.parametrize("silent", [True, False])
def test_repinit_and_three_body_are_cut_only_when_silent(three_body_water, silent):
    cfg, params, (coord_ext, atype_ext, mapping, nlist) = three_body_water
    params = _silent(params, 6) if silent else random_stats(params, 6)
    widths = live_widths(np, cfg, params, coord_ext, nlist)
    ri = cfg.repinit
    if silent:
        assert widths.repinit < ri.nsel and widths.three_body < ri.three_body_sel
    else:  # a residual with an angular part: no slot is silent, nothing is cut
        assert (widths.repinit, widths.three_body) == (ri.nsel, ri.three_body_sel)
    _assert_cut_equals_uncut(cfg, params, (coord_ext, atype_ext, mapping, nlist))


def test_live_widths_refuses_traced_params(three_body_water):
    import jax

    cfg, params, (coord_ext, _, _, nlist) = three_body_water

    def traced(p):
        return live_widths(np, cfg, p, coord_ext, nlist).repinit

    with pytest.raises(ValueError, match="concrete params"):
        jax.jit(traced)(dj.to_jax(params))


@pytest.mark.parametrize("mode", ["concat", "strip"])
def test_sorted_silent_blocks_of_repinit_and_three_body_give_the_uncut_numbers(mode):
    """davg zero in repinit and the three-body block (set_davg_zero): eager calls cut each
    sorted block to its own width; the jitted program cuts nothing."""
    coord, atype, box = water_frames()
    cfg = dc.DPA2Config.from_dict(tiny_dict(
        repinit={"nsel": 80, "use_three_body": True, "three_body_sel": 40,
                 "three_body_rcut": 3.5, "three_body_rcut_smth": 1.0,
                 "three_body_neuron": [2, 4], "tebd_input_mode": mode},
        repformer={"nsel": 60}))
    params = random_stats(dc.init_params(cfg, seed=8), seed=9)
    for block in ("repinit", "three_body"):
        params[block] = {**params[block], "davg": np.zeros_like(params[block]["davg"])}
    coord_ext, atype_ext, mapping, nlist = dc.build_neighbor_list(coord[0], atype[0], cfg,
                                                                  box[0])
    old = _compat.BLOCK_ELEMENTS, _compat.MIN_BLOCK_ROWS
    _compat.BLOCK_ELEMENTS, _compat.MIN_BLOCK_ROWS = 2048, 4  # several sorted blocks
    try:
        cut = dc.descriptor(params, cfg, coord_ext, atype_ext, nlist, mapping)
    finally:
        _compat.BLOCK_ELEMENTS, _compat.MIN_BLOCK_ROWS = old
    full = dj.jit_descriptor.jitted(dj.to_jax(params), cfg, coord_ext, atype_ext, nlist,
                                    mapping)
    for a, b in zip(cut, full, strict=True):
        b = np.asarray(b)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * float(np.abs(b).max()))


@pytest.mark.parametrize("silent", [True, False])
def test_static_sorted_blocks_give_the_uncut_numbers_and_forces(three_body_water, silent):
    """live_widths(blocks=3): each block type runs its centres sorted into static blocks
    under jit (repinit and three-body only when silent); numbers and forces are those of
    the uncut program."""
    import jax
    import jax.numpy as jnp

    cfg, params, (coord_ext, atype_ext, mapping, nlist) = three_body_water
    params = _silent(params, 7) if silent else random_stats(params, 7)
    widths = live_widths(np, cfg, params, coord_ext, nlist, multiple=1, blocks=3)
    assert isinstance(widths.repformer, tuple) and len(widths.repformer) > 1
    assert isinstance(widths.three_body, tuple) == silent
    _assert_cut_equals_uncut(cfg, params, (coord_ext, atype_ext, mapping, nlist), blocks=3)
    jp = dj.to_jax(params)

    def energy(c, slot_widths):
        out = dj.descriptor(jp, cfg, c, atype_ext, nlist, mapping, slot_widths=slot_widths)
        return sum(jnp.sum(x * x) for x in out[:3])

    grad = jax.jit(jax.grad(energy), static_argnums=1)
    cut, full = (np.asarray(grad(jnp.asarray(coord_ext), w)) for w in (widths, None))
    np.testing.assert_allclose(cut, full, rtol=0, atol=1e-12 * float(np.abs(full).max()))
