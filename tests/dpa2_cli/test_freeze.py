"""``dpa2 freeze``: a ``dpa2 train`` checkpoint of either backend as a deepmd-kit model file.

deepmd-kit reads what we write: ``DeepPot("model.dp")`` (deepmd's numpy backend) gives our
energies, and after deepmd-kit's own ``convert-backend`` to ``.pth`` its PyTorch model
gives our energies, forces and virial (as stress through its ``DP`` calculator)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ase")
torch = pytest.importorskip("torch")

from conftest import tiny_input  # noqa: E402
from md_helpers import convert_backend, deepmd_calculator, small_triclinic  # noqa: E402

from dpa2_cli.main import main  # noqa: E402


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.fixture(scope="module")
def torch_checkpoint(tmp_path_factory):
    """A dpa2 train torch checkpoint of a small model with non-zero biases."""
    import json

    from dpa2_core.training.settings import ModelSettings
    from dpa2_torch.training.checkpoint import build_model, save_checkpoint

    tmp = tmp_path_factory.mktemp("freeze")
    raw = json.loads(tiny_input(tmp).read_text())
    model = build_model(ModelSettings.from_input(raw["model"]))
    with torch.no_grad():
        model.out_bias.copy_(torch.tensor([-93.5, -187.1], dtype=torch.float64))
        model.fitting.bias_atom_e.copy_(torch.tensor([[0.3], [-0.2]], dtype=torch.float64))
    return save_checkpoint(tmp / "model.ckpt.pt", model, None, 4, raw)


@pytest.fixture(scope="module")
def jax_checkpoint(tmp_path_factory):
    """A dpa2 train jax checkpoint (the same small model, its own initialisation)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import json

    from dpa2_core.training.settings import ModelSettings
    from dpa2_jax.model import ModelConfig, init_model
    from dpa2_jax.training.checkpoint import save_checkpoint

    tmp = tmp_path_factory.mktemp("freeze_jax")
    raw = json.loads(tiny_input(tmp).read_text())
    s = ModelSettings.from_input(raw["model"])
    config = ModelConfig(s.descriptor, s.fitting)
    params = init_model(config, seed=3, out_bias=np.array([-90.0, -180.0]))
    return save_checkpoint(tmp, "model", 4, params, (), config)


def our_results(checkpoint, atoms):
    from dpa2_torch.calculator import Calculator
    from dpa2_torch.training.checkpoint import load_model

    if checkpoint.suffix == ".npz":
        from dpa2_jax.calculator import Calculator as JaxCalculator

        calc = JaxCalculator(checkpoint)
    else:
        calc = Calculator(load_model(checkpoint))
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_freeze_then_deepmd_kit(backend, torch_checkpoint, jax_checkpoint, tmp_path, water_pth,
                                capsys):
    checkpoint = torch_checkpoint if backend == "torch" else jax_checkpoint
    out = tmp_path / "model.dp"
    assert main(["freeze", str(checkpoint), "-o", str(out)]) == 0
    assert "dp convert-backend" in capsys.readouterr().out
    atoms = small_triclinic()
    energy, forces, stress = our_results(checkpoint, atoms)

    from deepmd.infer import DeepPot

    types = [("O", "H").index(s) for s in atoms.get_chemical_symbols()]
    e_np = DeepPot(str(out)).eval(atoms.positions.reshape(1, -1),
                                  atoms.cell.array.reshape(1, -1), types)[0]
    assert rel(e_np, energy) <= 1e-10

    pth = convert_backend(out, tmp_path / "model.pth")
    atoms.calc = deepmd_calculator(pth)
    assert rel(atoms.get_potential_energy(), energy) <= 1e-10
    assert rel(atoms.get_forces(), forces) <= 1e-10
    assert rel(atoms.get_stress(), stress) <= 1e-10  # = -virial / V, symmetrised


def test_freeze_errors(torch_checkpoint, tmp_path, capsys):
    assert main(["freeze", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "m.dp")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["freeze", str(torch_checkpoint), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "unknown suffix '.onnx'" in capsys.readouterr().err
