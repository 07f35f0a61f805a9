"""Reading deepmd-kit models: PyTorch training checkpoints (.pt) and whole-model files.

A deepmd-kit PyTorch checkpoint is ``{"model": state_dict, "optimizer": ...}``; the
state dict's ``_extra_state["model_params"]`` holds the model section of the training
input, and the weights sit under ``model.<head>.atomic_model.{descriptor,fitting_net}``.
Names are translated onto the core's pytree paths; every path of the spec must be
filled exactly once, so a renamed or missing weight is an error, never a silent zero.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

import dpa2_core as dc
from dpa2_core.io.deepmd_model import DeepmdModel, bias_vector, load_deepmd_model
from dpa2_core.model.fitting import FittingConfig, fitting_spec
from dpa2_core.model.params import tree_map, tree_paths

__all__ = [
    "CHECKPOINT_SUFFIXES", "descriptor_from_checkpoint", "is_checkpoint",
    "model_from_checkpoint", "model_from_file", "read_checkpoint",
]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
# state-dict entries that hold no weight of ours (duplicates, compression tables)
_SKIP = re.compile(r"(^|\.)(_networks|type_embd_data|compress_info|compress_data)(\.|$)")
_DESCRIPTOR_RENAMES = (
    (r"^repinit_three_body\.", "three_body."),
    (r"^repformers\.", "repformer."),
    (r"^g1_shape_tranform\.", "g1_shape_transform."),
    (r"^type_embedding\.embedding\.embedding_net\.layers\.", "type_embedding."),
    (r"filter_layers_strip\.networks\.0\.layers\.", "embedding_strip."),
    (r"filter_layers\.networks\.0\.layers\.", "embedding."),
)
_FITTING_RENAMES = ((r"^filter_layers\.networks\.0\.layers\.", "layers."),)
_LEAF_NAMES = {"matrix": "w", "bias": "b", "idt": "idt", "mean": "davg", "stddev": "dstd"}


def is_checkpoint(source: Any) -> bool:
    return isinstance(source, str | os.PathLike) and Path(source).suffix in CHECKPOINT_SUFFIXES


# ------------------------------------------------------------------ checkpoints
def _state_to_tree(state: dict, spec: dict, renames, what: str) -> dict:
    """Translate state-dict names onto the paths of ``spec`` and fill it."""
    got: dict[tuple, np.ndarray] = {}
    for name, value in state.items():
        if _SKIP.search(name):
            continue
        key = name
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
        if isinstance(path[-1], str):
            path = (*path[:-1], _LEAF_NAMES.get(path[-1], path[-1]))
        got[path] = np.asarray(value.detach().cpu().numpy())
    wanted = dict(tree_paths(spec))
    extra = sorted(".".join(map(str, p)) for p in got if p not in wanted)
    if extra:
        raise ValueError(f"checkpoint {what}: unexpected weight {extra[0]!r} (not a parameter "
                         "of this configuration)")
    missing = [p for p in wanted if p not in got]
    if missing:
        raise ValueError(f"checkpoint {what}: missing weight {'/'.join(map(str, missing[0]))}")
    return tree_map(lambda path, leaf: got[path].reshape(leaf.shape), spec)


def _select_head(model_params: dict, head: str | None) -> tuple[str, dict]:
    if "model_dict" not in model_params:
        if head not in (None, "Default"):
            raise ValueError(f"head={head!r}: this is a single-task checkpoint (head 'Default')")
        return "Default", model_params
    heads = list(model_params["model_dict"])
    name = heads[0] if head is None else head
    if name not in model_params["model_dict"]:
        raise ValueError(f"head={head!r}: the checkpoint's heads are {heads}")
    params = dict(model_params["model_dict"][name])
    shared = model_params.get("shared_dict", {})
    for key in ("type_map", "descriptor", "fitting_net"):
        if isinstance(params.get(key), str):  # a reference into shared_dict
            params[key] = shared[params[key]]
    return name, params


def read_checkpoint(path: str | os.PathLike, head: str | None = None) -> tuple[dict, dict]:
    """(model section of the input, state dict of ``atomic_model.*``) of one head."""
    import torch

    try:
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - TorchScript archives, foreign pickles, ...
        raise ValueError(f"source={str(path)!r}: not a deepmd-kit PyTorch training checkpoint "
                         f"({type(err).__name__}: {str(err).splitlines()[0]})") from err
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or "_extra_state" not in state:
        raise ValueError(f"source={str(path)!r}: not a deepmd-kit PyTorch training checkpoint "
                         "(no model._extra_state)")
    name, model_params = _select_head(state["_extra_state"]["model_params"], head)
    prefix = f"model.{name}.atomic_model."
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        raise ValueError(f"source={str(path)!r}: no weights under {prefix!r}")
    return model_params, sub


def _descriptor_config(model_params: dict) -> dc.DPA2Config:
    desc = dict(model_params["descriptor"])
    if desc.get("type") != "dpa2":
        raise ValueError(f"descriptor.type={desc.get('type')!r}: only 'dpa2' is supported")
    desc.setdefault("type_map", model_params.get("type_map"))
    return dc.DPA2Config.from_dict(desc)


def _sub_state(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _descriptor(model_params: dict, state: dict) -> tuple[dc.DPA2Config, dict]:
    config = _descriptor_config(model_params)
    params = _state_to_tree(_sub_state(state, "descriptor."), dc.param_spec(config),
                            _DESCRIPTOR_RENAMES, "descriptor")
    return config, params


def descriptor_from_checkpoint(path, head: str | None = None) -> tuple[dc.DPA2Config, dict]:
    """(config, numpy params) of the DPA-2 descriptor stored in a deepmd-kit .pt checkpoint."""
    return _descriptor(*read_checkpoint(path, head))


def model_from_checkpoint(path, head: str | None = None) -> DeepmdModel:
    """The whole energy model (descriptor, fitting net, out_bias) of a .pt checkpoint."""
    model_params, state = read_checkpoint(path, head)
    config, params = _descriptor(model_params, state)
    fcfg = FittingConfig.from_input(model_params.get("fitting_net", {}), config.ntypes,
                                    config.dim_out, precision=config.dtype_name)
    fparams = _state_to_tree(_sub_state(state, "fitting_net."), fitting_spec(fcfg),
                             _FITTING_RENAMES, "fitting_net")
    out_bias = state["out_bias"].detach().cpu().numpy()
    return DeepmdModel(config, params, fcfg, fparams, bias_vector(out_bias, config.ntypes))


def model_from_file(source: Any) -> DeepmdModel:
    """The whole energy model of a .dp/.yaml/.json file or its dict
    (:func:`dpa2_core.io.deepmd_model.load_deepmd_model`)."""
    return load_deepmd_model(source)
