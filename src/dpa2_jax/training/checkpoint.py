"""Training checkpoints: one ``.npz`` with the model config, parameters, optax state and
the batch sampler's state (an exact restart).

``<save_ckpt>-<step>.npz`` is written at every ``save_freq`` and at the end (the newest
``max_ckpt_keep`` are kept), and ``<save_ckpt>.npz`` always holds the latest one; the
writing (atomic) and the rotation are :mod:`dpa2_core.training.checkpoints`, shared with
the torch trainer.
:func:`load_model` reads the model back without the training input.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

import dpa2_core as dc
from dpa2_core.io.loader import JAX_CHECKPOINT_FORMAT, checkpoint_container
from dpa2_core.model.fitting import FittingConfig
from dpa2_core.training import checkpoints

from ..model import ModelConfig, init_model
from ..params import to_jax

__all__ = ["FORMAT", "checkpoint_writer", "load_checkpoint", "load_model", "save_checkpoint"]

FORMAT = JAX_CHECKPOINT_FORMAT


def _flat(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {prefix + jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves}


def checkpoint_writer(step: int, params: dict, opt_state: Any, config: ModelConfig,
                      data_state: dict | None = None) -> Callable[[Path], None]:
    """``write(path)`` of one checkpoint, for :func:`dpa2_core.training.checkpoints.save`
    (which makes it atomic and rotates); the arrays are copied to the host now."""
    fit = dataclasses.asdict(config.fitting)
    meta = {"format": FORMAT, "step": int(step), "descriptor": config.descriptor.to_dict(),
            "fitting": {**fit, "neuron": list(fit["neuron"])}, "data": data_state}
    opt_leaves = jax.tree.leaves(opt_state)
    arrays = {**_flat(params, "params"),
              **{f"opt/{i}": np.asarray(x) for i, x in enumerate(opt_leaves)}}

    def write(path: Path) -> None:
        with open(path, "wb") as f:  # a file object: savez would append .npz to a name
            np.savez(f, __meta__=np.asarray(json.dumps(meta)), **arrays)

    return write


def save_checkpoint(directory: Path, name: str, step: int, params: dict, opt_state: Any,
                    config: ModelConfig, data_state: dict | None = None,
                    keep: int = 0) -> Path:
    """Write ``directory/<name>-<step>.npz`` and ``directory/<name>.npz`` atomically, then
    keep the newest ``keep`` (0: all); :func:`dpa2_core.training.checkpoints.save`."""
    return checkpoints.save(directory, name, ".npz", step,
                            checkpoint_writer(step, params, opt_state, config, data_state),
                            keep)


def _model_config(meta: dict) -> ModelConfig:
    fit = {**meta["fitting"], "neuron": tuple(meta["fitting"]["neuron"])}
    return ModelConfig(dc.DPA2Config.from_dict(meta["descriptor"]), FittingConfig(**fit))


def _read(path: Path) -> tuple[dict, dict]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"restart={str(path)!r}: no such checkpoint")
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["__meta__"])) if "__meta__" in f.files else {}
            if checkpoint_container(meta.get("format")) != "jax":
                raise ValueError(f"restart={str(path)!r}: not a dpa2_jax checkpoint")
            return meta, {k: f[k] for k in f.files if k != "__meta__"}
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as err:  # torn or foreign
        raise ValueError(f"restart={str(path)!r}: not a readable dpa2_jax checkpoint "
                         f"({type(err).__name__}); the newest complete one is named in the "
                         "'checkpoint' file of its folder") from err


def _fill(template: Any, arrays: dict, prefix: str, path: Path) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    out = []
    for p, x in leaves:
        key = prefix + jax.tree_util.keystr(p)
        if key not in arrays or arrays[key].shape != x.shape:
            raise ValueError(f"restart={str(path)!r}: {key} is missing or has another shape "
                             "(was the checkpoint written for this model?)")
        out.append(arrays[key].astype(x.dtype))
    return jax.tree_util.tree_unflatten(treedef, to_jax(out))


def load_checkpoint(path: Path, params: dict, opt_state: Any
                    ) -> tuple[int, dict, Any, dict | None]:
    """(step, params, opt_state, sampler state) read into the structures of the given
    templates."""
    meta, arrays = _read(path)
    params = _fill(params, arrays, "params", path)
    leaves, treedef = jax.tree.flatten(opt_state)
    opt = {f"opt/{i}": arrays.get(f"opt/{i}") for i in range(len(leaves))}
    if any(v is None or v.shape != np.shape(x) for v, x in zip(opt.values(), leaves,
                                                               strict=True)):
        raise ValueError(f"restart={str(path)!r}: optimizer state does not match this input")
    opt_state = jax.tree.unflatten(treedef, [jax.numpy.asarray(v, dtype=np.asarray(x).dtype)
                                             for v, x in zip(opt.values(), leaves, strict=True)])
    return int(meta["step"]), params, opt_state, meta.get("data")


def load_model(path: Path) -> tuple[ModelConfig, dict]:
    """(ModelConfig, jax params) of a checkpoint, e.g. to run MD with a trained model."""

    meta, arrays = _read(path)
    config = _model_config(meta)
    return config, _fill(init_model(config), arrays, "params", path)
