"""DescrptDPA2 as a module: parameter storage, trainability, round trips, dtype/device."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from oracle import MODEL_DP
from torch_helpers import (
    MATRIX,
    deepmd_param_count,
    ext_inputs,
    one_thread,  # noqa: F401  (autouse fixture)
    structure,
    tiny_module,
)

import dpa2_core as dc
from dpa2_core.model.params import tree_paths
from dpa2_torch import DescrptDPA2


def _key(path: tuple) -> str:
    return ".".join(map(str, path))


def test_state_dict_mirrors_pytree():
    m = tiny_module("three_body_strip_residual")
    spec = dict(tree_paths(dc.param_spec(m.config)))
    assert set(m.state_dict()) == {_key(p) for p in spec}
    for path, leaf in spec.items():
        assert tuple(m.state_dict()[_key(path)].shape) == leaf.shape
    buffers = {name for name, _ in m.named_buffers()}
    assert buffers == {_key(p) for p in spec if p[-1] in ("davg", "dstd")}
    assert isinstance(m.repformer.layers[0].g1_residual, torch.nn.ParameterList)


def test_params_are_the_live_parameters():
    """Parameters go to the core as-is: no copy, no detach."""
    m = tiny_module()
    tree = m.params()
    assert tree["repinit"]["embedding"][0]["w"] is m.repinit.embedding[0].w
    assert tree["repformer"]["davg"] is m.repformer.davg
    assert all(isinstance(x, torch.nn.Parameter) for p, x in tree_paths(tree)
               if p[-1] not in ("davg", "dstd"))


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_trainable_count_equals_deepmd(name):
    """deepmd-kit's PyTorch model trains exactly these weights (count read off its dict)."""
    m = tiny_module(name)
    ours = sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert ours == deepmd_param_count(m.to_deepmd())
    assert ours > 0


def test_trainable_count_of_the_real_model():
    """472,938: ``sum(p.numel() for p in model.parameters() if p.requires_grad)`` of
    deepmd-kit 3.2.0's PyTorch ``DescrptDPA2`` built from the shared input's descriptor
    section (measured once with deepmd.pt, which cannot be imported beside torch 2.13)."""
    m = DescrptDPA2.from_deepmd(MODEL_DP)
    ours = sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert ours == deepmd_param_count(m.to_deepmd()) == 472_938


def test_trainable_flags():
    """trainable_ln=False freezes nothing: deepmd-kit's PyTorch DPA-2 resets every
    parameter's requires_grad to the descriptor's ``trainable`` after construction."""
    m = tiny_module("one_side_tebd_const")  # trainable_ln = False
    assert any("attn2_lm" in n for n, _ in m.named_parameters())
    assert all(p.requires_grad for p in m.parameters())
    off = DescrptDPA2(dataclasses.replace(m.config, trainable=False))
    assert not any(p.requires_grad for p in off.parameters())


def test_state_dict_round_trip(tmp_path):
    a, b = tiny_module(seed=1), tiny_module(seed=2)
    torch.save(a.state_dict(), tmp_path / "sd.pt")
    b.load_state_dict(torch.load(tmp_path / "sd.pt", weights_only=True))
    for (pa, xa), (pb, xb) in zip(tree_paths(a.params()), tree_paths(b.params()), strict=True):
        assert pa == pb and torch.equal(xa, xb)


@pytest.mark.parametrize("name", ["default", "three_body_strip_residual"])
def test_to_deepmd_round_trip(name):
    """to_deepmd -> load_deepmd / from_deepmd gives the same arrays and the same numbers."""
    m = tiny_module(name)
    config, params = dc.load_deepmd(m.to_deepmd())
    assert config == m.config
    for (p, x), (q, y) in zip(tree_paths(params), tree_paths(m.numpy_params()), strict=True):
        assert p == q and np.array_equal(x, y)
    back = DescrptDPA2.from_deepmd(m.to_deepmd())
    args = ext_inputs(m.config, *structure())
    for x, y in zip(back(*args), m(*args), strict=True):
        assert torch.equal(x, y)


def test_from_params_and_save(tmp_path):
    m = tiny_module()
    twin = DescrptDPA2.from_params(m.config, m.params())
    m.save(tmp_path / "m.npz")
    config, params = dc.load(tmp_path / "m.npz")
    loaded = DescrptDPA2.from_params(config, params)
    with torch.no_grad():
        twin.repinit.embedding[0].w.add_(1.0)  # copies: the original is untouched
    assert not torch.equal(twin.repinit.embedding[0].w, m.repinit.embedding[0].w)
    assert torch.equal(loaded.repinit.embedding[0].w, m.repinit.embedding[0].w)


def test_dtype_follows_module():
    m = tiny_module()
    args = ext_inputs(m.config, *structure())
    ref = m(*args).descriptor
    m32 = tiny_module().float()
    assert m32.config.precision == "float32"
    out = m32(args[0].float(), *args[1:]).descriptor
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-4)
    assert m32.to_deepmd()["precision"] == "float32"
    assert m32.double().config.dtype_name == "float64"
    assert torch.equal(m32(*args).descriptor, m32(*args).descriptor)


def test_meta_device_forward_has_no_host_sync():
    """On 'meta' tensors any value read (.item(), bool(), numpy) raises: forward has none,
    and every array the core creates follows the inputs' device."""
    m = tiny_module("three_body_strip_residual").to("meta")
    args = [x.to("meta") for x in ext_inputs(m.config, *structure())]
    out = m(*args)
    assert all(x.device.type == "meta" for x in out)
    assert out.descriptor.shape == (1, 20, m.config.dim_out)


@pytest.mark.filterwarnings("ignore:nsel=60 is smaller")  # truncation is part of the contract
def test_forward_structure_matches_extended_call():
    m = tiny_module()
    coord, atype, box = structure()
    c = torch.from_numpy(coord[0]).requires_grad_(True)
    out = m.forward_structure(c, torch.from_numpy(atype[0]), torch.from_numpy(box[0]))
    ref = m(*ext_inputs(m.config, coord, atype, box))
    assert out.descriptor.shape == ref.descriptor.shape[1:]
    torch.testing.assert_close(out.descriptor, ref.descriptor[0], rtol=0, atol=1e-12)
    out.descriptor.sum().backward()
    assert c.grad is not None and torch.isfinite(c.grad).all()
