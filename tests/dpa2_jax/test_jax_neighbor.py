"""The jit neighbor list vs deepmd-kit's builder and the host builder; overflow; skin."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import STRUCTURES, assert_outputs_close, random_stats, tiny_dict
from oracle import deepmd_inputs

import dpa2_core as dc
from dpa2_jax import neighbor

CONFIG = dc.DPA2Config.from_dict(tiny_dict({"nsel": 80}, repformer={"nlayers": 1}))
update = jax.jit(neighbor.update, static_argnums=0)
extend = jax.jit(neighbor.descriptor_inputs, static_argnums=0)


def _frame(name: str):
    coord, atype, box = STRUCTURES[name]()
    return coord[0], atype[0], None if box is None else box[0]


def _pairs(coord_ext, mapping, nlist, nloc):
    """Neighbor set of every atom as (local index, rounded displacement) pairs."""
    out = []
    for i in range(nloc):
        js = nlist[i][nlist[i] >= 0]
        d = np.round(coord_ext[js] - coord_ext[i], 6)
        out.append(sorted(zip(mapping[js].tolist(), map(tuple, d.tolist()), strict=True)))
    return out


@pytest.mark.parametrize("name", ["water", "triclinic", "cluster"])
def test_same_neighbors_and_descriptor_as_deepmd(name):
    coord, atype, box = _frame(name)
    spec, nbrs = neighbor.allocate(coord, atype, CONFIG.rcut, CONFIG.nsel, box, skin=0.4)
    assert not bool(nbrs.did_overflow)
    ours = [np.asarray(x) for x in extend(spec, nbrs, coord, atype)]
    ref = deepmd_inputs(coord[None], atype[None], None if box is None else box[None],
                        CONFIG.rcut, CONFIG.nsel)
    ce, ae, nl, mp = (x[0] for x in ref)
    nloc = coord.shape[0]
    assert _pairs(ours[0], ours[2], ours[3], nloc) == _pairs(ce, mp, nl, nloc)
    params = random_stats(dc.init_params(CONFIG, seed=2), seed=3)
    # the jit path vs the numpy core is tested elsewhere: the core keeps this test compile-free
    got = dc.descriptor(params, CONFIG, *(x[None] for x in (ours[0], ours[1], ours[3], ours[2])))
    want = dc.descriptor(params, CONFIG, ce[None], ae[None], nl[None], mp[None])
    assert_outputs_close(got, want, 1e-12)


def test_matches_host_builder():
    """dpa2_core.build_neighbor_list gives the same neighbor sets."""
    build = pytest.importorskip("dpa2_core.neighbors.builder").build_neighbor_list
    coord, atype, box = _frame("water")
    spec, nbrs = neighbor.allocate(coord, atype, CONFIG.rcut, CONFIG.nsel, box)
    ours = [np.asarray(x) for x in extend(spec, nbrs, coord, atype)]
    ce, ae, mp, nl = (np.asarray(x)[0] for x in build(coord[None], atype[None], CONFIG,
                                                       box[None]))
    nloc = coord.shape[0]
    assert _pairs(ours[0], ours[2], ours[3], nloc) == _pairs(ce.reshape(-1, 3), mp, nl, nloc)


def test_overflow_flag_is_raised_and_sticky():
    coord, atype, box = _frame("water")
    spec, nbrs = neighbor.allocate(coord, atype, CONFIG.rcut, CONFIG.nsel, box, skin=0.5,
                                   capacity=40)
    assert bool(nbrs.did_overflow) and int(nbrs.max_count) > 40
    spec, nbrs = neighbor.allocate(coord, atype, CONFIG.rcut, CONFIG.nsel, box, skin=0.5)
    assert not bool(nbrs.did_overflow) and spec.capacity >= int(nbrs.max_count)
    squeezed = coord[0] + 0.6 * (coord - coord[0])  # denser around atom 0: too many candidates
    nbrs = update(spec, nbrs, squeezed, atype)
    assert bool(nbrs.did_overflow)
    nbrs = update(spec, nbrs, coord, atype)  # the flag stays up until reallocation
    assert bool(nbrs.did_overflow)


def test_skin_small_moves_reuse_the_list_and_stay_exact():
    """Moves below skin/2 keep the candidate list (no rebuild) and still give deepmd's
    neighbors (re-sorted, cut at rcut); a larger move triggers a rebuild."""
    coord, atype, box = _frame("triclinic")
    spec, nbrs = neighbor.allocate(coord, atype, CONFIG.rcut, CONFIG.nsel, box, skin=0.6)
    rng = np.random.default_rng(0)
    moved = coord + rng.uniform(-0.17, 0.17, coord.shape)  # |d| < 0.3 = skin/2
    moved[0] = coord[0] - 0.17 * box[0] / np.linalg.norm(box[0])  # may cross the boundary
    assert not bool(neighbor.needs_rebuild(spec, nbrs, moved))
    kept = update(spec, nbrs, moved, atype)
    np.testing.assert_array_equal(np.asarray(kept.idx), np.asarray(nbrs.idx))
    ours = [np.asarray(x) for x in extend(spec, kept, moved, atype)]
    ce, ae, nl, mp = (x[0] for x in deepmd_inputs(moved[None], atype[None], box[None],
                                                  CONFIG.rcut, CONFIG.nsel))
    nloc = coord.shape[0]
    assert _pairs(ours[0], ours[2], ours[3], nloc) == _pairs(ce, mp, nl, nloc)
    far = moved + np.array([0.5, 0.0, 0.0])
    assert bool(neighbor.needs_rebuild(spec, kept, far))
    rebuilt = update(spec, kept, far, atype)
    np.testing.assert_allclose(np.asarray(rebuilt.reference), far)


def test_virtual_atoms_are_never_neighbors():
    coord, atype, box = _frame("triclinic")
    atype = atype.copy()
    atype[[2, 5]] = -1
    spec, nbrs = neighbor.allocate(coord, atype, CONFIG.rcut, CONFIG.nsel, box)
    _, atype_ext, _, nlist = (np.asarray(x) for x in extend(spec, nbrs, coord, atype))
    assert (nlist[[2, 5]] == -1).all()
    real = nlist[nlist >= 0]
    assert (atype_ext[real] >= 0).all()


def test_image_shifts_follow_deepmd_order():
    box = np.diag([10.0, 10.0, 10.0])
    shifts = neighbor.image_shifts(box, 6.0)
    assert shifts[0] == (0, 0, 0) and len(shifts) == 27
    norms = [np.linalg.norm(s) for s in shifts]
    assert norms == sorted(norms)
    assert neighbor.image_shifts(None, 6.0) == ((0, 0, 0),)
    assert len(neighbor.image_shifts(np.diag([4.0, 10.0, 10.0]), 6.0)) == 45


@pytest.mark.parametrize("box, match", [
    (np.diag([4.0, 0.0, 5.0]), "box: frame 0 is degenerate"),
    (np.array([[5.0, 0, 0], [0, 5.0, 0], [5.0, 5.0, 1e-3]]), "box: frame 0 is too thin"),
])
def test_bad_boxes_are_refused_by_name(box, match):
    with pytest.raises(ValueError, match=match):
        neighbor.image_shifts(box, 6.0)
