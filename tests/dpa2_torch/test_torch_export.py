""".pte artifacts: loaded by torch alone (dpa2 blocked) they give the eager model's
energy, atom energies, forces and virial on water (192), a 1,536-atom box and a cluster.

The eager reference is :meth:`EnergyModel.forward` on the plain structures (the force
summed from ``force_ext`` through ``mapping`` must equal its local force), so the test
also checks the lower contract, not only that export preserves a function.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from export_helpers import (
    SYSTEMS,
    check_calculator_on_artifact,
    local_force,
    lower_inputs,
    run_host,
    structures,
    tiny_model,
)

from dpa2_torch import EnergyModel, export_model, load_exported
from dpa2_torch.descriptor import DescrptDPA2

TOL = {"float64": 1e-10, "float32": 1e-5}
TORCH_HOST = '''
    import torch

    def load(path):
        if path.endswith(".pte"):
            extra = {"metadata.json": ""}
            program = torch.export.load(path, extra_files=extra).module()
            return program, json.loads(extra["metadata.json"])
        program = torch._inductor.aoti_load_package(path)
        return program, json.loads(program.get_metadata()["metadata.json"])

    def run(program, meta, args):
        dtype = getattr(torch, meta["precision"])
        coord, *ints = (torch.from_numpy(a) for a in args)
        out = program(coord.to(dtype), *(x.to(torch.int64) for x in ints))
        return {k: v.detach().double().numpy() for k, v in out.items()}
'''


def energy_model(dtype: str = "float64") -> EnergyModel:
    m = tiny_model()
    model = EnergyModel(DescrptDPA2(m.config, params=m.params), m.fitting_config,
                        m.fitting_params, m.out_bias)
    return model.to(getattr(torch, dtype)).eval()


def eager(model: EnergyModel, systems: dict, dtype: str) -> dict[str, dict]:
    out = {}
    for name, (coord, atype, box) in systems.items():
        t = getattr(torch, dtype)
        r = model(torch.from_numpy(coord).to(t), torch.from_numpy(atype),
                  None if box is None else torch.from_numpy(box).to(t))
        out[name] = {k: v.detach().double().numpy() for k, v in r.items()}
    return out


def check(results: dict, tag: str, ref: dict, inputs: dict, tol: float) -> None:
    for system in SYSTEMS:
        r, got = ref[system], {k: results[f"{tag}/{system}/{k}"] for k in
                               ("energy", "atom_energy", "force_ext", "virial")}
        nloc = got["atom_energy"].shape[1]
        pairs = {"energy": (got["energy"][:, 0], r["energy"]),
                 "atom_energy": (got["atom_energy"][..., 0], r["atom_energy"]),
                 "force": (local_force(got["force_ext"], inputs[f"{system}/mapping"], nloc),
                           r["force"]),
                 "virial": (got["virial"], r["virial"].reshape(-1, 9))}
        for key, (a, b) in pairs.items():
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"{tag} {system} {key}")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """One .pte per precision (export dominates this file's time)."""
    folder = tmp_path_factory.mktemp("pte")
    model = energy_model()
    paths, metas = {}, {}
    for dtype in TOL:
        paths[dtype] = str(folder / f"tiny_{dtype}.pte")
        metas[dtype] = export_model(model, paths[dtype], dtype=dtype)
    return paths, metas


def test_pte_loads_without_dpa2_and_matches_eager(artifacts, tmp_path):
    """One host process runs both precisions on the three systems; the metadata it read
    through ``extra_files`` is the contract export_model returned."""
    paths, metas = artifacts
    systems = structures()
    inputs = lower_inputs(energy_model().config, systems)
    results = run_host(tmp_path, TORCH_HOST, inputs, {f"pte-{d}": p for d, p in paths.items()})
    for dtype, tol in TOL.items():
        check(results, f"pte-{dtype}", eager(energy_model(dtype), systems, dtype), inputs, tol)
        meta = results[f"pte-{dtype}/metadata"]
        assert meta == {k: v for k, v in metas[dtype].items() if k != "export_seconds"}
        assert (meta["type_map"], meta["rcut"], meta["nnei"], meta["precision"],
                meta["version"]) == (["O", "H"], 4.5, 60, dtype, 1)
        assert [i["name"] for i in meta["inputs"]] == ["coord_ext", "atype_ext", "nlist",
                                                      "mapping"]
        assert [o["name"] for o in meta["outputs"]] == ["energy", "atom_energy", "force_ext",
                                                       "virial"]


def test_load_exported_is_the_calculator_hook(artifacts):
    """``load_exported`` gives the ``_evaluate(coord_ext, atype_ext, nlist, mapping)``
    callable: numpy in, numpy dict out, the same numbers as the eager lower call."""
    from dpa2_torch.export import lower_forward

    paths, _ = artifacts
    program = load_exported(paths["float64"])
    assert (program.type_map, program.rcut, program.nnei) == (["O", "H"], 4.5, 60)
    inputs = lower_inputs(energy_model().config, {"cluster": structures()["cluster"]})
    args = [inputs[f"cluster/{k}"] for k in ("coord_ext", "atype_ext", "nlist", "mapping")]
    out = program(*args)
    ref = lower_forward(energy_model(), *(torch.from_numpy(a) for a in args))
    for key, value in ref.items():
        np.testing.assert_allclose(out[key], value.numpy(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"nlist: shape .*\(nf, nloc, 60\)"):
        program(args[0], args[1], args[2][..., :10], args[3])


def test_export_refuses_what_it_cannot_carry(tmp_path):
    model = energy_model()
    with pytest.raises(ValueError, match=r"dtype='float16': an exported model carries float64 "
                                         "or float32 only"):
        export_model(model, tmp_path / "m.pte", dtype="float16")
    with pytest.raises(ValueError, match=r"unknown artifact suffix '\.onnx'"):
        export_model(model, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"dpa2_torch writes \.pte or \.pt2"):
        export_model(model, tmp_path / "m.jaxexport")
    with pytest.raises(ValueError, match="not an EnergyModel"):
        export_model(model.descriptor, tmp_path / "m.pte")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_load_refuses_wrong_kind_and_version(artifacts, tmp_path):
    paths, _ = artifacts
    renamed = tmp_path / "renamed.pt2"
    renamed.write_bytes(open(paths["float64"], "rb").read())
    with pytest.raises(ValueError, match=r"renamed\.pt2: a 'torch-export-pte' artifact, not "
                                         "'torch-aoti-pt2'"):
        load_exported(renamed)
    not_zip = tmp_path / "model.pte"
    not_zip.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(ValueError, match=r"model\.pte: not a 'torch-export-pte' artifact "
                                         r"\(an HDF5 file"):
        load_exported(not_zip)
    # a future format version: rewrite metadata.json inside the archive
    future = tmp_path / "future.pte"
    with zipfile.ZipFile(paths["float64"]) as src, zipfile.ZipFile(future, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("extra/metadata.json"):
                data = json.dumps({**json.loads(data), "version": 99}).encode()
            dst.writestr(item, data)
    with pytest.raises(ValueError, match=r"future\.pte: dpa2 export format version 99; this "
                                         "dpa2 reads version 1"):
        load_exported(future)
    with pytest.raises(ValueError, match="read by dpa2_jax.load_exported"):
        load_exported(tmp_path / "x.jaxexport")


@pytest.mark.parametrize("dtype", list(TOL))
def test_calculator_runs_the_artifact(artifacts, dtype):
    pytest.importorskip("ase")
    from dpa2_torch import Calculator

    paths, _ = artifacts
    check_calculator_on_artifact(Calculator, paths[dtype], dtype, TOL[dtype])
