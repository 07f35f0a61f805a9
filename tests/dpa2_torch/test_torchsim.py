"""dpa2_torch.torchsim.TorchSimModel: batched systems of different sizes equal the ASE
calculator system by system, and a short torch-sim NVE integration runs and conserves."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ase")
torch = pytest.importorskip("torch")
ts = pytest.importorskip("torch_sim")

from md_helpers import MODEL_DP, small_triclinic  # noqa: E402

from dpa2_torch import EnergyModel  # noqa: E402
from dpa2_torch.calculator import Calculator  # noqa: E402
from dpa2_torch.torchsim import TorchSimModel  # noqa: E402


@pytest.fixture(scope="module")
def model() -> EnergyModel:
    return EnergyModel.from_deepmd(MODEL_DP)


def systems():
    a = small_triclinic()
    b = small_triclinic().repeat((2, 1, 1))
    b.rattle(0.02, seed=1)
    return [a, b]  # 12 and 24 atoms


def test_batched_equals_calculator(model):
    atoms = systems()
    tsm = TorchSimModel(model)
    state = ts.io.atoms_to_state(atoms, torch.device("cpu"), torch.float64)
    out = tsm(state)
    assert out["energy"].shape == (2,) and out["forces"].shape == (36, 3)
    assert out["stress"].shape == (2, 3, 3)
    start = 0
    for k, at in enumerate(atoms):
        at.calc = Calculator(model)
        n = len(at)
        assert float(out["energy"][k]) == pytest.approx(at.get_potential_energy(), rel=1e-12)
        np.testing.assert_allclose(out["forces"][start:start + n].numpy(), at.get_forces(),
                                   rtol=0, atol=1e-10)
        np.testing.assert_allclose(out["stress"][k].numpy(), at.get_stress(voigt=False),
                                   rtol=0, atol=1e-12)
        start += n


def test_unknown_element_is_named(model):
    from ase.build import bulk

    state = ts.io.atoms_to_state([bulk("Si", "diamond", a=5.43)], torch.device("cpu"),
                                 torch.float64)
    with pytest.raises(ValueError, match=r"\['Si'\] not in the model's type_map"):
        TorchSimModel(model)(state)


def test_short_nve_integration(model):
    tsm = TorchSimModel(model)
    state = ts.io.atoms_to_state(systems(), torch.device("cpu"), torch.float64)
    units = ts.units.MetalUnits  # time in ps
    init, update = ts.nve(model=tsm, dt=torch.tensor(0.25e-3 * units.time, dtype=torch.float64),
                          kT=torch.tensor(300 * units.temperature, dtype=torch.float64), seed=0)
    md = init(state)

    def total(s):
        ekin = ts.calc_kinetic_energy(masses=s.masses, momenta=s.momenta,
                                      system_idx=s.system_idx)
        return (s.energy + ekin).detach().numpy()

    e0 = total(md)
    for _ in range(5):
        md = update(md)
    e1 = total(md)
    assert np.all(np.abs(e1 - e0) / np.asarray([12, 24]) < 2e-4)  # eV/atom over 5 steps of 0.25 fs
    assert not np.allclose(md.positions.numpy(), state.positions.numpy())
