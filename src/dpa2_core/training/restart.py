"""Restarting a run from the other backend's checkpoint: the one compatibility rule."""

from __future__ import annotations

import dataclasses
import os

from ..io.deepmd_model import DeepmdModel
from ..model.config import DPA2Config
from ..model.fitting import FittingConfig

__all__ = ["check_same_model"]


def _key(config: DPA2Config) -> dict:
    # seeds only choose fresh parameters; a checkpoint's weights replace them anyway
    return dataclasses.replace(config, seed=None).to_dict()


def check_same_model(path: str | os.PathLike, record: DeepmdModel, config: DPA2Config,
                     fitting: FittingConfig) -> None:
    """Raise one line when the checkpoint's model is not the one the input describes."""
    if _key(record.config) != _key(config):
        mine, theirs = _key(config), _key(record.config)
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise ValueError(f"--restart {path}: written for another descriptor (differs in "
                         f"{', '.join(diff)}); restart with the input it was trained from")
    if record.fitting_config != fitting:
        raise ValueError(f"--restart {path}: written for another fitting net "
                         f"({record.fitting_config} vs {fitting})")
