"""dpa2_jax: the DPA-2 descriptor on JAX pytrees, under ``jit``, ``grad`` and ``vmap``.

Parameters are the core's nested dict/list pytree with jax-array leaves; the config
(:class:`dpa2_core.DPA2Config`) is a frozen, hashable dataclass passed as a static
argument. Every formula is :mod:`dpa2_core`'s. A float64 model needs
``jax_enable_x64`` (see :mod:`dpa2_jax.params`).
"""

from ._xla import disable_ynn_dot

disable_ynn_dot()  # before anything starts JAX's CPU backend: see dpa2_jax._xla

from dpa2_core import DescriptorOutput, DPA2Config  # noqa: E402

from . import neighbor  # noqa: E402
from .descriptor import descriptor, jit_descriptor  # noqa: E402
from .export import export_model, load_exported  # noqa: E402
from .model import (  # noqa: E402
    Extension,
    ModelConfig,
    atom_energy,
    energy,
    energy_and_forces,
    energy_force_virial,
    from_record,
    init_model,
    load_deepmd_model,
    load_model,
)
from .params import cast, init_params, load_deepmd, to_jax, to_numpy, x64_enabled  # noqa: E402

__all__ = [
    "Calculator",
    "DPA2Config",
    "DescriptorOutput",
    "Extension",
    "ModelConfig",
    "atom_energy",
    "cast",
    "descriptor",
    "energy",
    "energy_and_forces",
    "energy_force_virial",
    "export_model",
    "from_record",
    "init_model",
    "init_params",
    "jit_descriptor",
    "load_deepmd",
    "load_deepmd_model",
    "load_exported",
    "load_model",
    "neighbor",
    "to_jax",
    "to_numpy",
    "x64_enabled",
]


def __getattr__(name: str):
    if name == "Calculator":  # needs ase: imported on first use
        from .calculator import Calculator

        return Calculator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
