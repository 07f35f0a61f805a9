"""Statistics before training, set on the model: the descriptor's davg/dstd and out_bias.

Computed by :func:`dpa2_core.training.statistics.training_statistics` (deepmd-kit's rule: the first
``data_stat_nbatch`` batches of every training system); this module only writes the
results into the model's buffers.
"""

from __future__ import annotations

import numpy as np
import torch

from dpa2_core.model.statistics import stat_blocks
from dpa2_core.training.statistics import training_statistics

from ..model import EnergyModel
from .batches import DataSet

__all__ = ["set_statistics"]


def set_statistics(model: EnergyModel, data: DataSet, nbatch: int,
                   rcond: float | None = None) -> np.ndarray:
    """Fill davg/dstd and ``out_bias`` of ``model`` from ``data``; returns the energy bias
    per type (ntypes,) eV (the trainer prints it, :mod:`dpa2_core.training.report`)."""
    desc = model.descriptor
    new, bias = training_statistics(desc.numpy_params(), desc.config, data.frames(),
                                    data.sizes, nbatch, rcond)
    with torch.no_grad():
        for block in stat_blocks(desc.config):
            for key in ("davg", "dstd"):
                buf = getattr(getattr(desc, block), key)
                buf.copy_(torch.as_tensor(np.asarray(new[block][key])).to(buf))
        model.out_bias.copy_(torch.as_tensor(bias).to(model.out_bias))
    return np.asarray(bias)
