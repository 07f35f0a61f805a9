"""dpa2_torch.Calculator: parity with deepmd-kit's DP calculator, finite differences, the
neighbor list kept within a skin, precision, and clear errors on bad structures."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ase")
torch = pytest.importorskip("torch")

from md_helpers import MODEL_DP, STRUCTURES, rel, small_triclinic, water  # noqa: E402

from dpa2_torch import EnergyModel  # noqa: E402
from dpa2_torch.calculator import Calculator  # noqa: E402


@pytest.fixture(scope="module")
def model() -> EnergyModel:
    return EnergyModel.from_deepmd(MODEL_DP)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_equals_deepmd_calculator(name, model, deepmd_results):
    atoms = STRUCTURES[name]()
    atoms.calc = Calculator(model)
    ref = deepmd_results[name]
    assert rel(atoms.get_potential_energy(), ref["energy"]) <= 1e-10
    assert rel(atoms.get_forces(), ref["forces"]) <= 1e-10
    if "stress" in ref:
        assert rel(atoms.get_stress(), ref["stress"]) <= 1e-10
    else:
        with pytest.raises(Exception, match="stress"):
            atoms.get_stress()
    e_atoms = atoms.calc.results["energies"]
    assert e_atoms.shape == (len(atoms),)
    assert abs(e_atoms.sum() - ref["energy"]) <= 1e-10 * abs(ref["energy"])
    assert atoms.get_potential_energy(force_consistent=True) == atoms.get_potential_energy()


def test_finite_differences_small_triclinic_cell(model):
    """Forces = -dE/dx and stress = (1/V) dE/dstrain on a triclinic cell shorter than rcut."""
    atoms = small_triclinic()
    calc = Calculator(model, skin=0.0)
    atoms.calc = calc
    forces, stress = atoms.get_forces(), atoms.get_stress(voigt=False)
    h = 1e-5
    for i, d in [(0, 0), (4, 1), (11, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, d] += h
        minus.positions[i, d] -= h
        plus.calc = minus.calc = calc
        fd = -(plus.get_potential_energy() - minus.get_potential_energy()) / (2 * h)
        assert abs(fd - forces[i, d]) <= 1e-6 * max(1.0, abs(forces[i, d]))
    cell, vol = atoms.cell.array, atoms.get_volume()
    for a, b in [(0, 0), (1, 2), (2, 1), (2, 2)]:
        energies = []
        for s in (h, -h):
            eps = np.eye(3)
            eps[a, b] += s
            strained = atoms.copy()
            strained.set_cell(cell @ eps, scale_atoms=True)
            strained.calc = calc
            energies.append(strained.get_potential_energy())
        fd = (energies[0] - energies[1]) / (2 * h) / vol
        sym = 0.5 * (stress[a, b] + stress[b, a])
        assert abs(fd - sym) <= 1e-6 * max(1.0, np.abs(stress).max()), (a, b)


def test_skin_reuse_equals_fresh_build(model):
    """Within the skin the list is reused (fewer builds) and results equal a fresh build;
    moving past half the skin rebuilds."""
    atoms = small_triclinic()
    kept = Calculator(model, skin=0.4)
    fresh = Calculator(model, skin=0.0)
    rng = np.random.default_rng(0)
    for _ in range(4):
        atoms.positions += rng.normal(scale=0.02, size=atoms.positions.shape)
        a, b = atoms.copy(), atoms.copy()
        a.calc, b.calc = kept, fresh
        assert rel(a.get_potential_energy(), b.get_potential_energy()) <= 1e-13
        assert rel(a.get_forces(), b.get_forces()) <= 1e-12
        assert rel(a.get_stress(), b.get_stress()) <= 1e-12
    assert kept.nbuilds == 1 and fresh.nbuilds == 4
    atoms.positions[0] += 0.3  # past skin / 2: rebuilt
    atoms.calc = kept
    atoms.get_potential_energy()
    assert kept.nbuilds == 2


def test_float32_and_model_path(model):
    atoms = small_triclinic()
    atoms.calc = Calculator(model)
    e64, f64 = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = Calculator(str(MODEL_DP), dtype="float32")
    assert atoms.calc.model.out_bias.dtype == torch.float32
    assert rel(atoms.get_potential_energy(), e64) <= 1e-6
    assert rel(atoms.get_forces(), f64) <= 1e-3
    with pytest.raises(ValueError, match="dtype='float16'"):
        Calculator(model, dtype="float16")


def test_bad_structures(model):
    from ase import Atoms

    calc = Calculator(model)
    atoms = Atoms("OHC", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    atoms.calc = calc
    with pytest.raises(ValueError, match=r"\['C'\] not in the model's type_map=\['O', 'H'\]"):
        atoms.get_potential_energy()
    atoms = Atoms("OH", positions=[[0, 0, 0], [1, 0, 0]], pbc=True)
    atoms.calc = calc
    with pytest.raises(ValueError, match="pbc=.*needs cell vectors"):
        atoms.get_potential_energy()
    atoms = Atoms("OH", positions=[[0, 0, 0], [np.nan, 0, 0]])
    atoms.calc = calc
    with pytest.raises(ValueError, match="atoms.positions: atom 1 is not finite"):
        atoms.get_potential_energy()
    atoms = Atoms("OHH", positions=[[0, 0, 0], [1, 0, 0], [1, 0, 1e-4]])
    atoms.calc = calc
    with pytest.raises(ValueError, match=r"atoms 1 and 2 are .*\(overlapping atoms"):
        atoms.get_potential_energy()


def test_no_neighbors_is_finite(model):
    from ase import Atoms

    atoms = Atoms("OHH", positions=[[0, 0, 0], [10, 0, 0], [0, 10, 0]])
    atoms.calc = Calculator(model)
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    assert np.isfinite(e) and np.all(np.isfinite(f))
    assert np.abs(f).max() == 0.0
    # isolated atoms: the per-type energies of the model, the same wherever they are
    far = atoms.copy()
    far.positions *= 2
    far.calc = Calculator(model)
    assert far.get_potential_energy() == pytest.approx(e, rel=1e-12)


def test_periodic_along_some_axes(model):
    """A wire (pbc along x only) through the mixed-pbc cell completion: finite, and the
    energy does not change when the non-periodic cell vectors do."""
    atoms = water()[:24]
    atoms.wrap()
    atoms.pbc = (True, False, False)
    atoms.calc = Calculator(model)
    e = atoms.get_potential_energy()
    other = atoms.copy()
    other.set_cell([atoms.cell[0], [0, 30, 0], [0, 0, 30]], scale_atoms=False)
    other.calc = Calculator(model)
    assert other.get_potential_energy() == pytest.approx(e, rel=1e-12)


@pytest.mark.parametrize("suffix", [".json"])  # YAML: the same tree, 30 s slower to parse
def test_text_model_files_by_path(suffix, tmp_path, deepmd_results):
    """The shared model rewritten as deepmd-kit JSON gives deepmd-kit's numbers."""
    from dpa2_core import load_deepmd_model
    from dpa2_core.io import save_deepmd_model

    path = save_deepmd_model(load_deepmd_model(MODEL_DP), tmp_path / f"m{suffix}")
    atoms = STRUCTURES["cluster"]()
    atoms.calc = Calculator(path)
    ref = deepmd_results["cluster"]
    assert rel(atoms.get_potential_energy(), ref["energy"]) <= 1e-10
    assert rel(atoms.get_forces(), ref["forces"]) <= 1e-10


def test_device_is_where_the_model_runs(model):
    calc = Calculator(model, device="cpu")
    assert calc.device.type == "cpu" and next(calc.model.parameters()).device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda': torch sees no CUDA device"):
            Calculator(MODEL_DP, device="cuda")
