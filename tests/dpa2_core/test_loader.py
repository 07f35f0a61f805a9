"""The one model loader: kinds recognised by content, every kind read or refused in one line."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from conftest import cluster, tiny_dict
from oracle import MODEL_DP, deepmd_call

import dpa2_core as dc
from dpa2_core.io import load_descriptor, load_model, model_kind
from dpa2_core.io.kinds import checkpoint_container
from dpa2_core.model.params import tree_paths

CKPT = MODEL_DP.with_suffix(".ckpt.pt")
INPUT = MODEL_DP.with_suffix(".input.json")


def _encode(obj):
    """deepmd-kit's JSON/YAML array encoding."""
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"@class": "np.ndarray", "value": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _same(a: dc.DeepmdModel, b: dc.DeepmdModel) -> None:
    for x, y in ((a.params, b.params), (a.fitting_params, b.fitting_params)):
        got = dict(tree_paths(y))
        for path, leaf in tree_paths(x):
            np.testing.assert_array_equal(leaf, got[path], err_msg=str(path))
    np.testing.assert_array_equal(a.out_bias, b.out_bias)


def test_kinds_come_from_the_content_not_the_extension(tmp_path):
    assert model_kind(MODEL_DP) == "deepmd-dp"
    assert model_kind(CKPT) == "deepmd-pt-checkpoint"
    assert model_kind(INPUT) == "deepmd-input"
    assert model_kind(MODEL_DP.with_suffix(".lcurve.out")) == "unknown"
    ref = load_model(MODEL_DP)
    for src, name in ((MODEL_DP, "model.bin"), (CKPT, "model.npz")):
        shutil.copyfile(src, tmp_path / name)
        assert model_kind(tmp_path / name) == model_kind(src)
        _same(load_model(tmp_path / name), ref)
    _same(load_model(CKPT), ref)  # the checkpoint holds the .dp's weights


def test_json_models_and_descriptor_only_files(tmp_path):
    # (YAML is the same tree; yaml.safe_dump of this model takes minutes, so JSON only)
    tree = _encode(dc.io.deepmd_files.read_deepmd_file(MODEL_DP))
    (tmp_path / "m.json").write_text(json.dumps(tree))
    ref = load_model(MODEL_DP)
    for name, kind in (("m.json", "deepmd-json"),):
        assert model_kind(tmp_path / name) == kind
        _same(load_model(tmp_path / name), ref)
    (tmp_path / "d.json").write_text(json.dumps(tree["model"]["descriptor"]))
    assert model_kind(tmp_path / "d.json") == "deepmd-descriptor"
    with pytest.raises(ValueError, match=r"d\.json: a deepmd-kit DPA-2 descriptor \(no fitting"):
        load_model(tmp_path / "d.json")
    config, params = load_descriptor(tmp_path / "d.json")
    assert config.repinit == ref.config.repinit
    dc.save(tmp_path / "own.npz", ref.config, ref.params)
    assert model_kind(tmp_path / "own.npz") == "dpa2-npz"
    with pytest.raises(ValueError, match="own.npz: a dpa2 descriptor file.*dpa2 describe"):
        load_model(tmp_path / "own.npz")
    assert load_descriptor(tmp_path / "own.npz")[0] == ref.config


def test_yaml_model_round_trip(tmp_path):
    """A tiny model written as deepmd-kit YAML reads back (kind from the content, every
    parameter bit-equal), and deepmd-kit's own reader of that YAML gives the energy of the
    model written as .dp."""
    import deepmd.dpmodel.model  # noqa: F401  (registers the model classes)
    from deepmd.dpmodel.model.base_model import BaseModel
    from deepmd.dpmodel.utils.serialization import load_dp_model
    from export_helpers import tiny_model

    record = tiny_model(seed=2)
    dc.io.save_deepmd_model(record, tmp_path / "m.yaml")
    dc.io.save_deepmd_model(record, tmp_path / "m.dp")
    shutil.copyfile(tmp_path / "m.yaml", tmp_path / "m.txt")
    for name in ("m.yaml", "m.txt"):
        assert model_kind(tmp_path / name) == "deepmd-yaml"
        back = load_model(tmp_path / name)
        assert back.config == record.config and back.fitting_config == record.fitting_config
        _same(back, record)
    coord, atype = cluster(12)
    energies = [BaseModel.deserialize(load_dp_model(str(tmp_path / n))["model"]).call(
        coord.reshape(1, -1), atype)["energy"] for n in ("m.yaml", "m.dp")]
    assert np.isfinite(energies[0]).all()
    np.testing.assert_array_equal(energies[0], energies[1])


