"""Shared builders of the torch-shim tests: tiny configs, inputs, deepmd-kit oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import cluster, random_stats, tiny_dict, triclinic
from oracle import deepmd_inputs

import dpa2_core as dc
from dpa2_torch import DescrptDPA2

# a configuration matrix touching every branch of the core (sub-lists, strip/concat,
# three-body, update styles, exclusions, non-smooth, h2 updates, attention, econf...)
MATRIX = {
    "default": tiny_dict(),
    "three_body_strip_residual": tiny_dict(
        repinit={"use_three_body": True, "three_body_sel": 20, "three_body_rcut": 3.0,
                 "three_body_rcut_smth": 0.5, "tebd_input_mode": "strip"},
        repformer={"update_style": "res_residual", "update_h2": True, "attn2_has_gate": True}),
    "nonsmooth_exclude_incr": tiny_dict(
        repformer={"update_style": "res_incr", "direct_dist": True, "g1_out_conv": False,
                   "g1_out_mlp": False},
        smooth=False, exclude_types=[[0, 1]], concat_output_tebd=False),
    "one_side_tebd_const": tiny_dict(
        repinit={"type_one_side": True, "resnet_dt": True, "tebd_input_mode": "strip"},
        repformer={"update_style": "res_residual", "update_residual_init": "const",
                   "trainable_ln": False, "update_g1_has_attn": False},
        add_tebd_to_repinit_out=True, use_tebd_bias=True, use_econf_tebd=True),
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; it also keeps timings stable on a busy host
    (two OpenMP threads on two shared cores spin-wait badly). Import it to activate it."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_module(name: str = "default", seed: int = 0, stats: bool = True) -> DescrptDPA2:
    config = dc.DPA2Config.from_dict(MATRIX[name])
    params = dc.init_params(config, seed)
    return DescrptDPA2(config, params=random_stats(params, seed) if stats else params)


def structure(kind: str = "triclinic", n: int = 20, seed: int = 1):
    """(coord (1, n, 3), atype (1, n), box (1, 3, 3) or None) as numpy float64."""
    if kind == "triclinic":
        return triclinic(n, seed)
    coord, atype = cluster(n, seed)
    return coord, atype, None


def ext_inputs(config, coord, atype, box) -> tuple[torch.Tensor, ...]:
    """(coord_ext, atype_ext, nlist, mapping) as torch tensors from deepmd-kit's builder."""
    ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, config.nsel)
    return tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in (ce, ae, nl, mp))


def deepmd_param_count(serialized) -> int:
    """Weights deepmd-kit's PyTorch DPA-2 trains, read off its serialized dict: every w, b,
    idt, LayerNorm w/b and residual vector (``@variables`` entries other than davg/dstd),
    or none when the descriptor's ``trainable`` is False. deepmd's constructor sets
    ``requires_grad = trainable`` on all parameters last, so the per-LayerNorm
    ``trainable`` flag (``trainable_ln``) does not count."""
    if isinstance(serialized, dict) and serialized.get("type") == "dpa2" \
            and serialized.get("trainable") is False:
        return 0
    if isinstance(serialized, list):
        return sum(deepmd_param_count(x) for x in serialized)
    if not isinstance(serialized, dict):
        return 0
    total = 0
    for key, value in serialized.items():
        if key == "@variables":
            for name, arr in value.items():
                if name in ("davg", "dstd") or arr is None:
                    continue
                arrays = arr if isinstance(arr, list) else [arr]
                total += sum(int(np.asarray(a).size) for a in arrays)
        else:
            total += deepmd_param_count(value)
    return total
