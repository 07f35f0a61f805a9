"""Our own parameter file: config (JSON) and params in one ``.npz``, no deepmd-kit needed."""

from __future__ import annotations

import json
import os

import numpy as np

from .._compat import to_numpy
from ..model.config import DPA2Config
from ..model.params import check_params, param_spec, tree_map, tree_paths

__all__ = ["FORMAT_VERSION", "load", "save"]

FORMAT_VERSION = 1


def _key(path: tuple) -> str:
    return "/".join(str(p) for p in path)


def save(path: str | os.PathLike, config: DPA2Config, params: dict) -> None:
    """Write config and params into one ``.npz`` (the config as JSON inside)."""
    check_params(params, config)
    arrays = {f"params/{_key(p)}": to_numpy(x) for p, x in tree_paths(params)}
    meta = {"format": "dpa2", "version": FORMAT_VERSION, "config": config.to_dict()}
    np.savez(path, __meta__=np.asarray(json.dumps(meta)), **arrays)


def load(path: str | os.PathLike) -> tuple[DPA2Config, dict]:
    """Read a file written by :func:`save`; needs neither deepmd-kit nor a backend."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["__meta__"]))
        if meta.get("format") != "dpa2":
            raise ValueError(f"path={str(path)!r}: not a dpa2 parameter file")
        config = DPA2Config.from_dict(meta["config"])
        params = tree_map(lambda p, _: f[f"params/{_key(p)}"], param_spec(config))
    check_params(params, config)
    return config, params