def test_wrong_kinds_are_refused_in_one_line_saying_what_reads_them(tmp_path):
    with zipfile.ZipFile(tmp_path / "m.pt2", "w") as z:
        z.writestr("m/data/aotinductor/model/x.so", b"")
    (tmp_path / "m.jaxexport").write_bytes(b"\x00" * 32)
    (tmp_path / "bad.dp").write_bytes(b"\x89HDF\r\n\x1a\n" + b"x" * 100)
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    cases = {"m.pt2": ("torch-aoti-pt2", "the torch shim's Calculator"),
             "m.jaxexport": ("jax-export", "the JAX shim's Calculator"),
             "bad.dp": ("damaged-hdf5", "damaged HDF5"),
             "other.npz": ("npz", "no dpa2 file")}
    for name, (kind, text) in cases.items():
        assert model_kind(tmp_path / name) == kind
        with pytest.raises(ValueError, match=text) as err:
            load_model(tmp_path / name)
        assert str(tmp_path / name) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="nope.dp: no such file"):
        load_model(tmp_path / "nope.dp")
    with pytest.raises(ValueError, match="head='x', but only deepmd-kit .pt checkpoints"):
        load_model(MODEL_DP, head="x")


def test_nsel_lists_sum_as_deepmd_kit_reads_them():
    """deepmd-kit's RepinitArgs(nsel=[...]) (its own tests build nsel=[7]): the list is
    summed; the descriptor equals deepmd-kit's on the same structure."""
    from deepmd.dpmodel.descriptor.dpa2 import DescrptDPA2, RepformerArgs, RepinitArgs

    d = tiny_dict()
    ri = {**d["repinit"], "nsel": [40, 20]}
    rf = {**d["repformer"], "nsel": [30]}
    serialized = DescrptDPA2(2, RepinitArgs(**ri), RepformerArgs(**rf), type_map=["O", "H"],
                             seed=3).serialize()
    config, params = dc.load_deepmd(serialized)
    assert (config.repinit.nsel, config.repformer.nsel) == (60, 30)
    coord, atype = cluster(16)
    coord_ext, atype_ext, mapping, nlist = dc.build_neighbor_list(coord, atype, config)
    ours = dc.descriptor(params, config, coord_ext, atype_ext, nlist, mapping)
    ref = deepmd_call(serialized, coord_ext, atype_ext, nlist, mapping)
    np.testing.assert_allclose(ours.descriptor, ref[0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"repinit.nsel=\[40, 'a'\]"):
        dc.DPA2Config.from_dict(tiny_dict(repinit={"nsel": [40, "a"]}))


@pytest.mark.parametrize(("tag", "container"), [
    ("dpa2-torch-checkpoint", "torch"), ("dpa2-jax-checkpoint", "jax"),
    ("dpa2_torch", "torch"), ("dpa2_jax-checkpoint", "jax"),  # as 0.1.0 wrote them
    ("dpa2", None), ("dpa2-numpy-checkpoint", None), ("dpa2-torch-model", None),
    ("torch", None), (None, None), (3, None)])
def test_checkpoint_tags_name_their_container(tag, container):
    assert checkpoint_container(tag) == container


def test_checkpoints_with_the_first_tags_are_still_recognised(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"format": "dpa2_torch", "version": 1, "step": 0}, tmp_path / "old.pt")
    assert model_kind(tmp_path / "old.pt") == "dpa2-torch-checkpoint"
    meta = json.dumps({"format": "dpa2_jax-checkpoint", "step": 0})
    np.savez(tmp_path / "old.npz", __meta__=np.array(meta))
    assert model_kind(tmp_path / "old.npz") == "dpa2-jax-checkpoint"
