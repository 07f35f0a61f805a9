""".jaxexport artifacts: loaded by jax alone (dpa2 blocked) they give the eager model's
energy, atom energies, forces and virial on water (192), a 1,536-atom box and a cluster.

Eager references: :func:`dpa2_jax.energy_force_virial` on the plain structures (the force
summed from ``force_ext`` through ``mapping`` must equal its local force) and, for the
atom energies, :func:`dpa2_jax.atom_energy` on the same extended inputs.
"""

from __future__ import annotations

import json
import zipfile

import jax
import numpy as np
import pytest
from export_helpers import (
    SYSTEMS,
    check_calculator_on_artifact,
    local_force,
    lower_inputs,
    run_host,
    structures,
    tiny_model,
)

import dpa2_jax as dj

TOL = {"float64": 1e-10, "float32": 1e-5}
JAX_HOST = '''
    import zipfile
    import jax

    def load(path):
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("metadata.json"))
            program = jax.export.deserialize(bytearray(z.read("exported.bin")))
        if meta["int_dtype"] == "int64":
            jax.config.update("jax_enable_x64", True)
        return program, meta

    def run(program, meta, args):
        coord, *ints = args
        return program.call(coord.astype(meta["precision"]),
                            *(x.astype(meta["int_dtype"]) for x in ints))
'''


_EFV = jax.jit(dj.energy_force_virial, static_argnums=1)


def model(dtype: str):
    return dj.from_record(tiny_model(), dtype)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jaxexport")
    paths, metas = {}, {}
    with jax.enable_x64(True):
        for dtype in TOL:
            paths[dtype] = str(folder / f"tiny_{dtype}.jaxexport")
            metas[dtype] = dj.export_model(tiny_model(), paths[dtype], dtype=dtype)
    return paths, metas


def test_jaxexport_loads_without_dpa2_and_matches_eager(artifacts, tmp_path):
    paths, metas = artifacts
    systems = structures()
    config, _ = model("float64")
    inputs = lower_inputs(config.descriptor, systems)
    results = run_host(tmp_path, JAX_HOST, inputs, {d: p for d, p in paths.items()})
    for dtype, tol in TOL.items():
        meta = results[f"{dtype}/metadata"]
        assert meta == {k: v for k, v in metas[dtype].items() if k != "export_seconds"}
        assert (meta["precision"], meta["int_dtype"]) == (dtype, "int64" if dtype == "float64"
                                                          else "int32")
        cfg, params = model(dtype)
        for system in SYSTEMS:
            atype = systems[system][1]
            got = {k: results[f"{dtype}/{system}/{k}"] for k in
                   ("energy", "atom_energy", "force_ext", "virial")}
            ref = eager(cfg, params, systems[system], dtype)
            mapping = inputs[f"{system}/mapping"]
            nloc = atype.shape[1]
            pairs = {"energy": (got["energy"][:, 0], ref["energy"]),
                     "atom_energy": (got["atom_energy"][..., 0], ref["atom_energy"]),
                     "force": (local_force(got["force_ext"], mapping, nloc), ref["force"]),
                     "virial": (got["virial"], ref["virial"].reshape(-1, 9))}
            for key, (a, b) in pairs.items():
                np.testing.assert_allclose(a, np.asarray(b, dtype=np.float64), rtol=tol,
                                           atol=tol, err_msg=f"{dtype} {system} {key}")


def eager(cfg, params, structure, dtype: str) -> dict:
    """atom_energy (nf, nloc), energy (nf,), force (nf, nloc, 3), virial (nf, 3, 3) of the
    structure-level model."""
    from dpa2_core.neighbors.extension import extension

    coord, atype, box = structure
    ext = dj.Extension(*(jax.numpy.asarray(x) for x in extension(coord, atype,
                                                                 cfg.descriptor, box)))
    atom_e, force, virial = (np.asarray(v, np.float64) for v in _EFV(
        params, cfg, jax.numpy.asarray(coord.astype(dtype)), ext))
    return {"atom_energy": atom_e, "energy": atom_e.sum(-1), "force": force, "virial": virial}


def test_load_exported_is_the_calculator_hook(artifacts):
    from dpa2_jax.export import lower_forward

    paths, _ = artifacts
    program = dj.load_exported(paths["float32"])
    assert (program.type_map, program.rcut, program.nnei) == (["O", "H"], 4.5, 60)
    config, params = model("float32")
    inputs = lower_inputs(config.descriptor, {"cluster": structures()["cluster"]})
    args = [inputs[f"cluster/{k}"] for k in ("coord_ext", "atype_ext", "nlist", "mapping")]
    out = program(*args)
    ref = jax.jit(lower_forward, static_argnums=1)(params, config, args[0].astype("float32"),
                                                   *args[1:])
    for key, value in ref.items():
        np.testing.assert_allclose(out[key], np.asarray(value, np.float64), rtol=1e-6,
                                   atol=1e-6)


def test_export_refuses_what_it_cannot_carry(tmp_path):
    with pytest.raises(ValueError, match=r"dtype='bfloat16': an exported model carries"):
        dj.export_model(tiny_model(), tmp_path / "m.jaxexport", dtype="bfloat16")
    with pytest.raises(ValueError, match=r"dpa2_jax writes \.jaxexport"):
        dj.export_model(tiny_model(), tmp_path / "m.pte")
    with jax.enable_x64(False), pytest.raises(ValueError, match=r"dtype='float64': a float64 "
                                                                 "export needs jax_enable_x64"):
        dj.export_model(model("float32"), tmp_path / "m.jaxexport", dtype="float64")
    assert not list(tmp_path.iterdir())


def test_load_refuses_wrong_kind_and_version(artifacts, tmp_path):
    paths, _ = artifacts
    future = tmp_path / "future.jaxexport"
    with zipfile.ZipFile(paths["float32"]) as src, zipfile.ZipFile(future, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "metadata.json":
                data = json.dumps({**json.loads(data), "version": 2}).encode()
            dst.writestr(item, data)
    with pytest.raises(ValueError, match=r"future\.jaxexport: dpa2 export format version 2; "
                                         "this dpa2 reads version 1"):
        dj.load_exported(future)
    npz = tmp_path / "model.jaxexport"
    with open(npz, "wb") as f:
        np.savez(f, a=np.zeros(2))
    with pytest.raises(ValueError, match=r"model\.jaxexport: not a 'jax-export' artifact"):
        dj.load_exported(npz)
    with pytest.raises(ValueError, match="read by dpa2_torch.load_exported"):
        dj.load_exported(tmp_path / "m.pt2")
    with jax.enable_x64(False), pytest.raises(ValueError, match="needs jax_enable_x64"):
        dj.load_exported(paths["float64"])


@pytest.mark.parametrize("dtype", list(TOL))
def test_calculator_runs_the_artifact(artifacts, dtype):
    pytest.importorskip("ase")
    from dpa2_jax import Calculator

    paths, _ = artifacts
    with jax.enable_x64(True):
        check_calculator_on_artifact(Calculator, paths[dtype], dtype, TOL[dtype])
