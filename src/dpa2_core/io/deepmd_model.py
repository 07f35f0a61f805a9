"""Whole deepmd-kit energy models (descriptor + fitting net + out_bias) from model files.

``load_deepmd_model(source)`` reads what deepmd-kit writes for a standard energy model
(``.dp``/``.yaml``/``.json``, or the dict): the DPA-2 descriptor through
:func:`dpa2_core.load_deepmd`, the type-mixed energy fitting net and the model-level
``out_bias``, as numpy pytrees any backend converts.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..model import config as _config
from ..model.config import DPA2Config
from ..model.fitting import FittingConfig, fitting_spec, trainable_flag
from ..model.params import tree_paths
from .deepmd_files import load_deepmd, read_deepmd_file

__all__ = ["bias_vector", "DeepmdModel", "load_deepmd_model"]


class DeepmdModel(NamedTuple):
    """A whole deepmd-kit energy model as numpy pytrees.

    out_bias: (ntypes,) per-type energy added to every atom on top of the fitting net
    (deepmd's model-level ``out_bias``; the fitting's own ``bias_atom_e`` is separate).
    """

    config: DPA2Config
    params: dict
    fitting_config: FittingConfig
    fitting_params: dict
    out_bias: np.ndarray


def bias_vector(out_bias: np.ndarray, ntypes: int) -> np.ndarray:
    """deepmd's ``out_bias`` ((1, ntypes, 1) or any shape of ntypes values) as (ntypes,)."""
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
    for key in ("exclude_types", "atom_ener", "tot_ener_zero"):
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
                         precision=_config.PRECISIONS[f["precision"]],
                         trainable=trainable_flag(f.get("trainable", True)))
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


def load_deepmd_model(source: dict | str | os.PathLike) -> DeepmdModel:
    """The whole energy model from a deepmd-kit .dp/.yaml/.json file or its dict."""
    d = source if isinstance(source, dict) else read_deepmd_file(source)
    model = d.get("model", d)
    if model.get("type", "standard") != "standard" or "fitting" not in model:
        raise ValueError(f"model.type={model.get('type')!r}: only standard energy models "
                         "(descriptor + fitting) are supported")
    for key in ("atom_exclude_types", "pair_exclude_types"):
        if model.get(key):
            raise ValueError(f"model.{key}={model[key]!r}: not supported")
    config, params = load_deepmd(model)
    fcfg, fparams = _fitting_from_dict(model["fitting"], config.ntypes)
    out_bias = bias_vector(model["@variables"]["out_bias"], config.ntypes)
    return DeepmdModel(config, params, fcfg, fparams, out_bias)
