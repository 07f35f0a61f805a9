"""deepmd-kit PyTorch training checkpoints (``.pt``) as numpy: descriptor and whole model.

A deepmd-kit checkpoint is ``{"model": state_dict, "optimizer": ...}``; the state dict's
``_extra_state["model_params"]`` holds the model section of the training input and the
weights sit under ``model.<head>.atomic_model.{descriptor,fitting_net}``. Names are
translated onto the core's pytree paths; every path of the spec must be filled exactly
once, so a renamed or missing weight is an error, never a silent zero. The file itself is
read by :func:`dpa2_core._compat.torch_load` (plain dicts of numpy arrays).
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from ..model.config import DPA2Config
from ..model.fitting import FittingConfig, fitting_spec
from ..model.params import param_spec, tree_map, tree_paths
from .deepmd_model import DeepmdModel, bias_vector

__all__ = ["checkpoint_heads", "descriptor_from_state", "is_deepmd_checkpoint",
           "model_from_state", "select_head"]

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


def is_deepmd_checkpoint(obj: Any) -> bool:
    """Whether a loaded torch object is a deepmd-kit training checkpoint (or its state)."""
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    return isinstance(state, dict) and "_extra_state" in state


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
        got[path] = np.asarray(value)
    wanted = dict(tree_paths(spec))
    extra = sorted(".".join(map(str, p)) for p in got if p not in wanted)
    if extra:
        raise ValueError(f"checkpoint {what}: unexpected weight {extra[0]!r} (not a parameter "
                         "of this configuration)")
    missing = [p for p in wanted if p not in got]
    if missing:
        raise ValueError(f"checkpoint {what}: missing weight {'/'.join(map(str, missing[0]))}")
    return tree_map(lambda path, leaf: got[path].reshape(leaf.shape), spec)


def checkpoint_heads(model_params: dict) -> list[str]:
    """The heads of a checkpoint's ``model_params`` (``["Default"]`` for single-task)."""
    return list(model_params["model_dict"]) if "model_dict" in model_params else ["Default"]


def select_head(model_params: dict, head: str | None) -> tuple[str, dict]:
    """(head name, model section of that head); shared_dict references resolved."""
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


def _head_state(obj: dict, head: str | None, where: str) -> tuple[dict, dict]:
    """(model section of the input, state dict of ``atomic_model.*``) of one head."""
    state = obj.get("model", obj)
    name, model_params = select_head(state["_extra_state"]["model_params"], head)
    prefix = f"model.{name}.atomic_model."
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        raise ValueError(f"{where}: no weights under {prefix!r}")
    return model_params, sub


def _descriptor_config(model_params: dict) -> DPA2Config:
    desc = dict(model_params["descriptor"])
    if desc.get("type") != "dpa2":
        raise ValueError(f"descriptor.type={desc.get('type')!r}: only 'dpa2' is supported")
    desc.setdefault("type_map", model_params.get("type_map"))
    return DPA2Config.from_dict(desc)


def _sub_state(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _descriptor(model_params: dict, state: dict) -> tuple[DPA2Config, dict]:
    config = _descriptor_config(model_params)
    params = _state_to_tree(_sub_state(state, "descriptor."), param_spec(config),
                            _DESCRIPTOR_RENAMES, "descriptor")
    return config, params


def descriptor_from_state(obj: dict, head: str | None = None,
                          where: str | os.PathLike = "checkpoint") -> tuple[DPA2Config, dict]:
    """(config, numpy params) of the DPA-2 descriptor of a loaded deepmd-kit checkpoint."""
    return _descriptor(*_head_state(obj, head, str(where)))


def model_from_state(obj: dict, head: str | None = None,
                     where: str | os.PathLike = "checkpoint") -> DeepmdModel:
    """The whole energy model (descriptor, fitting net, out_bias) of a loaded checkpoint."""
    model_params, state = _head_state(obj, head, str(where))
    config, params = _descriptor(model_params, state)
    fcfg = FittingConfig.from_input(model_params.get("fitting_net", {}), config.ntypes,
                                    config.dim_out, precision=config.dtype_name)
    fparams = _state_to_tree(_sub_state(state, "fitting_net."), fitting_spec(fcfg),
                             _FITTING_RENAMES, "fitting_net")
    return DeepmdModel(config, params, fcfg, fparams,
                       bias_vector(state["out_bias"], config.ntypes))
