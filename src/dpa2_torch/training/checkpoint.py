"""Our training checkpoints, and loading any model file into an :class:`EnergyModel`.

A checkpoint is a plain dict (loadable with ``torch.load(..., weights_only=True)``):
``{"format": "dpa2-torch-checkpoint", "version", "step", "model": state_dict, "optimizer":
state_dict, "input": the deepmd-kit training input, "data": sampler state}``; the
model is rebuilt from the input's ``model`` section and then filled from the state dict.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from dpa2_core.io.loader import TORCH_CHECKPOINT_FORMAT
from dpa2_core.training import checkpoints
from dpa2_core.training.settings import ModelSettings

from ..descriptor import DescrptDPA2
from ..model import EnergyModel
from ..model import load_model as load_energy_model

__all__ = ["build_model", "checkpoint_state", "load_model", "save_checkpoint"]

FORMAT, VERSION = TORCH_CHECKPOINT_FORMAT, 1


def build_model(settings: ModelSettings) -> EnergyModel:
    """A freshly initialised model from the settings of a deepmd-kit input's ``model``
    section (:class:`dpa2_core.training.settings.ModelSettings`: configs and seeds)."""
    descriptor = DescrptDPA2(settings.descriptor, seed=settings.descriptor_seed)
    return EnergyModel(descriptor, settings.fitting, seed=settings.fitting_seed)


def checkpoint_state(model: EnergyModel, optimizer, step: int, raw_input: dict,
                     data_state: dict | None = None) -> dict:
    """The checkpoint dict (module docstring) of a training state."""
    return {"format": FORMAT, "version": VERSION, "step": int(step),
            "model": model.state_dict(), "input": raw_input, "data": data_state,
            "optimizer": None if optimizer is None else optimizer.state_dict()}


def save_checkpoint(path: str | os.PathLike, model: EnergyModel, optimizer, step: int,
                    raw_input: dict, data_state: dict | None = None) -> Path:
    """One checkpoint file, written atomically (:func:`dpa2_core.training.checkpoints.
    atomic_write`); the trainer's numbered files and rotation go through
    :func:`dpa2_core.training.checkpoints.save`."""
    state = checkpoint_state(model, optimizer, step, raw_input, data_state)
    return checkpoints.atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_model(source: str | os.PathLike, head: str | None = None) -> EnergyModel:
    """EnergyModel from any model file (:func:`dpa2_torch.load_model`)."""
    return load_energy_model(source, head)
