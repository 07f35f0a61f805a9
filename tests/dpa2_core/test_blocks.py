"""Centres sorted into blocks by the slots they use (``_compat.width_blocks``): every centre
in exactly one block, each block as wide as its widest row and within the element budget;
the repformer run on such blocks gives the numbers (and forces) of the uncut block."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
from conftest import random_stats, tiny_dict
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import water_frames

import dpa2_core as dc
from dpa2_core import _compat
from dpa2_core.model.dpa2 import SlotWidths, grow_widths


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), nf=st.integers(1, 3), nloc=st.integers(1, 90),
       nslot=st.integers(1, 40), budget=st.sampled_from([1, 64, 512, 1 << 20]))
def test_width_blocks_partition_the_centres(seed, nf, nloc, nslot, budget):
    rng = np.random.default_rng(seed)
    valid = rng.random((nf, nloc, nslot)) < rng.random((1, nloc, 1))  # holes allowed
    with _budget(budget):
        blocks = _compat.width_blocks(np, valid, lambda w: 3 * w)
    rows = np.concatenate([r for r, _ in blocks])
    assert sorted(rows.tolist()) == list(range(nloc))
    rank = np.arange(1, nslot + 1)
    used = np.where(valid, rank, 0).max(axis=(0, 2))  # last used slot per centre, any frame
    for r, width in blocks:
        assert width == max(int(used[r].max()), 1)
        assert len(r) == 1 or len(r) * 3 * width <= budget
    widths = [used[r].max() for r, _ in blocks]
    assert widths == sorted(widths)
    if budget == 1 << 20:  # no split forced by the budget: no block of a few centres
        assert len(blocks) == 1 or min(len(r) for r, _ in blocks) >= _compat.MIN_BLOCK_ROWS


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), nloc=st.integers(1, 300), nsel=st.integers(1, 60),
       multiple=st.sampled_from([1, 2, 4, 8]), blocks=st.integers(1, 5))
def test_static_plan_partitions_the_sorted_centres_with_covering_widths(
        seed, nloc, nsel, multiple, blocks):
    used = sorted(np.random.default_rng(seed).integers(0, nsel + 1, nloc).tolist())
    plan = _compat.static_plan(used, nsel, multiple, blocks)
    assert sum(n for n, _ in plan) == nloc and all(n > 0 for n, _ in plan)
    assert len(plan) <= max(1, min(blocks, nloc // _compat.MIN_BLOCK_ROWS))
    widths = [w for _, w in plan]
    assert widths == sorted(set(widths))  # ascending, equal neighbours merged
    start = 0
    for n, width in plan:
        need = used[start + n - 1] + 1  # the widest row of the block plus the one-slot slack
        assert width == min(nsel, -(-need // multiple) * multiple)
        start += n


def test_a_plan_gives_the_blocks_of_the_sorted_centres():
    rng = np.random.default_rng(0)
    valid = np.arange(12)[None, None, :] < rng.integers(0, 13, (2, 70, 1))
    used = np.where(valid, np.arange(1, 13), 0).max(axis=(0, 2))
    plan = _compat.static_plan(sorted(used.tolist()), 12, 1, 2)
    blocks = _compat.width_blocks(np, valid, None, plan)
    assert len(blocks) == len(plan) == 2
    rows = np.concatenate([r for r, _ in blocks])
    assert sorted(rows.tolist()) == list(range(70))
    for (r, width), (n, w) in zip(blocks, plan, strict=True):
        assert len(r) == n and width == w
        assert used[r].max() < width or width == used[r].max() == 12  # capped at nsel
    assert _compat.width_blocks(np, valid, None, ((70, 5),)) == [(None, 5)]


@contextmanager
def _budget(elements: int, min_rows: int = _compat.MIN_BLOCK_ROWS):
    """``BLOCK_ELEMENTS`` and ``MIN_BLOCK_ROWS`` set for the block, restored afterwards."""
    old = _compat.BLOCK_ELEMENTS, _compat.MIN_BLOCK_ROWS
    _compat.BLOCK_ELEMENTS, _compat.MIN_BLOCK_ROWS = elements, min_rows
    try:
        yield
    finally:
        _compat.BLOCK_ELEMENTS, _compat.MIN_BLOCK_ROWS = old


@pytest.fixture(scope="module")
def water():
    coord, atype, box = water_frames()
    cfg = dc.DPA2Config.from_dict(tiny_dict(repinit={"nsel": 80}, repformer={"nsel": 60}))
    params = random_stats(dc.init_params(cfg, seed=3), seed=4)
    return cfg, params, dc.build_neighbor_list(coord[0], atype[0], cfg, box[0])


@pytest.mark.parametrize("budget", [1 << 20, 4096, 1])
def test_sorted_blocks_give_the_uncut_numbers(water, budget):
    cfg, params, (coord_ext, atype_ext, mapping, nlist) = water
    nsel = cfg.repformer.nsel
    full = dc.descriptor(params, cfg, coord_ext, atype_ext, nlist, mapping,
                         repformer_width=nsel)
    with _budget(budget, 4):
        blocks = _compat.width_blocks(np, _repformer_valid(cfg, coord_ext, nlist), lambda w: w)
        cut = dc.descriptor(params, cfg, coord_ext, atype_ext, nlist, mapping)
    assert min(w for _, w in blocks) < nsel  # a cut happens
    assert len(blocks) > 1 or budget == 1 << 20  # and several blocks
    for a, b in zip(cut, full, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * float(np.abs(b).max()))


def test_sorted_blocks_give_the_uncut_forces(water):
    torch = pytest.importorskip("torch")
    cfg, params, (coord_ext, atype_ext, mapping, nlist) = water
    tp = _to_torch(torch, params)
    ints = [torch.as_tensor(x) for x in (atype_ext, nlist, mapping)]
    grads = []
    for width in (None, cfg.repformer.nsel):
        c = torch.tensor(coord_ext, requires_grad=True)
        with _budget(2048, 4):
            out = dc.descriptor(tp, cfg, c, ints[0], ints[1], ints[2], repformer_width=width)
        scalar = sum((x * x).sum() for x in out[:3])
        grads.append(torch.autograd.grad(scalar, c)[0].numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=0,
                               atol=1e-12 * float(np.abs(grads[1]).max()))


def _repformer_valid(cfg, coord_ext, nlist):
    """(nf, nloc, S) occupied slots of the repformer sub-list, as the descriptor forms it."""
    from dpa2_core.model.env_mat import geometry, pad_nlist, sub_list

    rf = cfg.repformer
    nlist = pad_nlist(np, nlist, cfg.nsel)
    r2 = geometry(np, np.reshape(coord_ext, (nlist.shape[0], -1, 3)), nlist).r2
    return sub_list(np, nlist, r2, rf.rcut, rf.nsel) >= 0


def _to_torch(torch, tree):
    if isinstance(tree, dict):
        return {k: _to_torch(torch, v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_torch(torch, v) for v in tree)
    return torch.as_tensor(np.asarray(tree))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(*(st.integers(1, 120),) * 3), min_size=1, max_size=6))
def test_grow_widths_keeps_the_largest_bound_of_each_block(bounds):
    """The running bound covers every structure seen and is one of their bounds."""
    seen = None
    for b in bounds:
        seen = grow_widths(seen, SlotWidths(*b))
    assert seen == SlotWidths(*(max(col) for col in zip(*bounds, strict=True)))
    plan = ((10, 8), (20, 12))
    assert grow_widths(seen, SlotWidths(plan, 4, 4)) == SlotWidths(plan, 4, 4)
