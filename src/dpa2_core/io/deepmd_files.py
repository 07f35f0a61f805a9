"""deepmd-kit descriptor files (.dp, .yaml, .json) and dicts: reading and writing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..model.config import DPA2Config
from ..model.params import check_params
from .deepmd_reader import from_deepmd_dict
from .deepmd_writer import to_deepmd_dict

__all__ = ["dump_deepmd", "load_deepmd", "read_deepmd_file"]


def _decode_yaml_arrays(obj: Any) -> Any:
    """Undo deepmd's yaml/json array encoding ``{"@class": "np.ndarray", ...}``."""
    if isinstance(obj, dict):
        if obj.get("@class") == "np.ndarray":
            return np.asarray(obj["value"], dtype=obj["dtype"])
        return {k: _decode_yaml_arrays(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_yaml_arrays(v) for v in obj]
    return obj


def _read_hdf5(path: Path) -> dict:
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - exercised without the io extra
        raise ImportError("reading .dp files needs h5py: pip install 'dpa2[io]'") from err

    with h5py.File(path, "r") as f:
        tree = json.loads(f.attrs["json"])

        def resolve(obj: Any) -> Any:
            if isinstance(obj, dict):
                return {k: resolve(v) for k, v in obj.items()}
            if isinstance(obj, list):
                return [resolve(v) for v in obj]
            if isinstance(obj, str) and obj.lstrip("/").startswith("variable_") and obj in f:
                return f[obj][()]
            return obj

        return resolve(tree)


def read_deepmd_file(path: str | os.PathLike) -> dict:
    """The dict tree stored in a deepmd-kit model file (.dp/.hdf5, .yaml/.yml, .json)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"source={str(path)!r}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".dp", ".hdf5", ".h5"):
        return _read_hdf5(path)
    if suffix in (".yaml", ".yml"):
        import yaml

        with open(path) as f:
            return _decode_yaml_arrays(yaml.safe_load(f))
    if suffix == ".json":
        with open(path) as f:
            return _decode_yaml_arrays(json.load(f))
    raise ValueError(f"source={str(path)!r}: unknown extension {suffix!r} "
                     "(expected .dp, .yaml, .json)")


def _find_descriptor(d: dict) -> dict:
    if d.get("type") == "dpa2" and "repinit_args" in d:
        return d
    for key in ("model", "descriptor"):
        if isinstance(d.get(key), dict):
            try:
                return _find_descriptor(d[key])
            except ValueError:
                pass
    raise ValueError("source: no DPA-2 descriptor dict found (expected a DescrptDPA2."
                     "serialize() dict or a model dict holding one under 'descriptor')")


def load_deepmd(source: dict | str | os.PathLike) -> tuple[DPA2Config, dict]:
    """(config, numpy params) from a deepmd-kit descriptor dict, model dict or model file."""
    d = source if isinstance(source, dict) else read_deepmd_file(source)
    config, params = from_deepmd_dict(_find_descriptor(d))
    check_params(params, config)
    return config, params


def dump_deepmd(config: DPA2Config, params: dict) -> dict:
    """A dict that deepmd-kit's ``DescrptDPA2.deserialize`` accepts and evaluates identically."""
    check_params(params, config)
    return to_deepmd_dict(config, params)
