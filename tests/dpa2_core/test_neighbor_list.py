"""build_neighbor_list and from_ase: neighbor sets against ASE and deepmd-kit, the list
contract, both engines, every kind of cell, errors and warnings.

Ghost indexing differs between builders, so lists are compared as multisets of
(local centre, local index of the neighbor via mapping, distance).
"""

from __future__ import annotations

import ast
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dpa2_core as dc

ase = pytest.importorskip("ase", reason="ase is the neighbor-set oracle")
from ase.neighborlist import neighbor_list as ase_neighbor_list  # noqa: E402

SMALL = dc.DPA2Config.from_dict({
    "repinit": {"rcut": 4.0, "rcut_smth": 0.5, "nsel": 40, "neuron": [4, 8], "axis_neuron": 2,
                "tebd_dim": 4, "use_three_body": True, "three_body_sel": 20,
                "three_body_rcut": 3.0},
    "repformer": {"rcut": 3.0, "rcut_smth": 1.0, "nsel": 20, "nlayers": 2, "g1_dim": 8,
                  "g2_dim": 4, "axis_neuron": 2, "attn1_hidden": 4, "attn2_hidden": 4},
    "ntypes": 2, "type_map": ["O", "H"]})
RCUT, WIDE = SMALL.rcut, 1000  # WIDE: an nsel no environment here reaches
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
KINDS = ("orthorhombic", "triclinic", "tiny", "slab", "cluster", "left-handed", "mixed-pbc")


