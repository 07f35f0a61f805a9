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
from typing import Any, NamedTuple

import numpy as np

import dpa2_core as dc
from dpa2_core.fitting import FittingConfig, fitting_spec
from dpa2_core.params import tree_map, tree_paths

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


class DeepmdModel(NamedTuple):
    """A whole deepmd-kit energy model as numpy pytrees.

    out_bias: (ntypes,) per-type energy added to every atom on top of the fitting net
    (deepmd's model-level ``out_bias``; the fitting's own ``bias_atom_e`` is separate).
    """

    config: dc.DPA2Config
    params: dict
    fitting_config: FittingConfig
    fitting_params: dict
    out_bias: np.ndarray


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


_FIT_IGNORED = ("type", "seed", "trainable", "rcond", "use_aparam_as_mask", "_comment",
                "neuron", "resnet_dt", "activation_function", "precision")


def fitting_config_from_input(fit: dict, ntypes: int, dim_descrpt: int) -> FittingConfig:
    """FittingConfig from a deepmd ``fitting_net`` input section (energy fitting only)."""
    if fit.get("type", "ener") != "ener":
        raise ValueError(f"fitting_net.type={fit.get('type')!r}: only 'ener' is supported")
    zero = {"numb_fparam": 0, "numb_aparam": 0, "dim_case_embd": 0, "atom_ener": [],
            "default_fparam": None, "layer_name": None}
    for key, value in fit.items():
        if key in zero:
            if value not in (zero[key], None, []):
                raise ValueError(f"fitting_net.{key}={value!r}: not supported (only "
                                 f"{zero[key]!r})")
        elif key not in _FIT_IGNORED:
            raise ValueError(f"fitting_net.{key}: unsupported key")
    return FittingConfig(
        ntypes=ntypes, dim_descrpt=dim_descrpt, neuron=tuple(fit.get("neuron", (120, 120, 120))),
        resnet_dt=bool(fit.get("resnet_dt", True)),
        activation_function=fit.get("activation_function", "tanh"),
        precision=dc.config.PRECISIONS[fit.get("precision", "default")])


def model_from_checkpoint(path, head: str | None = None) -> DeepmdModel:
    """The whole energy model (descriptor, fitting net, out_bias) of a .pt checkpoint."""
    model_params, state = read_checkpoint(path, head)
    config, params = _descriptor(model_params, state)
    fcfg = fitting_config_from_input(model_params.get("fitting_net", {}), config.ntypes,
                                     config.dim_out)
    fparams = _state_to_tree(_sub_state(state, "fitting_net."), fitting_spec(fcfg),
                             _FITTING_RENAMES, "fitting_net")
    out_bias = state["out_bias"].detach().cpu().numpy()
    return DeepmdModel(config, params, fcfg, fparams, _bias_vector(out_bias, config.ntypes))


# ------------------------------------------------------------------ model files
def _bias_vector(out_bias: np.ndarray, ntypes: int) -> np.ndarray:
    bias = np.asarray(out_bias)
    if bias.size != ntypes:
        raise ValueError(f"out_bias: expected one energy per type ({ntypes}), got shape "
                         f"{bias.shape}")
    return bias.reshape(ntypes)


def _check_fitting_dict(f: dict) -> None:
    if f.get("type", "ener") != "ener" or f.get("var_name", "energy") != "energy":
        raise ValueError(f"fitting.type={f.get('type')!r}: only energy fitting is supported")
    for key in ("numb_fparam", "numb_aparam", "dim_case_embd"):
        if f.get(key, 0):
            raise ValueError(f"fitting.{key}={f[key]!r}: not supported (only 0)")
    for key in ("exclude_types", "atom_ener"):
        if f.get(key):
            raise ValueError(f"fitting.{key}={f[key]!r}: not supported")
    if not f.get("mixed_types", True) or len(f["nets"]["networks"]) != 1:
        raise ValueError("fitting: expected one type-mixed fitting network")


def _fitting_from_dict(f: dict, ntypes: int) -> tuple[FittingConfig, dict]:
    _check_fitting_dict(f)
    net = f["nets"]["networks"][0]
    fcfg = FittingConfig(ntypes=ntypes, dim_descrpt=int(f["dim_descrpt"]),
                         neuron=tuple(f["neuron"]), resnet_dt=bool(f["resnet_dt"]),
                         activation_function=f["activation_function"],
                         precision=dc.config.PRECISIONS[f["precision"]])
    layers = []
    for layer in net["layers"]:
        v = layer["@variables"]
        layers.append({k: np.asarray(v[k]).reshape(-1) if k != "w" else np.asarray(v[k])
                       for k in ("w", "b", "idt") if v.get(k) is not None})
    bias = np.asarray(f["@variables"]["bias_atom_e"]).reshape(ntypes, 1)
    params = {"layers": layers, "bias_atom_e": bias}
    _check_tree(params, fitting_spec(fcfg))
    return fcfg, params


def _check_tree(tree: dict, spec: dict) -> None:
    got = dict(tree_paths(tree))
    for path, leaf in tree_paths(spec):
        if path not in got or tuple(got[path].shape) != leaf.shape:
            shape = None if path not in got else tuple(got[path].shape)
            raise ValueError(f"fitting/{'/'.join(map(str, path))}: expected shape {leaf.shape}, "
                             f"got {shape}")


def model_from_file(source: dict | str | os.PathLike) -> DeepmdModel:
    """The whole energy model from a deepmd-kit .dp/.yaml/.json file or its dict."""
    d = source if isinstance(source, dict) else dc.io.read_deepmd_file(source)
    model = d.get("model", d)
    if model.get("type", "standard") != "standard" or "fitting" not in model:
        raise ValueError(f"model.type={model.get('type')!r}: only standard energy models "
                         "(descriptor + fitting) are supported")
    for key in ("atom_exclude_types", "pair_exclude_types"):
        if model.get(key):
            raise ValueError(f"model.{key}={model[key]!r}: not supported")
    config, params = dc.load_deepmd(model)
    fcfg, fparams = _fitting_from_dict(model["fitting"], config.ntypes)
    out_bias = _bias_vector(model["@variables"]["out_bias"], config.ntypes)
    return DeepmdModel(config, params, fcfg, fparams, out_bias)
