"""read_frames / iter_frames: deepmd systems, common ase formats, frame selection."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import MODEL_DP, WATER, water_frames

import dpa2_core as dc
from dpa2_core.io.npy_data import DeepmdSystem
from dpa2_core.io.structures import Frame, iter_frames, parse_frames, read_frames

pytest.importorskip("ase", reason="ase reads the structure files")
import ase  # noqa: E402
import ase.io  # noqa: E402

TYPE_MAP = ["O", "H"]


def water_atoms(frame: int = 0, pbc=True):
    coord, atype, box = water_frames(0, (frame,))
    return ase.Atoms([TYPE_MAP[t] for t in atype[0]], positions=coord[0], cell=box[0], pbc=pbc)


@pytest.mark.parametrize("text, want", [
    ("0", 0), ("-1", -1), (" 3 ", 3), ("0:10", slice(0, 10)), ("::2", slice(None, None, 2)),
    ("1:-1:3", slice(1, -1, 3)), (":", slice(None)), (None, slice(None)), (4, 4),
])
def test_parse_frames(text, want):
    assert parse_frames(text) == want


@pytest.mark.parametrize("text", ["", "a", "1:2:3:4", "0.5", "__import__('os')", "1::0", "[0]"])
def test_parse_frames_rejects(text):
    with pytest.raises(ValueError, match="frames="):
        parse_frames(text)


def test_deepmd_system_and_selection():
    system = DeepmdSystem(WATER / "data_0", TYPE_MAP).frames()
    frames = read_frames(WATER / "data_0", TYPE_MAP, "2:7:2")
    assert [type(f) for f in frames] == [Frame] * 3
    for f, k in zip(frames, (2, 4, 6), strict=True):
        np.testing.assert_array_equal(f.coord, system.coord[k])
        np.testing.assert_array_equal(f.box, system.box[k])
        assert f.coord.dtype == f.box.dtype == np.float64 and f.atype.dtype == np.int64
    last = read_frames(WATER / "data_0", TYPE_MAP, "-1")
    np.testing.assert_array_equal(last[0].coord, system.coord[-1])
    assert len(read_frames(WATER / "data_0", TYPE_MAP)) == system.coord.shape[0]
    with pytest.raises(ValueError, match="frames=999"):
        read_frames(WATER / "data_0", TYPE_MAP, "999")
    with pytest.raises(ValueError, match=r"elements \['H'\] are not in type_map"):
        read_frames(WATER / "data_0", ["O"], "0")


def assert_same_crystal(frame: Frame, atoms, atol: float) -> None:
    """Same cell, and every atom of ``frame`` sits on an atom of the same type of ``atoms``
    up to a lattice vector (writers may wrap and reorder atoms)."""
    np.testing.assert_allclose(frame.box, atoms.cell.array, atol=atol)
    inv = np.linalg.inv(frame.box)
    diff = (frame.coord[:, None, :] - atoms.positions[None, :, :]) @ inv
    dist = np.linalg.norm((diff - np.round(diff)) @ frame.box, axis=-1)
    match = np.argmin(dist, axis=1)
    assert np.all(dist[np.arange(len(match)), match] < atol)
    assert len(set(match)) == len(atoms)
    want = [TYPE_MAP.index(s) for s in atoms.get_chemical_symbols()]
    np.testing.assert_array_equal(frame.atype, np.asarray(want)[match])


@pytest.mark.parametrize("name, fmt, kwargs, atol", [
    ("water.extxyz", None, {}, 1e-7),
    ("POSCAR", "vasp", {"direct": False}, 1e-7),
    ("water.cif", None, {}, 1e-3),
    ("water.data", "lammps-data", {"masses": True}, 1e-7),
    ("data.water", "lammps-data", {}, 1e-7),
])
def test_ase_formats_round_trip(tmp_path, name, fmt, kwargs, atol):
    atoms = water_atoms(0)
    path = tmp_path / name
    if fmt == "lammps-data":
        kwargs = {**kwargs, "specorder": TYPE_MAP}
    ase.io.write(path, atoms, format=fmt, **kwargs)
    (frame,) = read_frames(path, TYPE_MAP)
    assert frame.coord.dtype == np.float64 and frame.atype.dtype == np.int64
    assert_same_crystal(frame, atoms, atol)


def test_lammps_types_follow_masses_when_present(tmp_path):
    """With a Masses section the elements come from the masses, not from type_map order."""
    atoms = water_atoms(0)
    path = tmp_path / "water.lmp"
    ase.io.write(path, atoms, format="lammps-data", specorder=["H", "O"], masses=True)
    assert_same_crystal(read_frames(path, TYPE_MAP)[0], atoms, 1e-7)


def test_multi_frame_xyz_selection_and_open_boundary(tmp_path):
    images = [water_atoms(k, pbc=False) for k in range(4)]
    for a in images:
        a.set_cell(np.zeros((3, 3)))
    path = tmp_path / "traj.xyz"
    ase.io.write(path, images, format="extxyz")
    frames = read_frames(path, TYPE_MAP, "1::2")
    assert len(frames) == 2 and all(f.box is None for f in frames)
    np.testing.assert_allclose(frames[1].coord, images[3].positions, atol=1e-12)
    np.testing.assert_allclose(read_frames(path, TYPE_MAP, -1)[0].coord, images[3].positions)
    with pytest.raises(ValueError, match="frames=7: out of range"):
        read_frames(path, TYPE_MAP, "7")
    streamed = list(iter_frames(path, TYPE_MAP, "0:2", progress=True))
    assert len(streamed) == 2
    np.testing.assert_array_equal(streamed[1].coord, frames[0].coord)


def test_mixed_periodicity_keeps_its_flags(tmp_path):
    """A slab read from disk gives the inputs from_ase gives for the same atoms."""
    atoms = water_atoms(0)
    atoms.pbc = [True, True, False]
    path = tmp_path / "slab.extxyz"
    ase.io.write(path, atoms)
    (frame,) = read_frames(path, TYPE_MAP)
    assert frame.pbc == (True, True, False)
    config, _ = dc.load_deepmd(MODEL_DP)
    for a, b in zip(dc.build_neighbor_list(frame.coord, frame.atype, config, frame.box,
                                           pbc=frame.pbc),
                    dc.from_ase(ase.io.read(path), config), strict=True):
        np.testing.assert_array_equal(a, b)


def test_errors(tmp_path):
    path = tmp_path / "slab.extxyz"
    ase.io.write(path, water_atoms(0))
    with pytest.raises(ValueError, match=r"frames='5:5': selects no frame"):
        read_frames(path, TYPE_MAP, "5:5")
    with pytest.raises(ValueError, match=r"frames='0:0': selects no frame"):
        read_frames(WATER / "data_0", TYPE_MAP, "0:0")
    ase.io.write(tmp_path / "bulk.extxyz", water_atoms(0))
    with pytest.raises(ValueError, match=r"elements \['H'\] are not in type_map"):
        read_frames(tmp_path / "bulk.extxyz", ["O"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_frames(tmp_path / "missing.xyz", TYPE_MAP)
    with pytest.raises(ValueError, match="type_map"):
        read_frames(path, [])


def test_frames_feed_the_builder():
    """A frame read from disk gives the same descriptor inputs as the arrays themselves."""
    config, _ = dc.load_deepmd(MODEL_DP)
    (frame,) = read_frames(WATER / "data_0", TYPE_MAP, "0")
    coord, atype, box = water_frames(0, (0,))
    for a, b in zip(dc.build_neighbor_list(frame.coord, frame.atype, config, frame.box),
                    dc.build_neighbor_list(coord, atype, config, box), strict=True):
        np.testing.assert_array_equal(a, b)