def random_cell(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A random (3, 3) cell of the given kind (rows = lattice vectors)."""
    if kind == "tiny":
        lengths = rng.uniform(1.6, 3.5, 3)
    elif kind == "slab":
        lengths = np.concatenate([rng.uniform(5.0, 8.0, 2), rng.uniform(1.6, 2.5, 1)])
        lengths = rng.permutation(lengths)
    else:
        lengths = rng.uniform(4.5, 9.0, 3)
    cell = np.diag(lengths)
    if kind != "orthorhombic":
        cell = cell + np.triu(rng.uniform(-0.4, 0.4, (3, 3)), 1) * lengths[None, :]
        cell = rng.permutation(cell)  # lower/upper triangular and either handedness
    sign = np.sign(np.linalg.det(cell))
    if (kind == "left-handed") != (sign < 0):
        cell = cell[[1, 0, 2]]
    return cell


def random_structure(seed: int, kind: str):
    """coord (n, 3) (partly outside the cell), atype (n,) with some virtual atoms, cell, pbc."""
    rng = np.random.default_rng(seed)
    cell = random_cell(rng, kind)
    n = int(rng.integers(1, 7 if kind == "tiny" else 20))
    frac = rng.uniform(-1.5, 2.5, (n, 3))
    atype = rng.choice([-1, 0, 1, 1], n) if rng.random() < 0.5 else rng.integers(0, 2, n)
    pbc = (True, True, True)
    if kind == "cluster":
        return rng.uniform(0.0, 8.0, (n, 3)), atype, None, (False,) * 3
    if kind == "mixed-pbc":
        pbc = tuple(bool(p) for p in rng.permutation([True, bool(rng.integers(2)), False]))
    return frac @ cell, atype, cell, pbc


def pair_table(out) -> list[np.ndarray]:
    """Per frame: (P, 3) rows (centre, local neighbor, distance), sorted."""
    coord_ext, _, mapping, nlist = (np.asarray(x) for x in out)
    tables = []
    for f in range(nlist.shape[0]):
        i, k = np.nonzero(nlist[f] >= 0)
        j = nlist[f][i, k]
        r = np.linalg.norm(coord_ext[f][j] - coord_ext[f][i], axis=-1)
        tables.append(_sorted(i, mapping[f][j], r))
    return tables


def _sorted(i, j, r) -> np.ndarray:
    t = np.stack([i, j, r], axis=-1).astype(np.float64).reshape(-1, 3)
    return t[np.lexsort((t[:, 2], t[:, 1], t[:, 0]))]


def ase_table(coord, atype, cell, pbc, rcut=RCUT) -> np.ndarray:
    atoms = ase.Atoms(positions=coord, cell=np.zeros((3, 3)) if cell is None else cell,
                      pbc=pbc)
    i, j, r = ase_neighbor_list("ijd", atoms, rcut)
    real = (atype[i] >= 0) & (atype[j] >= 0)
    return _sorted(i[real], j[real], r[real])


def assert_same_pairs(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape, f"{len(a)} pairs vs {len(b)}"
    np.testing.assert_array_equal(a[:, :2], b[:, :2])
    np.testing.assert_allclose(a[:, 2], b[:, 2], rtol=0, atol=1e-9)


def check_contract(out, cell, pbc, rcut: float, nsel: int, minimal_ghosts: bool) -> None:
    """Shapes, wrapping, mapping, sorted rows, -1 tails and ghost positions of one batch."""
    coord_ext, atype_ext, mapping, nlist = (np.asarray(x) for x in out)
    nf, nloc, width = nlist.shape
    assert width == nsel and nlist.dtype == mapping.dtype == atype_ext.dtype == np.int64
    np.testing.assert_array_equal(mapping[:, :nloc], np.broadcast_to(np.arange(nloc), (nf, nloc)))
    valid = nlist >= 0
    assert not np.any(np.diff(valid.astype(int), axis=-1) > 0), "-1 only at the end of rows"
    idx = np.where(valid, nlist, 0)
    d = np.take_along_axis(coord_ext, idx.reshape(nf, -1, 1), 1).reshape(nf, nloc, width, 3)
    r2 = np.where(valid, np.sum((d - coord_ext[:, :nloc, None]) ** 2, axis=-1), 1e300)
    assert np.all(r2[valid] <= rcut * rcut)
    assert np.all(np.diff(r2, axis=-1)[valid[..., 1:]] >= 0), "rows sorted by distance"
    assert np.all(atype_ext[np.arange(nf)[:, None, None], idx][valid] >= 0)
    assert np.all(~valid[atype_ext[:, :nloc] < 0]), "virtual centres have empty rows"
    if cell is not None:
        inv = np.linalg.inv(dc.neighbors.cells.complete_cell(cell, tuple(pbc)))
        ghost = mapping >= 0
        source = np.take_along_axis(coord_ext, np.where(ghost, mapping, 0)[..., None], 1)
        frac = (coord_ext - source)[ghost] @ inv
        assert np.allclose(frac, np.round(frac), atol=1e-8), "ghosts are images of locals"
        assert np.all(np.round(frac)[:, ~np.asarray(pbc)] == 0), "no images on open axes"
        local = (coord_ext[:, :nloc] @ inv)[..., np.asarray(pbc)]
        assert np.all((local > -1e-9) & (local < 1 + 1e-9)), "locals wrapped into the cell"
    if minimal_ghosts:
        for f in range(nf):
            used = np.unique(nlist[f][nlist[f] >= nloc])
            real_ghosts = np.flatnonzero(mapping[f][nloc:] >= 0) + nloc
            np.testing.assert_array_equal(used, real_ghosts)


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(KINDS),
       engine=st.sampled_from(["vesin", "reference"]))
def test_neighbors_match_ase(seed, kind, engine):
    coord, atype, cell, pbc = random_structure(seed, kind)
    out = dc.build_neighbor_list(coord, atype, SMALL, cell, pbc=pbc if cell is not None else None,
                                 nsel=WIDE, engine=engine)
    assert_same_pairs(pair_table(out)[0], ase_table(coord, atype, cell, pbc))
    check_contract(out, cell, pbc, RCUT, WIDE, minimal_ghosts=engine == "vesin")


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(["orthorhombic", "triclinic", "tiny", "slab", "cluster"]))
@pytest.mark.parametrize("engine", ["vesin", "reference"])
def test_neighbors_match_deepmd(seed, kind, engine):
    pytest.importorskip("deepmd", reason="deepmd-kit (the parity oracle) is not installed")
    from oracle import deepmd_inputs

    coord, atype, cell, _ = random_structure(seed, kind)
    box = None if cell is None else cell[None]
    out = dc.build_neighbor_list(coord[None], atype[None], SMALL, box, nsel=WIDE,
                                 engine=engine)
    ce, ae, nl, mp = deepmd_inputs(coord[None], atype[None], box, RCUT, WIDE)
    assert_same_pairs(pair_table(out)[0], pair_table((ce, ae, mp, nl))[0])
    np.testing.assert_allclose(out[0][:, : len(atype)], ce[:, : len(atype)], rtol=0, atol=1e-9)


def _one_ulp_past(rc: float) -> tuple[float, float]:
    """(a, b) with a² + b² the float just above rc² while sqrt(a² + b²) rounds to rc."""
    target = np.nextafter(rc * rc, np.inf)
    for a in np.linspace(1.0, 0.9 * rc, 20001):
        b0 = np.sqrt(rc * rc - a * a)
        for b in (b0, np.nextafter(b0, np.inf), np.nextafter(np.nextafter(b0, np.inf), np.inf)):
            if a * a + b * b == target and np.sqrt(a * a + b * b) == rc:
                return float(a), float(b)
    raise AssertionError(f"no such pair for rc={rc}")


@pytest.mark.parametrize("engine", ["vesin", "reference"])
def test_cutoff_compares_distances_like_deepmd(engine):
    """r² one ulp above rc² with sqrt(r²) == rc: deepmd-kit keeps the pair (it compares
    r, not r²), in its builder and in its per-block sub-lists; so do we."""
    pytest.importorskip("deepmd", reason="deepmd-kit (the parity oracle) is not installed")
    from deepmd.dpmodel.utils.nlist import build_multiple_neighbor_list
    from oracle import deepmd_inputs

    from dpa2_core.model.env_mat import geometry, sub_list

    a, b = _one_ulp_past(RCUT)
    coord, atype = np.array([[[0.0, 0, 0], [a, b, 0.0]]]), np.array([[0, 1]])
    ours = dc.build_neighbor_list(coord, atype, SMALL, engine=engine)[3]
    theirs = deepmd_inputs(coord, atype, None, RCUT, SMALL.nsel)[2]
    np.testing.assert_array_equal(ours, theirs)
    assert ours[0, 0, 0] == 1
    rc, nsel = RCUT, SMALL.repformer.nsel  # a sub-list at 4 Å of a 5 Å list
    coord = np.array([[[0.0, 0, 0], [a, b, 0.0], [1.0, -1.0, 0.5]]])
    ce, _, nl, _ = deepmd_inputs(coord, np.array([[0, 1, 1]]), None, 5.0, SMALL.nsel)
    want = build_multiple_neighbor_list(ce.reshape(1, -1), nl, [rc], [nsel])
    got = sub_list(np, nl, geometry(np, ce, nl).r2, rc, nsel)
    np.testing.assert_array_equal(got, next(iter(want.values())))
    assert 1 in got[0, 0]


def test_batch_of_different_cells_pads_with_virtual_ghosts():
    a, b = random_structure(1, "triclinic"), random_structure(2, "tiny")
    n = min(len(a[1]), len(b[1]))
    coord = np.stack([a[0][:n], b[0][:n]])
    atype = np.stack([np.abs(a[1][:n]), np.abs(b[1][:n])])
    out = dc.build_neighbor_list(coord, atype, SMALL, np.stack([a[2], b[2]]), nsel=WIDE)
    singles = [dc.build_neighbor_list(coord[f], atype[f], SMALL, [a[2], b[2]][f], nsel=WIDE)
               for f in range(2)]
    nall = [s[0].shape[1] for s in singles]
    assert nall[0] != nall[1] and out[0].shape[1] == max(nall)
    for f, single in enumerate(singles):
        assert_same_pairs(pair_table(out)[f], pair_table(single)[0])
        pad = slice(nall[f], None)
        assert np.all(out[1][f, pad] == -1) and np.all(out[2][f, pad] == -1)
        gap = out[0][f, pad, None, :] - out[0][f, None, : nall[f], :]
        assert np.all(np.linalg.norm(gap, axis=-1) > 2 * RCUT), "padding is far away"


def test_nsel_overflow_warns_and_keeps_the_closest():
    coord, atype, cell, pbc = random_structure(7, "tiny")
    atype = np.abs(atype)
    full = dc.build_neighbor_list(coord, atype, SMALL, cell, nsel=WIDE)
    count = (np.asarray(full[3])[0] >= 0).sum(axis=-1)
    nsel = int(count.max()) - 3
    with pytest.warns(UserWarning, match=rf"{int(np.maximum(count - nsel, 0).sum())} neighbors"):
        cut = dc.build_neighbor_list(coord, atype, SMALL, cell, nsel=nsel)
    for i in range(len(atype)):
        np.testing.assert_allclose(_row_distances(cut, i), _row_distances(full, i)[:nsel],
                                   rtol=0, atol=1e-12)


def _row_distances(out, i: int) -> np.ndarray:
    coord_ext, row = np.asarray(out[0])[0], np.asarray(out[3])[0, i]
    return np.linalg.norm(coord_ext[row[row >= 0]] - coord_ext[i], axis=-1)


def test_no_warning_when_nsel_suffices():
    coord, atype, cell, _ = random_structure(3, "orthorhombic")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dc.build_neighbor_list(coord, atype, SMALL, cell, nsel=WIDE)


@pytest.mark.parametrize("box, match", [
    (np.array([[4.0, 0, 0], [8.0, 0, 0], [0, 0, 5.0]]), "box: frame 0 is degenerate"),
    (np.diag([4.0, 0.0, 5.0]), "box: frame 0 is degenerate"),
    (np.diag([4.0, np.nan, 5.0]), "box: contains NaN"),
    (np.eye(2), r"box: expected shape \(3, 3\) or \(9,\), got \(2, 2\)"),
    (np.array([[5.0, 0, 0], [0, 5.0, 0], [5.0, 5.0, 1e-2]]), "box: frame 0 is too thin"),
    (np.array([[5.0, 0, 0], [0, 5.0, 0], [5.0, 5.0, 1e-7]]), "box: frame 0 is too thin"),
])
@pytest.mark.parametrize("engine", ["vesin", "reference"])
def test_bad_box(box, match, engine):
    with pytest.raises(ValueError, match=match):
        dc.build_neighbor_list(np.zeros((2, 3)), np.zeros(2, int), SMALL, box, engine=engine)


def test_batch_with_one_box_names_the_shapes():
    with pytest.raises(ValueError, match=r"box: expected shape \(nf=2, 3, 3\) or \(2, 9\)"):
        dc.build_neighbor_list(np.zeros((2, 2, 3)), np.zeros((2, 2), int), SMALL, np.eye(3))


def test_bad_inputs():
    coord = np.random.default_rng(0).uniform(0, 5, (4, 3))
    atype = np.zeros(4, dtype=int)
    with pytest.raises(ValueError, match=r"coord: contains NaN or inf \(frame 0, atom 2\)"):
        dc.build_neighbor_list(np.where(np.arange(4)[:, None] == 2, np.nan, coord), atype,
                               SMALL)
    with pytest.raises(ValueError, match="coord: expected shape"):
        dc.build_neighbor_list(coord[:, :2], atype, SMALL)
    with pytest.raises(ValueError, match="atype: expected shape"):
        dc.build_neighbor_list(coord, atype[:3], SMALL)
    with pytest.raises(ValueError, match="atype: types must be < ntypes=2"):
        dc.build_neighbor_list(coord, atype + 2, SMALL)
    with pytest.raises(ValueError, match="pbc="):
        dc.build_neighbor_list(coord, atype, SMALL, pbc=True)
    with pytest.raises(ValueError, match="engine="):
        dc.build_neighbor_list(coord, atype, SMALL, engine="cell-list")


def test_mixed_pbc_with_a_zero_vector_on_the_open_axis():
    """A slab as ASE often stores it: no third vector at all."""
    coord, atype, cell, _ = random_structure(11, "orthorhombic")
    cell = cell * np.array([[1], [1], [0]])
    atoms = ase.Atoms(["O" if t == 0 else "H" for t in np.abs(atype)], positions=coord,
                      cell=cell, pbc=[True, True, False])
    out = dc.from_ase(atoms, SMALL, nsel=WIDE)
    assert_same_pairs(pair_table(out)[0], ase_table(coord, np.abs(atype), cell, atoms.pbc))
    np.testing.assert_allclose(np.asarray(out[0])[0, :, 2][: len(atype)], coord[:, 2])


def test_from_ase_matches_build_neighbor_list():
    from oracle import water_frames

    coord, atype, box = water_frames(0, (0,))
    atoms = ase.Atoms(["O" if t == 0 else "H" for t in atype[0]], positions=coord[0],
                      cell=box[0], pbc=True)
    for a, b in zip(dc.from_ase(atoms, SMALL), dc.build_neighbor_list(coord, atype, SMALL, box),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="type_map"):
        dc.from_ase(atoms, dc.DPA2Config.from_dict({**SMALL.to_dict(), "type_map": None}))
    with pytest.raises(ValueError, match=r"\['Zn'\] are not in type_map"):
        dc.from_ase(ase.Atoms("Zn2O", positions=np.eye(3)), SMALL)


def test_without_vesin_falls_back_to_the_reference(monkeypatch):
    coord, atype, cell, _ = random_structure(5, "triclinic")
    fast = dc.build_neighbor_list(coord, atype, SMALL, cell, nsel=WIDE)
    monkeypatch.setitem(sys.modules, "vesin", None)
    slow = dc.build_neighbor_list(coord, atype, SMALL, cell, nsel=WIDE)
    assert slow[0].shape[1] > fast[0].shape[1]  # all images within reach: the dense builder
    assert_same_pairs(pair_table(slow)[0], pair_table(fast)[0])
    with pytest.raises(ImportError, match=r"pip install 'dpa2\[io\]'"):
        dc.build_neighbor_list(coord, atype, SMALL, cell, engine="vesin")
    big = np.random.default_rng(0).uniform(0, 40, (8000, 3))
    with pytest.raises(ImportError, match=r"too many .* pip install 'dpa2\[io\]'"):
        dc.build_neighbor_list(big, np.zeros(8000, int), SMALL, np.diag([40.0] * 3))
    with pytest.raises(ValueError, match=r"engine='reference': 8000 atoms are too many"):
        dc.build_neighbor_list(big, np.zeros(8000, int), SMALL, np.diag([40.0] * 3),
                               engine="reference")


@pytest.mark.parametrize("engine", ["vesin", "reference"])
def test_edge_cases(engine):
    empty = dc.build_neighbor_list(np.zeros((0, 3)), np.zeros(0, int), SMALL, np.eye(3) * 5,
                                   engine=engine)
    assert [x.shape for x in empty] == [(1, 0, 3), (1, 0), (1, 0), (1, 0, SMALL.nsel)]
    no_frames = dc.build_neighbor_list(np.zeros((0, 2, 3)), np.zeros((0, 2), int), SMALL,
                                       np.zeros((0, 3, 3)), engine=engine)
    assert no_frames[3].shape == (0, 2, SMALL.nsel)
    virtual = dc.build_neighbor_list(np.zeros((2, 3)), [-1, -1], SMALL, np.eye(3) * 5,
                                     engine=engine)
    assert np.all(virtual[3] == -1)
    # One atom in a 2 Å cube: its neighbors are its images 2·S with |S| <= rcut / 2.
    grid = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3), -1).reshape(-1, 3)
    images = np.count_nonzero(np.linalg.norm(grid, axis=-1) <= RCUT / 2) - 1
    alone = dc.build_neighbor_list(np.zeros((1, 3)), [0], SMALL, np.eye(3) * 2, engine=engine)
    assert np.count_nonzero(np.asarray(alone[3]) >= 0) == images
    # A neighbor at exactly rcut is kept (as in deepmd-kit), one just beyond is not.
    edge = np.array([[0.0, 0.0, 0.0], [RCUT, 0.0, 0.0], [0.0, RCUT * (1 + 1e-12), 0.0]])
    nlist = np.asarray(dc.build_neighbor_list(edge, [0, 1, 1], SMALL, engine=engine)[3])
    assert list(nlist[0, 0, :2]) == [1, -1]


def test_reference_runs_on_every_backend(to_backend):
    coord, atype, cell, pbc = random_structure(9, "mixed-pbc")
    ref = dc.build_neighbor_list(coord, atype, SMALL, cell, pbc=pbc, engine="reference")
    out = dc.build_neighbor_list(to_backend(coord), to_backend(atype), SMALL, to_backend(cell),
                                 pbc=pbc, engine="reference")
    assert type(out[3]) is type(to_backend(atype))
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_allclose(dc.array_api.to_numpy(a), b, rtol=0, atol=1e-12)


def test_vesin_engine_returns_the_callers_arrays():
    torch = pytest.importorskip("torch")
    coord, atype, cell, _ = random_structure(4, "triclinic")
    out = dc.build_neighbor_list(torch.tensor(coord, dtype=torch.float32), torch.tensor(atype),
                                 SMALL, torch.tensor(cell), nsel=WIDE)
    assert all(isinstance(x, torch.Tensor) for x in out)
    assert out[0].dtype == torch.float32 and out[3].dtype == torch.int64
    ref = dc.build_neighbor_list(coord.astype(np.float32), atype, SMALL, cell, nsel=WIDE)
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_array_equal(a.numpy(), b)


def test_reference_builder_is_pure():
    """No in-place updates in the array-API builder (it must run on jax arrays)."""
    path = Path(dc.__file__).parent / "neighbors" / "reference.py"
    for node in ast.walk(ast.parse(path.read_text())):
        assert not isinstance(node, ast.AugAssign), node.lineno
        if isinstance(node, ast.Assign):
            assert not any(isinstance(t, ast.Subscript) for t in node.targets), node.lineno


# --------------------------------------------------------------------- descriptor level
def _descriptor(params, config, inputs, pad: int = 0):
    coord_ext, atype_ext, mapping, nlist = inputs
    if pad:
        nlist = np.concatenate([nlist, np.full((*nlist.shape[:2], pad), -1)], axis=-1)
    return dc.descriptor(params, config, coord_ext, atype_ext, nlist, mapping)


def _assert_outputs_close(ours, ref, rtol: float, valid=None) -> None:
    """Per output, max|ours - ref| <= rtol * max|ref|; g2/h2 only at ``valid`` slots if given
    (their empty-slot contents read atom 0 and are not invariant)."""
    for name, a, b in zip(ours._fields, ours, ref, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, name
        if valid is not None and name in ("g2", "h2"):
            a, b = a[valid], b[valid]
        err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)
        assert err <= rtol, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("engine", ["vesin", "reference"])
def test_descriptor_matches_deepmd_pipeline(engine):
    """Our builder + our descriptor == deepmd's builder + deepmd's descriptor (real model)."""
    pytest.importorskip("deepmd", reason="deepmd-kit (the parity oracle) is not installed")
    from oracle import MODEL_DP, deepmd_call, deepmd_inputs, water_frames

    config, params = dc.load_deepmd(MODEL_DP)
    coord, atype, box = water_frames(0, (0, 1))
    inputs = dc.build_neighbor_list(coord, atype, config, box, engine=engine)
    ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, config.nsel)
    if engine == "vesin":
        assert inputs[0].shape[1] < ce.shape[1]  # a different (smaller) ghost set
    ref = deepmd_call(dc.dump_deepmd(config, params), ce, ae, nl, mp)
    _assert_outputs_close(_descriptor(params, config, inputs), dc.DescriptorOutput(*ref), 1e-10)


def _invariance_structures():
    from conftest import random_stats
    from oracle import water_frames

    params = random_stats(dc.init_params(SMALL, seed=3), seed=4)
    # The same statistics in every slot (as fitted ones are): with per-slot values the
    # descriptor would depend on the order of exactly tied neighbors (self-images at ±a).
    for block in ("repinit", "three_body", "repformer"):
        p = params[block]
        params[block] = {**p, **{k: np.broadcast_to(p[k][:, :1], p[k].shape).copy()
                                 for k in ("davg", "dstd")}}
    coord, atype, box = water_frames(0, (0,))
    rng = np.random.default_rng(5)
    cell = np.array([[3.4, 0.0, 0.0], [0.9, 3.2, 0.0], [-0.6, 0.7, 3.5]])  # < rcut: 2 shells
    small = (rng.uniform(0, 1, (1, 4, 3)) @ cell, np.array([[0, 1, 1, 0]]), cell[None])
    return params, {"water": (coord, atype, box), "tiny-triclinic": small}


PARAMS, INVARIANCE = _invariance_structures()


def _valid_g2(inputs) -> np.ndarray:
    coord_ext, _, _, nlist = (np.asarray(x) for x in inputs)
    sub = nlist[..., : SMALL.repformer.nsel]
    idx = np.where(sub >= 0, sub, 0)
    d = np.take_along_axis(coord_ext, idx.reshape(1, -1, 1), 1).reshape(*sub.shape, 3)
    r = np.linalg.norm(d - coord_ext[:, : sub.shape[1], None], axis=-1)
    return (sub >= 0) & (r <= SMALL.repformer.rcut)


@pytest.mark.parametrize("name", sorted(INVARIANCE))
def test_descriptor_invariant_to_wrapping(name):
    coord, atype, box = INVARIANCE[name]
    ref = _descriptor(PARAMS, SMALL, dc.build_neighbor_list(coord, atype, SMALL, box))
    lattice = np.random.default_rng(0).integers(-2, 3, coord.shape).astype(float)
    moved = coord + lattice @ box[0]
    out = _descriptor(PARAMS, SMALL, dc.build_neighbor_list(moved, atype, SMALL, box))
    _assert_outputs_close(out, ref, 1e-10)


@pytest.mark.parametrize("name", sorted(INVARIANCE))
def test_descriptor_invariant_to_atom_order(name):
    coord, atype, box = INVARIANCE[name]
    inputs = dc.build_neighbor_list(coord, atype, SMALL, box)
    ref = _descriptor(PARAMS, SMALL, inputs)
    rng, identity = np.random.default_rng(1), np.arange(atype.shape[1])
    perm = identity
    while np.array_equal(perm, identity):
        perm = rng.permutation(identity)
        # Empty slots read the type of extended atom 0 (deepmd's gather-at-0, spec §16) and,
        # with davg != 0, their padding residual reaches the output: keep atom 0's type.
        first = np.flatnonzero(atype[0, perm] == atype[0, 0])[0]
        perm[[0, first]] = perm[[first, 0]]
    out = _descriptor(PARAMS, SMALL, dc.build_neighbor_list(coord[:, perm], atype[:, perm],
                                                            SMALL, box))
    back = np.argsort(perm)
    out = dc.DescriptorOutput(*(np.asarray(x)[:, back] for x in out))
    _assert_outputs_close(out, ref, 1e-10, valid=_valid_g2(inputs))


@pytest.mark.parametrize("name", sorted(INVARIANCE))
def test_descriptor_invariant_to_list_width(name):
    coord, atype, box = INVARIANCE[name]
    inputs = dc.build_neighbor_list(coord, atype, SMALL, box)
    ref = _descriptor(PARAMS, SMALL, inputs)
    _assert_outputs_close(_descriptor(PARAMS, SMALL, inputs, pad=7), ref, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped at either width
        wide = dc.build_neighbor_list(coord, atype, SMALL, box, nsel=SMALL.nsel + 25)
    _assert_outputs_close(_descriptor(PARAMS, SMALL, wide), ref, 0.0)


def test_batched_descriptor_equals_per_frame():
    """Frames with different cells need different ghost counts; padding changes nothing."""
    coord, atype, box = INVARIANCE["water"]
    small = INVARIANCE["tiny-triclinic"]
    scaled = (coord * 1.06, box * 1.06)  # fewer ghosts per atom than frame 0
    batch = dc.build_neighbor_list(np.concatenate([coord, scaled[0]]), np.repeat(atype, 2, 0),
                                   SMALL, np.concatenate([box, scaled[1]]))
    frames = [dc.build_neighbor_list(c, atype, SMALL, b) for c, b in [(coord, box), scaled]]
    assert frames[0][0].shape[1] != frames[1][0].shape[1]
    out = _descriptor(PARAMS, SMALL, batch)
    for f, inputs in enumerate(frames):
        ref = _descriptor(PARAMS, SMALL, inputs)
        _assert_outputs_close(dc.DescriptorOutput(*(x[f: f + 1] for x in out)), ref, 1e-12)
    _, atype_ext, _, nlist = dc.build_neighbor_list(small[0], np.array([[0, -1, 1, 0]]), SMALL,
                                                    small[2])
    assert np.all(nlist[0, 1] == -1) and np.all(atype_ext[0][nlist[0][nlist[0] >= 0]] >= 0)
