"""dpa2_torch: the DPA-2 descriptor and an energy model as ``torch.nn.Module`` objects.

The modules store the core's parameter pytree; every formula is ``dpa2_core``'s.
Training (``dpa2 train --backend torch``) lives in :mod:`dpa2_torch.training`.
"""

from .descriptor import DescrptDPA2
from .model import EnergyModel, load_model
from .neighbors import Neighbors

__all__ = ["DescrptDPA2", "EnergyModel", "Neighbors", "load_model"]
