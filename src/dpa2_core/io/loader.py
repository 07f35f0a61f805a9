"""The one model loader: every model file, recognised by its content, as numpy pytrees.

:func:`model_kind` (:mod:`.kinds`, re-exported here) names what a file is from its
bytes; :func:`load_model` reads every kind that holds a whole energy model into a
:class:`DeepmdModel`; :func:`load_descriptor` also reads descriptor-only files;
:func:`read_training_checkpoint` gives a ``dpa2 train`` checkpoint of either backend
with its step and sampler state (what a restart of the other backend needs). Every
failure is one ``ValueError`` line naming the file, what it is and what would read it.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..model.config import DPA2Config
from ..model.fitting import FittingConfig, fitting_spec
from ..model.params import param_spec, tree_map
from .deepmd_checkpoint import descriptor_from_state, model_from_state
from .deepmd_files import _read_hdf5, load_deepmd
from .deepmd_model import DeepmdModel, bias_vector, load_deepmd_model
from .kinds import (
    JAX_CHECKPOINT_FORMAT,
    KINDS,
    TORCH_CHECKPOINT_FORMAT,
    checkpoint_container,
    describe_kind,
    inspect_file,
    model_kind,
)
from .own_format import load

__all__ = ["JAX_CHECKPOINT_FORMAT", "KINDS", "TORCH_CHECKPOINT_FORMAT", "TrainingCheckpoint",
           "checkpoint_container", "describe_kind", "load_descriptor", "load_model",
           "model_kind", "read_training_checkpoint"]

_WHOLE = ("deepmd-dp", "deepmd-yaml", "deepmd-json", "deepmd-pt-checkpoint",
          "dpa2-torch-checkpoint", "dpa2-jax-checkpoint")
_EXPECTED = ("expected a deepmd-kit .dp/.yaml/.json model, a deepmd-kit .pt checkpoint or a "
             "`dpa2 train` checkpoint")


class TrainingCheckpoint(NamedTuple):
    """A ``dpa2 train`` checkpoint of either backend, backend-neutral.

    kind: "dpa2-torch-checkpoint" or "dpa2-jax-checkpoint"; step: steps done; model: the
    weights with their statistics; data: the batch sampler's state (or None); input: the
    training input the torch trainer stores (None for the jax one).
    """

    kind: str
    step: int
    model: DeepmdModel
    data: dict | None
    input: dict | None


def _where(path: Path) -> str:
    return str(path)


def _refuse(path: Path, kind: str, need: str) -> ValueError:
    what, reader = KINDS.get(kind, KINDS["unknown"])
    return ValueError(f"{_where(path)}: {what}, not {need} (read by {reader}; {_EXPECTED})")


def _configs(model: dict) -> tuple[DPA2Config, FittingConfig]:
    """Descriptor and fitting configs of a deepmd-kit input's ``model`` section."""
    desc = {k: v for k, v in model["descriptor"].items() if not str(k).startswith("_")}
    desc.setdefault("type_map", list(model["type_map"]))
    config = DPA2Config.from_dict(desc)
    fitting = FittingConfig.from_input(model.get("fitting_net", {}), config.ntypes,
                                       config.dim_out, precision=config.dtype_name)
    return config, fitting


def _fill(spec: dict, arrays: dict, key, where: str) -> dict:
    def leaf(path: tuple, spec_leaf: Any) -> np.ndarray:
        name = key(path)
        if name not in arrays:
            raise ValueError(f"{where}: {name} is missing (a damaged or foreign checkpoint)")
        a = np.asarray(arrays[name])
        if a.size != int(np.prod(spec_leaf.shape)):
            raise ValueError(f"{where}: {name} has shape {a.shape}, expected {spec_leaf.shape}")
        return a.reshape(spec_leaf.shape)

    return tree_map(leaf, spec)


def _torch_checkpoint(path: Path, obj: dict) -> TrainingCheckpoint:
    where = _where(path)
    try:
        config, fitting = _configs(obj["input"]["model"])
        state = obj["model"]
        params = _fill(param_spec(config), state, lambda p: "descriptor." + ".".join(
            map(str, p)), where)
        fparams = _fill(fitting_spec(fitting), state, lambda p: "fitting." + ".".join(
            map(str, p)), where)
        bias = bias_vector(state["out_bias"], config.ntypes)
    except KeyError as err:
        raise ValueError(f"{where}: a damaged dpa2 torch checkpoint (no {err})") from err
    model = DeepmdModel(config, params, fitting, fparams, bias)
    return TrainingCheckpoint("dpa2-torch-checkpoint", int(obj.get("step", 0)), model,
                              obj.get("data"), obj.get("input"))


def _keystr(path: tuple) -> str:
    """jax.tree_util.keystr of a dict/list path (how the jax checkpoint names leaves)."""
    return "".join(f"[{p!r}]" for p in path)


