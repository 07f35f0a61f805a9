"""dpa2_core: the DPA-2 descriptor as pure array-API functions (numpy, torch, jax, ...)."""

from . import presets
from .config import DPA2Config, RepformerConfig, RepinitConfig
from .descriptor import DescriptorOutput, descriptor
from .io import dump_deepmd, load, load_deepmd, save
from .neighbor_list import build_neighbor_list, from_ase
from .params import init_params, is_trainable, param_spec
from .stats import compute_input_stats
from .type_map import change_type_map

__all__ = [
    "DPA2Config",
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
    "param_spec",
    "presets",
    "save",
]
__version__ = "0.1.0"
