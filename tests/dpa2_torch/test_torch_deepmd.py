"""deepmd-kit models in the torch shim: the real training checkpoint, whole .dp models
(descriptor + fitting + out_bias), multi-task heads, and a tiny model against deepmd.jax."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from oracle import MODEL_DP, SHARED, deepmd_call, deepmd_energy_model, water_frames
from torch_helpers import (
    ext_inputs,
    one_thread,  # noqa: F401  (autouse fixture)
    structure,
    tiny_module,
)

import dpa2_core as dc
from dpa2_core.model.params import tree_paths
from dpa2_torch import DescrptDPA2, EnergyModel
from dpa2_torch.deepmd_io import model_from_file

CKPT = SHARED / "models" / "water_dpa2_small.ckpt.pt"


@pytest.fixture(scope="module")
def water():
    coord, atype, box = water_frames(0, (0,))
    return coord, atype, box


@pytest.fixture(scope="module")
def dp_model():
    import deepmd.dpmodel.model  # noqa: F401  (registers the model classes)
    from deepmd.dpmodel.model.base_model import BaseModel

    return BaseModel.deserialize(dc.io.deepmd_files.read_deepmd_file(MODEL_DP)["model"])


def test_checkpoint_holds_the_dp_weights():
    """The .pt checkpoint and the .dp file are the same trained model (same arrays)."""
    from_ckpt = DescrptDPA2.from_deepmd(CKPT)
    config, params = dc.load_deepmd(MODEL_DP)
    assert dataclasses.replace(from_ckpt.config, seed=None) == config
    for (p, x), (q, y) in zip(tree_paths(from_ckpt.numpy_params()), tree_paths(params),
                              strict=True):
        assert p == q and np.array_equal(x, y), p


def test_checkpoint_descriptor_matches_deepmd(water):
    m = DescrptDPA2.from_deepmd(CKPT)
    coord, atype, box = water
    args = ext_inputs(m.config, coord, atype, box)
    ours = m(*args)
    ref = deepmd_call(dc.dump_deepmd(*dc.load_deepmd(MODEL_DP)), *(x.numpy() for x in args))
    for x, y in zip(ours, ref, strict=True):
        err = np.abs(x.detach().numpy() - y).max()
        assert err <= 1e-10 * np.abs(y).max()


def test_whole_model_matches_deepmd(water, dp_model):
    """Energy (fitting + bias_atom_e + out_bias) equals deepmd's; forces equal central
    differences of deepmd's energies; the checkpoint gives the same model."""
    coord, atype, box = water
    model = EnergyModel.from_deepmd(MODEL_DP)
    c, a, b = (torch.from_numpy(x) for x in (coord, atype, box))
    out = model(c, a, b)
    ref = dp_model.call(coord.reshape(1, -1), atype, box.reshape(1, 9))
    np.testing.assert_allclose(out["energy"].detach().numpy(), ref["energy"][:, 0], rtol=1e-12)
    np.testing.assert_allclose(out["atom_energy"].detach().numpy(), ref["atom_energy"][..., 0],
                               rtol=0, atol=1e-10)
    h = 1e-4
    for i, k in [(0, 0), (100, 2)]:
        e = []
        for sign in (1, -1):
            x = coord.copy()
            x[0, i, k] += sign * h
            e.append(dp_model.call(x.reshape(1, -1), atype, box.reshape(1, 9))["energy"][0, 0])
        fd = -(e[0] - e[1]) / (2 * h)
        assert abs(fd - out["force"][0, i, k].item()) < 1e-6
    ckpt_model = EnergyModel.from_deepmd(CKPT)
    torch.testing.assert_close(ckpt_model(c, a, b)["energy"], out["energy"], rtol=0, atol=1e-9)


def _tiny_deepmd_model(seed: int = 0) -> dict:
    """A tiny whole deepmd-kit energy model dict with non-zero bias_atom_e and out_bias."""
    return deepmd_energy_model(tiny_module("three_body_strip_residual").to_deepmd(), seed)


def test_tiny_model_energy_force_virial_match_deepmd():
    """A tiny whole model: energies equal deepmd's dpmodel; forces and virial equal central
    differences of deepmd's energies under displacements and strains."""
    from deepmd.dpmodel.model.base_model import BaseModel

    d = _tiny_deepmd_model()
    ref = BaseModel.deserialize(d)
    coord, atype, box = structure("triclinic", n=10)  # fewer neighbors than nsel: smooth E

    def energy(x, cell):
        return ref.call(x.reshape(1, -1), atype, cell.reshape(1, 9))["energy"][0, 0]

    ours = EnergyModel.from_deepmd(d)(*(torch.from_numpy(x) for x in (coord, atype, box)))
    assert abs(ours["energy"].item() - energy(coord, box)) < 1e-12 * abs(energy(coord, box))
    h = 1e-5
    for i, k in [(0, 0), (5, 1), (9, 2)]:
        step = np.zeros_like(coord)
        step[0, i, k] = h
        fd = -(energy(coord + step, box) - energy(coord - step, box)) / (2 * h)
        assert abs(fd - ours["force"][0, i, k].item()) < 1e-7
    for a, b in [(0, 0), (0, 1), (1, 0), (2, 1)]:
        strain = np.zeros((3, 3))
        strain[a, b] = h
        up, down = np.eye(3) + strain, np.eye(3) - strain
        fd = -(energy(coord @ up, box @ up) - energy(coord @ down, box @ down)) / (2 * h)
        # deepmd's layout: W[b, a] = sum F_b x_a = -dE/d(strain[a, b]); the random per-
        # component dstd makes this model anisotropic, so W is not symmetric here
        assert abs(fd - ours["virial"][0, b, a].item()) < 1e-6


def _multitask(tmp_path):
    ckpt = torch.load(CKPT, map_location="cpu", weights_only=True)
    state, params = ckpt["model"], ckpt["model"]["_extra_state"]["model_params"]
    multi = {"_extra_state": {"model_params": {"model_dict": {"water": params,
                                                                "other": params}}}}
    for key, value in state.items():
        if key.startswith("model.Default."):
            rest = key[len("model.Default."):]
            multi[f"model.water.{rest}"] = value
            multi[f"model.other.{rest}"] = value * 2 if "matrix" in rest else value
    path = tmp_path / "multi.pt"
    torch.save({"model": multi}, path)
    return path


def test_multitask_checkpoint_heads(tmp_path):
    path = _multitask(tmp_path)
    first, other = DescrptDPA2.from_deepmd(path), DescrptDPA2.from_deepmd(path, head="other")
    water = DescrptDPA2.from_deepmd(path, head="water")
    assert torch.equal(first.repinit.embedding[0].w, water.repinit.embedding[0].w)
    assert torch.equal(other.repinit.embedding[0].w, 2 * water.repinit.embedding[0].w)
    with pytest.raises(ValueError, match=r"head='nope'.*\['water', 'other'\]"):
        DescrptDPA2.from_deepmd(path, head="nope")


def test_unsupported_models_are_named(tmp_path):
    d = dc.io.deepmd_files.read_deepmd_file(MODEL_DP)
    d["model"]["fitting"]["numb_fparam"] = 2
    with pytest.raises(ValueError, match="numb_fparam"):
        model_from_file(d)
    d = dc.io.deepmd_files.read_deepmd_file(MODEL_DP)
    d["model"]["pair_exclude_types"] = [[0, 1]]
    with pytest.raises(ValueError, match="pair_exclude_types"):
        model_from_file(d)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a deepmd-kit PyTorch training checkpoint"):
        DescrptDPA2.from_deepmd(tmp_path / "plain.pt")
