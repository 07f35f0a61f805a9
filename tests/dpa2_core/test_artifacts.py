"""The artifact contract without a framework: suffixes, precisions, metadata checks,
kinds read from content, and the loader pointing artifacts to their loaders."""

from __future__ import annotations

import json
import os
import zipfile

import pytest
from conftest import tiny_dict

import dpa2_core as dc
from dpa2_core.io import artifacts as art
from dpa2_core.io.loader import load_model, model_kind


def _meta(kind: str = "jax-export") -> dict:
    config = dc.DPA2Config.from_dict(tiny_dict())
    return art.build_metadata(config, kind, "float32", "int32", {"jax": "0"})


def test_suffixes_and_precisions():
    assert art.kind_of_suffix("a/m.pte") == "torch-export-pte"
    assert art.kind_of_suffix("m.pt2") == "torch-aoti-pt2"
    assert art.kind_of_suffix("m.jaxexport") == "jax-export"
    with pytest.raises(ValueError, match=r"path='m\.dp': unknown artifact suffix '\.dp'"):
        art.kind_of_suffix("m.dp")
    assert art.check_export_precision(None, "float32") == "float32"
    assert art.check_export_precision("float64", "float32") == "float64"
    with pytest.raises(ValueError, match=r"^precision='bfloat16': an exported model carries"):
        art.check_export_precision(None, "bfloat16")
    with pytest.raises(ValueError, match=r"^dtype='float16'"):
        art.check_export_precision("float16", "float64")


def test_metadata_has_the_contract():
    meta = _meta()
    assert {"type_map", "rcut", "nnei", "precision", "version", "inputs", "outputs"} <= set(meta)
    assert (meta["type_map"], meta["rcut"], meta["nnei"]) == (["O", "H"], 4.5, 60)
    assert [(i["name"], i["shape"], i["dtype"]) for i in meta["inputs"]] == [
        ("coord_ext", ["nf", "nall", 3], "float32"), ("atype_ext", ["nf", "nall"], "int32"),
        ("nlist", ["nf", "nloc", "nnei"], "int32"), ("mapping", ["nf", "nall"], "int32")]
    assert [(o["name"], o["shape"]) for o in meta["outputs"]] == [
        ("energy", ["nf", 1]), ("atom_energy", ["nf", "nloc", 1]),
        ("force_ext", ["nf", "nall", 3]), ("virial", ["nf", 9])]
    config = dc.DPA2Config.from_dict({**tiny_dict(), "type_map": None})
    with pytest.raises(ValueError, match="^type_map=None: an exported model must name"):
        art.build_metadata(config, "jax-export", "float32", "int32", {})


def test_parse_metadata_names_the_problem(tmp_path):
    text = json.dumps(_meta())
    assert art.parse_metadata(text, "m.jaxexport", "jax-export")["kind"] == "jax-export"
    cases = {"": "no metadata.json", "{": "is not JSON",
             json.dumps({"format": "other"}): "format 'other' is not 'dpa2-export'",
             json.dumps({**_meta(), "version": 7}): "format version 7; this dpa2 reads "
             "version 1",
             text.replace('"jax-export"', '"torch-export-pte"'):
             "a 'torch-export-pte' artifact, not 'jax-export'"}
    for bad, message in cases.items():
        with pytest.raises(ValueError, match=message):
            art.parse_metadata(bad, "m.jaxexport", "jax-export")


def test_jaxexport_container_round_trip_and_kinds(tmp_path):
    path = art.write_jaxexport(tmp_path / "m.jaxexport", b"program", _meta())
    assert art.artifact_kind(path) == "jax-export" == model_kind(path)
    blob, meta = art.read_jaxexport(path)
    assert blob == b"program" and meta == _meta()
    assert [p.name for p in tmp_path.iterdir()] == ["m.jaxexport"]  # no temporary left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    with pytest.raises(ValueError, match=r"m\.jaxexport: an exported JAX program"):
        load_model(path)
    other = tmp_path / "x.jaxexport"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("a.txt", "")
    assert art.artifact_kind(other) is None
    with pytest.raises(ValueError, match=r"x\.jaxexport: not a 'jax-export' artifact \(a zip"):
        art.read_jaxexport(other)
    with pytest.raises(FileNotFoundError, match="no such file"):
        art.read_jaxexport(tmp_path / "none.jaxexport")
