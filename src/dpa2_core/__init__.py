"""dpa2_core: the DPA-2 descriptor as pure array-API functions (numpy, torch, jax, ...).

Folders, one concern each (arrows point one way, ``model <- neighbors <- io <- training``):
``model/`` the traced math, ``neighbors/`` structures to descriptor inputs, ``io/`` files,
``training/`` the backend-neutral training pieces.
"""

from . import array_api, presets
from .io.deepmd_files import dump_deepmd, load_deepmd
from .io.deepmd_model import DeepmdModel, load_deepmd_model
from .io.loader import load_model, model_kind
from .io.own_format import load, save
from .io.structures import from_ase
from .model.config import DPA2Config, RepformerConfig, RepinitConfig
from .model.dpa2 import DescriptorOutput, descriptor
from .model.params import init_params, is_trainable, param_spec
from .model.type_map import change_type_map
from .neighbors.builder import build_neighbor_list
from .training.statistics import compute_input_stats

__all__ = [
    "array_api",
    "DPA2Config",
    "DeepmdModel",
    "DescriptorOutput",
    "RepformerConfig",
    "RepinitConfig",
    "build_neighbor_list",
    "change_type_map",
    "compute_input_stats",
    "descriptor",
    "dump_deepmd",
    "from_ase",
    "init_params",
    "is_trainable",
    "load",
    "load_deepmd",
    "load_deepmd_model",
    "load_model",
    "model_kind",
    "param_spec",
    "presets",
    "save",
]
__version__ = "0.1.0"
