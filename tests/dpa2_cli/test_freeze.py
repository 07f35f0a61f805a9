"""``dpa2 freeze``: a ``dpa2 train`` checkpoint of either backend as a deepmd-kit model file,
and a deepmd-kit model file as an exported artifact.

deepmd-kit reads what we write: ``DeepPot("model.dp")`` (deepmd's numpy backend) gives our
energies, and after deepmd-kit's own ``convert-backend`` to ``.pth`` its PyTorch model
gives our energies, forces and virial (as stress through its ``DP`` calculator). An
artifact gives the model's numbers; unknown suffixes and unloadable inputs are one-line
errors (exit status 2)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ase")
torch = pytest.importorskip("torch")

from conftest import cluster, tiny_input  # noqa: E402
from export_helpers import local_force, lower_inputs  # noqa: E402
from md_helpers import convert_backend, deepmd_calculator, rel, small_triclinic  # noqa: E402
from oracle import MODEL_DP  # noqa: E402

from dpa2_cli.main import main  # noqa: E402


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
    """Both calculators read the checkpoint's path themselves (the one loader)."""
    from dpa2_torch.calculator import Calculator

    if checkpoint.suffix == ".npz":
        from dpa2_jax.calculator import Calculator as JaxCalculator

        calc = JaxCalculator(checkpoint)
    else:
        calc = Calculator(checkpoint)
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




def test_freeze_jaxexport_gives_the_model_numbers(tmp_path, capsys):
    jax = pytest.importorskip("jax")
    import dpa2_jax as dj
    from dpa2_core.neighbors.extension import extension

    out = tmp_path / "water.jaxexport"
    assert main(["freeze", str(MODEL_DP), "-o", str(out), "--dtype", "float32"]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"dpa2 freeze: jax-export {out} (float32, type_map ['O', 'H'], "
                           "rcut 6.0 Å, nnei 120")
    program = dj.load_exported(out)
    coord, atype = cluster(16)
    config, params = dj.load_model(MODEL_DP, dtype="float32")
    inputs = lower_inputs(config.descriptor, {"c": (coord, atype, None)})
    args = [inputs[f"c/{k}"] for k in ("coord_ext", "atype_ext", "nlist", "mapping")]
    got = program(*args)
    ext = dj.Extension(*(jax.numpy.asarray(x) for x in extension(coord, atype,
                                                                 config.descriptor)))
    atom_e, force, _ = dj.energy_force_virial(params, config,
                                              jax.numpy.asarray(coord, "float32"), ext)
    np.testing.assert_allclose(got["energy"][:, 0], np.sum(atom_e, -1), rtol=1e-5)
    np.testing.assert_allclose(local_force(got["force_ext"], args[3], 16), force, rtol=1e-5,
                               atol=1e-5)


def test_freeze_errors_are_one_line(tmp_path, capsys):
    assert main(["freeze", str(MODEL_DP), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err == (f"dpa2 freeze: error: -o {tmp_path / 'm.onnx'}: unknown output suffix "
                   "'.onnx'; one of ['.dp', '.jaxexport', '.json', '.pt2', '.pte', '.yaml']\n")
    assert main(["freeze", str(tmp_path / "none.dp"), "-o", str(tmp_path / "m.pte")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "m.pte").exists()
    assert main(["freeze", str(MODEL_DP), "-o", str(tmp_path / "m.dp"), "--dtype",
                 "float32"]) == 2
    assert "--dtype float32: a deepmd-kit model file keeps" in capsys.readouterr().err
    assert not (tmp_path / "m.dp").exists()
