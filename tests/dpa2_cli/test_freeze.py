"""``dpa2 freeze``: a deepmd-kit model file becomes an artifact whose numbers are the
model's; unknown suffixes and unloadable inputs are one-line errors (exit status 2)."""

from __future__ import annotations

import jax
import numpy as np
from conftest import cluster
from export_helpers import local_force, lower_inputs
from oracle import MODEL_DP

import dpa2_jax as dj
from dpa2_cli import main


def test_freeze_jaxexport_gives_the_model_numbers(tmp_path, capsys):
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
    from dpa2_core.neighbors.extension import extension

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
                   "'.onnx'; one of ['.jaxexport', '.pt2', '.pte']\n")
    assert main(["freeze", str(tmp_path / "none.dp"), "-o", str(tmp_path / "m.pte")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "m.pte").exists()
