"""Files: deepmd-kit descriptor and model files (reader beside writer), our own format,
structures (ASE and deepmd-format systems) and deepmd-kit's npy training data.

``deepmd_reader`` / ``deepmd_writer`` (serialized ``DescrptDPA2`` dicts), ``deepmd_files``
(``.dp``/``.yaml``/``.json``), ``deepmd_model`` (whole energy models), ``own_format``
(our ``.npz``), ``deepmd_model_writer`` (whole models back into deepmd-kit:
:func:`save_deepmd_model`), ``structures`` and ``npy_data``; ``kinds`` (:func:`model_kind`:
what a file is, from its content) and ``loader`` (:func:`load_model`: every model file).
Depends on ``model`` and ``neighbors``.
"""

from .deepmd_model import DeepmdModel
from .deepmd_model_writer import save_deepmd_model
from .loader import (
    KINDS,
    TrainingCheckpoint,
    describe_kind,
    load_descriptor,
    load_model,
    model_kind,
    read_training_checkpoint,
)
from .npy_data import DataError

__all__ = ["KINDS", "DataError", "DeepmdModel", "TrainingCheckpoint", "describe_kind",
           "load_descriptor", "load_model", "model_kind", "read_training_checkpoint",
           "save_deepmd_model"]
