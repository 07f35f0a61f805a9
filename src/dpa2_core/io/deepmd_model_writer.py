"""Whole energy models back into deepmd-kit: a ``.dp`` (HDF5) / ``.yaml`` / ``.json`` file.

:func:`save_deepmd_model` writes what deepmd-kit 3.2.0's ``dp convert-backend`` and
``deepmd.infer.DeepPot`` read: the serialized ``EnergyModel`` (``@class`` Model, version 2)
around the DPA-2 descriptor (:func:`dpa2_core.io.deepmd_writer.to_deepmd_dict`), the
type-mixed energy fitting net (``@class`` Fitting, version 4), ``out_bias``/``out_std``
(1, ntypes, 1) and the type_map, plus a ``model_def_script`` (the input's ``model``
section, which deepmd-kit's PyTorch backend stores in the ``.pth``). It is the inverse of
:func:`dpa2_core.io.deepmd_model.load_deepmd_model` (tested both ways).

Layout of a ``.dp``: one HDF5 dataset ``variable_NNNN`` per array and the dict tree as
JSON in the file attribute ``json``, arrays replaced by their dataset names. ``.yaml``
and ``.json`` encode arrays as ``{"@class": "np.ndarray", "dtype", "value"}``. Files are
written atomically (temporary file in the same folder, fsync, rename).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._compat import to_numpy
from .deepmd_model import DeepmdModel
from .deepmd_writer import to_deepmd_dict
from .files import atomic_write

__all__ = ["SUFFIXES", "model_def_script", "save_deepmd_model", "to_deepmd_model_dict"]

SUFFIXES = (".dp", ".yaml", ".yml", ".json")


def _layer(p: dict, dtype: str, act: str, resnet: bool, trainable: bool) -> dict:
    arr = {k: np.asarray(to_numpy(p[k]), dtype=dtype) if k in p else None
           for k in ("w", "b", "idt")}
    if arr["b"] is not None:
        arr["b"] = arr["b"].reshape(-1)
    return {"@class": "Layer", "@version": 2, "bias": arr["b"] is not None,
            "use_timestep": arr["idt"] is not None, "activation_function": act,
            "resnet": resnet, "precision": dtype, "trainable": trainable, "@variables": arr}


def _fitting_dict(model: DeepmdModel, type_map: list[str]) -> dict:
    f, p = model.fitting_config, model.fitting_params
    dtype, act = f.precision, f.activation_function
    layers = list(p["layers"])
    trainable = bool(f.trainable)
    hidden = [_layer(q, dtype, act, True, trainable) for q in layers[:-1]]
    out = _layer(layers[-1], dtype, "none", False, trainable)
    net = {"@class": "FittingNetwork", "@version": 1, "in_dim": int(f.dim_descrpt),
           "out_dim": 1, "neuron": [int(n) for n in f.neuron], "activation_function": act,
           "resnet_dt": bool(f.resnet_dt), "precision": dtype, "bias_out": True,
           "layers": [*hidden, out]}
    bias = np.asarray(to_numpy(p["bias_atom_e"]), dtype=dtype).reshape(f.ntypes, 1)
    return {
        "@class": "Fitting", "@version": 4, "var_name": "energy", "ntypes": int(f.ntypes),
        "dim_descrpt": int(f.dim_descrpt), "neuron": [int(n) for n in f.neuron],
        "resnet_dt": bool(f.resnet_dt), "numb_fparam": 0, "numb_aparam": 0,
        "dim_case_embd": 0, "default_fparam": None, "activation_function": act,
        "precision": dtype, "mixed_types": True,
        "nets": {"@class": "NetworkCollection", "@version": 1, "ndim": 0,
                 "ntypes": int(f.ntypes), "network_type": "fitting_network", "networks": [net]},
        "rcond": None, "exclude_types": [],
        "@variables": {"bias_atom_e": bias, "case_embd": None, "fparam_avg": None,
                       "fparam_inv_std": None, "aparam_avg": None, "aparam_inv_std": None},
        "type_map": type_map, "tot_ener_zero": False,
        "trainable": [trainable] * (len(layers)), "layer_name": None,
        "use_aparam_as_mask": False, "spin": None, "type": "ener", "dim_out": 1,
        "atom_ener": [],
    }


def model_def_script(model: DeepmdModel) -> dict:
    """A deepmd-kit input ``model`` section describing ``model`` (metadata deepmd-kit keeps
    beside the weights: descriptor settings, ``fitting_net`` and ``type_map``)."""
    desc = dict(model.config.to_dict())
    fit = dataclasses.asdict(model.fitting_config)
    fitting_net = {"type": "ener", "neuron": list(fit["neuron"]), "resnet_dt": fit["resnet_dt"],
                   "activation_function": fit["activation_function"],
                   "precision": fit["precision"], "trainable": fit["trainable"]}
    return {"type_map": list(model.config.type_map or []), "descriptor": desc,
            "fitting_net": fitting_net}


def to_deepmd_model_dict(model: DeepmdModel, out_std: Any = None,
                         script: dict | None = None) -> dict:
    """The whole-model dict deepmd-kit writes into a ``.dp`` (arrays as numpy).

    out_std: (ntypes,) per-type energy scale kept as metadata (deepmd-kit does not use it
    for energies); default ones. script: the ``model_def_script`` (default:
    :func:`model_def_script`).
    """
    config = model.config
    if config.type_map is None:
        raise ValueError("model: has no type_map; deepmd-kit model files need one")
    type_map = [str(t) for t in config.type_map]
    ntypes, dtype = config.ntypes, config.dtype_name
    std = np.ones(ntypes) if out_std is None else np.asarray(out_std, dtype=np.float64)
    if std.size != ntypes:
        raise ValueError(f"out_std: expected {ntypes} values (one per type), got {std.shape}")
    bias = np.asarray(to_numpy(model.out_bias), dtype=np.float64)
    if bias.size != ntypes:
        raise ValueError(f"out_bias: expected {ntypes} values (one per type), got {bias.shape}")
    inner = {
        "type_map": type_map, "atom_exclude_types": [], "pair_exclude_types": [],
        "rcond": None, "preset_out_bias": None,
        "@variables": {"out_bias": bias.reshape(1, ntypes, 1).astype(dtype),
                       "out_std": std.reshape(1, ntypes, 1).astype(dtype)},
        "@class": "Model", "@version": 2, "type": "standard",
        "descriptor": to_deepmd_dict(config, model.params),
        "fitting": _fitting_dict(model, type_map),
    }
    from .. import __version__

    return {"software": "dpa2", "version": __version__,
            "time": str(datetime.datetime.now(tz=datetime.timezone.utc)),
            "model": inner, "model_def_script": script or model_def_script(model),
            "backend": "dpa2"}


def _map_arrays(obj: Any, fn) -> Any:
    if isinstance(obj, dict):
        return {k: _map_arrays(v, fn) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_map_arrays(v, fn) for v in obj]
    if isinstance(obj, np.ndarray):
        return fn(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _encoded(x: np.ndarray) -> dict:
    return {"@class": "np.ndarray", "@is_variable": True, "@version": 1,
            "dtype": x.dtype.name, "value": x.tolist()}


def _write_hdf5(tmp: Path, tree: dict) -> None:
    import h5py

    with h5py.File(tmp, "w") as f:
        count = iter(range(10**9))

        def store(x: np.ndarray) -> str:
            return f.create_dataset(f"variable_{next(count):04d}", data=x).name

        f.attrs["json"] = json.dumps(_map_arrays(tree, store), separators=(",", ":"))


def save_deepmd_model(model: DeepmdModel, path: str | os.PathLike, *, out_std: Any = None,
                      script: dict | None = None) -> Path:
    """Write ``model`` as a deepmd-kit whole-model file (``.dp``, ``.yaml`` or ``.json``).

    ``deepmd.infer.DeepPot`` reads ``.dp``/``.yaml`` (deepmd's numpy backend), and
    ``dp convert-backend model.dp model.pth`` (or ``.pb``, ``.savedmodel``) turns it into
    the file LAMMPS/i-PI load. ``out_std``/``script``: see :func:`to_deepmd_model_dict`.
    Returns the path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"path={str(path)!r}: unknown suffix {suffix!r} (expected one of "
                         f"{SUFFIXES})")
    tree = to_deepmd_model_dict(model, out_std, script)

    def write(tmp: Path) -> None:
        if suffix == ".dp":
            _write_hdf5(tmp, tree)
            return
        encoded = _map_arrays(tree, _encoded)
        with open(tmp, "w") as f:
            if suffix == ".json":
                json.dump(encoded, f)
            else:
                import yaml

                yaml.safe_dump(encoded, f)

    atomic_write(path, write)
    return path
