"""dpa2_torch: the DPA-2 descriptor and an energy model as ``torch.nn.Module`` objects.

The modules store the core's parameter pytree; every formula is ``dpa2_core``'s.
Training (``dpa2 train --backend torch``) lives in :mod:`dpa2_torch.training`;
deployable ``.pte``/``.pt2`` artifacts in :mod:`dpa2_torch.export`; the ASE calculator is
:class:`Calculator` (needs ase), the torch-sim model :class:`TorchSimModel` (needs
torch-sim-atomistic); both are imported on first use.
"""

from .descriptor import DescrptDPA2
from .export import export_model, load_exported
from .model import EnergyModel, load_model
from .neighbors import Neighbors

__all__ = ["Calculator", "DescrptDPA2", "EnergyModel", "Neighbors", "TorchSimModel",
           "export_model", "load_exported", "load_model"]

_LAZY = {"Calculator": ".calculator", "TorchSimModel": ".torchsim"}  # need ase / torch-sim


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