def _jax_checkpoint(path: Path, meta: dict) -> TrainingCheckpoint:
    where = _where(path)
    try:
        config = DPA2Config.from_dict(meta["descriptor"])
        fit = {**meta["fitting"], "neuron": tuple(meta["fitting"]["neuron"])}
        fitting = FittingConfig(**fit)
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if k.startswith("params")}
    except (KeyError, TypeError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{where}: a damaged dpa2 jax checkpoint ({type(err).__name__}: "
                         f"{err})") from err
    params = _fill(param_spec(config), arrays,
                   lambda p: "params" + _keystr(("descriptor", *p)), where)
    fparams = _fill(fitting_spec(fitting), arrays,
                    lambda p: "params" + _keystr(("fitting", *p)), where)
    bias = _fill({"b": np.zeros(config.ntypes)}, arrays, lambda p: "params['out_bias']", where)
    model = DeepmdModel(config, params, fitting, fparams, bias["b"].reshape(config.ntypes))
    return TrainingCheckpoint("dpa2-jax-checkpoint", int(meta.get("step", 0)), model,
                              meta.get("data"), None)


def read_training_checkpoint(path: str | os.PathLike) -> TrainingCheckpoint:
    """A ``dpa2 train`` checkpoint of either backend (torch ``.pt`` or jax ``.npz``)."""
    path = Path(path)
    kind, payload = inspect_file(path)
    if kind == "dpa2-torch-checkpoint":
        return _torch_checkpoint(path, payload)
    if kind == "dpa2-jax-checkpoint":
        return _jax_checkpoint(path, payload)
    raise _refuse(path, kind, "a `dpa2 train` checkpoint")


def _deepmd_tree(path: Path, kind: str, payload: Any) -> dict:
    if kind != "deepmd-dp":
        return payload
    try:
        return _read_hdf5(path)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{_where(path)}: a damaged deepmd-kit .dp file ({type(err).__name__}:"
                         f" {str(err).splitlines()[0] if str(err) else ''})") from err


def _checked_head(path: Path, kind: str, head: str | None) -> None:
    if head is not None and kind != "deepmd-pt-checkpoint":
        raise ValueError(f"{_where(path)}: head={head!r}, but only deepmd-kit .pt "
                         "checkpoints have heads")


def _reading(path: Path, fn, *args) -> Any:
    """Call ``fn``; a ValueError/KeyError from inside names the file."""
    try:
        return fn(*args)
    except KeyError as err:
        raise ValueError(f"{_where(path)}: key {err} is missing (a damaged or foreign model "
                         "file)") from err
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{_where(path)}: {err}") from err


def load_model(path: str | os.PathLike, head: str | None = None) -> DeepmdModel:
    """The whole energy model stored at ``path``, whatever its kind (see :func:`model_kind`).

    Reads deepmd-kit ``.dp``/``.yaml``/``.json`` models, deepmd-kit ``.pt`` training
    checkpoints (``head`` picks a multi-task head, default the first) and ``dpa2 train``
    checkpoints of both backends. Any other file raises one ``ValueError`` line saying
    what the file is and what reads it (a descriptor-only file: ``dpa2 describe``; an
    exported program: the calculators).
    """
    path = Path(path)
    kind, payload = inspect_file(path)
    _checked_head(path, kind, head)
    if kind in ("deepmd-dp", "deepmd-yaml", "deepmd-json"):
        return _reading(path, load_deepmd_model, _deepmd_tree(path, kind, payload))
    if kind == "deepmd-pt-checkpoint":
        return _reading(path, model_from_state, payload, head, path)
    if kind in ("dpa2-torch-checkpoint", "dpa2-jax-checkpoint"):
        return read_training_checkpoint(path).model
    raise _refuse(path, kind, "a whole energy model")


def load_descriptor(path: str | os.PathLike, head: str | None = None
                    ) -> tuple[DPA2Config, dict]:
    """(config, numpy params) of the DPA-2 descriptor in any file :func:`load_model` reads,
    and in descriptor-only files (``dpa2_core.save`` ``.npz``, a serialized deepmd-kit
    descriptor)."""
    path = Path(path)
    kind, payload = inspect_file(path)
    _checked_head(path, kind, head)
    if kind == "dpa2-npz":
        return _reading(path, load, path)
    if kind in ("deepmd-dp", "deepmd-yaml", "deepmd-json", "deepmd-descriptor"):
        return _reading(path, load_deepmd, _deepmd_tree(path, kind, payload))
    if kind == "deepmd-pt-checkpoint":
        return _reading(path, descriptor_from_state, payload, head, path)
    if kind in _WHOLE:
        m = load_model(path, head)
        return m.config, m.params
    raise _refuse(path, kind, "a DPA-2 model")
