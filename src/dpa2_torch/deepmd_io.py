"""Reading deepmd-kit models into the torch shim: thin wrappers over the core's loader.

Every file kind (deepmd-kit ``.pt`` training checkpoints, ``.dp``/``.yaml``/``.json``
models, ``dpa2 train`` checkpoints) is read by :func:`dpa2_core.io.load_model` /
:func:`dpa2_core.io.load_descriptor`; the translation of deepmd-kit's state-dict names
lives in :mod:`dpa2_core.io.deepmd_checkpoint`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dpa2_core.io.deepmd_model import DeepmdModel, load_deepmd_model
from dpa2_core.io.loader import load_descriptor, load_model
from dpa2_core.model.config import DPA2Config

__all__ = [
    "CHECKPOINT_SUFFIXES", "descriptor_from_checkpoint", "is_checkpoint",
    "model_from_checkpoint", "model_from_file",
]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def is_checkpoint(source: Any) -> bool:
    return isinstance(source, str | os.PathLike) and Path(source).suffix in CHECKPOINT_SUFFIXES


def descriptor_from_checkpoint(path, head: str | None = None) -> tuple[DPA2Config, dict]:
    """(config, numpy params) of the DPA-2 descriptor stored in a deepmd-kit .pt checkpoint."""
    return load_descriptor(path, head)


def model_from_checkpoint(path, head: str | None = None) -> DeepmdModel:
    """The whole energy model (descriptor, fitting net, out_bias) of a .pt checkpoint."""
    return load_model(path, head)


def model_from_file(source: Any) -> DeepmdModel:
    """The whole energy model of any model file (:func:`dpa2_core.io.load_model`) or of a
    deepmd-kit model dict (:func:`dpa2_core.io.deepmd_model.load_deepmd_model`)."""
    return load_deepmd_model(source) if isinstance(source, dict) else load_model(source)
