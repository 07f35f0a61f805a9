"""Our training checkpoints, and loading any model file into an :class:`EnergyModel`.

A checkpoint is a plain dict (loadable with ``torch.load(..., weights_only=True)``):
``{"format": "dpa2_torch", "version", "step", "model": state_dict, "optimizer":
state_dict, "input": the deepmd-kit training input, "data": sampler state}``; the
model is rebuilt from the input's ``model`` section and then filled from the state dict.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

import dpa2_core as dc

from .deepmd_io import fitting_config_from_input, is_checkpoint
from .descriptor import DescrptDPA2
from .model import EnergyModel

FORMAT, VERSION = "dpa2_torch", 1


def build_model(model: dict, seed: int = 0) -> EnergyModel:
    """A freshly initialised model from a deepmd-kit input's ``model`` section.

    The descriptor and the fitting net draw from their own ``seed`` keys when given,
    else from ``seed`` (the training seed).
    """
    desc = dict(model["descriptor"])
    desc.setdefault("type_map", list(model["type_map"]))
    config = dc.DPA2Config.from_dict(desc)
    fit = model.get("fitting_net", {})
    descriptor = DescrptDPA2(config, seed=_seed(desc.get("seed"), seed))
    fcfg = fitting_config_from_input(fit, config.ntypes, config.dim_out)
    return EnergyModel(descriptor, fcfg, seed=_seed(fit.get("seed"), seed + 1))


def _seed(value, default: int) -> int:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return default if value is None else int(value)


def save_checkpoint(path: str | os.PathLike, model: EnergyModel, optimizer, step: int,
                    raw_input: dict, data_state: dict | None = None) -> Path:
    path = Path(path)
    state = {"format": FORMAT, "version": VERSION, "step": int(step),
             "model": model.state_dict(), "input": raw_input, "data": data_state,
             "optimizer": None if optimizer is None else optimizer.state_dict()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def _is_ours(path: Path) -> dict | None:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not a torch file we can read: let deepmd paths try
        return None
    return ckpt if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT else None


def load_model(source: str | os.PathLike, head: str | None = None) -> EnergyModel:
    """EnergyModel from our checkpoint, a deepmd-kit .pt checkpoint or a .dp/.yaml/.json."""
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"model={str(path)!r}: no such file")
    ckpt = _is_ours(path) if is_checkpoint(path) else None
    if ckpt is None:
        return EnergyModel.from_deepmd(path, head)
    model = build_model(ckpt["input"]["model"])
    model.load_state_dict(ckpt["model"])
    return model
