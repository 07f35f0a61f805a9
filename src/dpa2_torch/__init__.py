"""dpa2_torch: the DPA-2 descriptor and an energy model as ``torch.nn.Module`` objects.

The modules store the core's parameter pytree; every formula is ``dpa2_core``'s.
Training (``dpa2 train --backend torch``) lives in :mod:`dpa2_torch.training`;
deployable ``.pte``/``.pt2`` artifacts in :mod:`dpa2_torch.export`.
"""

from .descriptor import DescrptDPA2
from .export import export_model, load_exported
from .model import EnergyModel, load_model
from .neighbors import Neighbors

__all__ = ["DescrptDPA2", "EnergyModel", "Neighbors", "export_model", "load_exported",
           "load_model"]
