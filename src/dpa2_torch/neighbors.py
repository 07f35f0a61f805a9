"""Neighbor lists on the host, extended coordinates on the device.

The list is built in numpy (:func:`dpa2_core.neighbors.extension.extension`) from a
detached copy of the coordinates. What reaches the device is index data plus a constant
per-ghost ``shift``, so the extended coordinates are ``coord[mapping] + shift``
(:func:`dpa2_core.neighbors.extension.extend_coord`): differentiable in ``coord`` and,
through ``coord_ext``, in every ghost position (virial).
"""

from __future__ import annotations

import numpy as np
import torch

from dpa2_core.array_api import namespace
from dpa2_core.neighbors.extension import Extension, extension
from dpa2_core.neighbors.extension import extend_coord as _extend_coord

__all__ = ["Neighbors", "extend_coord", "host_neighbors", "neighbors_for"]


class Neighbors(Extension):
    """:class:`dpa2_core.neighbors.extension.Extension` of device tensors.

    atype_ext: (nf, nall) int64, -1 on padding; mapping: (nf, nall) int64 ghost -> local,
    -1 on padding; nlist: (nf, nloc, nnei) int64; shift: (nf, nall, 3) float, Å.
    """

    __slots__ = ()

    def to(self, device=None, dtype=None) -> Neighbors:
        """Move to ``device``; ``dtype`` applies to the float ``shift`` only."""
        ints = [x.to(device=device, non_blocking=True) for x in self[:3]]
        return Neighbors(*ints, self.shift.to(device=device, dtype=dtype, non_blocking=True))


def host_neighbors(coord: np.ndarray, atype: np.ndarray, config, box=None) -> Extension:
    """numpy extension of a batch, frames padded to a common nall. coord: (nf, nloc, 3);
    atype: (nf, nloc); box: (nf, 3, 3), (nf, 9) or None."""
    return extension(coord, atype, config, box)


def neighbors_for(coord: torch.Tensor, atype: torch.Tensor, config, box=None) -> Neighbors:
    """Build on the host from detached copies; return tensors on ``coord``'s device.

    This is the one host round trip of a structure-level call (documented, unavoidable
    for a numpy neighbor-list builder); the model forward itself has none.
    """
    box_np = None if box is None else box.detach().cpu().double().numpy()
    arrays = host_neighbors(coord.detach().cpu().double().numpy(),
                            atype.detach().cpu().numpy(), config, box_np)
    return Neighbors(*(torch.from_numpy(a) for a in arrays)).to(coord.device, coord.dtype)


def extend_coord(coord: torch.Tensor, nb: Extension) -> torch.Tensor:
    """coord_ext (nf, nall, 3) = coord[mapping] + shift; padding rows hold atom 0 + shift."""
    # the array-API view of torch (torch.take has no axis argument)
    return _extend_coord(namespace(coord), coord, nb.mapping, nb.shift)
