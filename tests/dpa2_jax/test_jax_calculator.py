"""dpa2_jax.Calculator: parity with deepmd-kit's DP calculator and with the torch
calculator's rules (shared base), float32, and the x64 policy."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ase")
jax = pytest.importorskip("jax")

from md_helpers import MODEL_DP, STRUCTURES, rel  # noqa: E402

import dpa2_core as dc  # noqa: E402
from dpa2_jax.calculator import Calculator  # noqa: E402


@pytest.fixture(scope="module")
def model() -> dc.DeepmdModel:
    return dc.load_deepmd_model(MODEL_DP)


# one jit compile per structure (~6 s each): periodic water, a slab periodic in x and y
# only, and an open cluster
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
    assert rel(atoms.calc.results["energies"].sum(), ref["energy"]) <= 1e-10


def test_float32_and_path(deepmd_results):
    atoms = STRUCTURES["cluster"]()
    calc = Calculator(MODEL_DP, dtype="float32", device="cpu")
    atoms.calc = calc
    assert calc.params["out_bias"].dtype == np.float32
    ref = deepmd_results["cluster"]
    assert rel(atoms.get_potential_energy(), ref["energy"]) <= 1e-6
    assert rel(atoms.get_forces(), ref["forces"]) <= 1e-3


def test_float64_needs_x64(model):
    with jax.enable_x64(False), pytest.raises(ValueError, match="jax_enable_x64"):
        Calculator(model)
