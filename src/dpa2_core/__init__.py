"""dpa2_core: the DPA-2 descriptor as pure array-API functions (numpy, torch, jax, ...)."""

from .config import DPA2Config, RepformerConfig, RepinitConfig
from .descriptor import DescriptorOutput, descriptor
from .io import dump_deepmd, load, load_deepmd, save
from .params import init_params, is_trainable, param_spec

__all__ = [
    "DPA2Config",
    "DescriptorOutput",
    "RepformerConfig",
    "RepinitConfig",
    "descriptor",
    "dump_deepmd",
    "init_params",
    "is_trainable",
    "load",
    "load_deepmd",
    "param_spec",
    "save",
]
__version__ = "0.1.0"
