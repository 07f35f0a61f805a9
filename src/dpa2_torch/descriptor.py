"""``DescrptDPA2``: the core's DPA-2 descriptor as a trainable ``torch.nn.Module``.

The module only stores the parameters (see :mod:`dpa2_torch._tree`); ``forward`` hands
the live Parameters and the torch inputs to :func:`dpa2_core.descriptor`. Device and
dtype follow the module: ``.to("cuda")``, ``.double()`` and ``.float()`` move every
tensor and switch the core's precision to the parameters' dtype.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
from torch import nn

import dpa2_core as dc
from dpa2_core.array_api import to_numpy
from dpa2_core.io.loader import load_descriptor
from dpa2_core.model.dpa2 import SlotWidths, live_widths
from dpa2_core.model.params import check_params

from . import _tree
from .neighbors import Neighbors, extend_coord, neighbors_for

__all__ = ["as_config", "DescrptDPA2", "validate_inputs"]


def as_config(config: dc.DPA2Config | dict) -> dc.DPA2Config:
    return config if isinstance(config, dc.DPA2Config) else dc.DPA2Config.from_dict(config)


def validate_inputs(x: torch.Tensor) -> bool:
    """Value checks only on CPU in eager mode: elsewhere they would sync or break tracing."""
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


class DescrptDPA2(nn.Module):
    """DPA-2 descriptor whose state is the core's parameter pytree.

    ``state_dict`` keys are the pytree paths (``repinit.embedding.0.w``); trainable
    arrays are ``nn.Parameter``s (``requires_grad=False`` where
    :func:`dpa2_core.is_trainable` says so) and ``davg``/``dstd`` are buffers.
    """

    def __init__(self, config: dc.DPA2Config | dict, seed: int = 0,
                 *, params: dict | None = None) -> None:
        super().__init__()
        config = as_config(config)
        if params is None:
            params = dc.init_params(config, seed)
        check_params(params, config)
        self.config = config
        _tree.attach(self, params, _tree.stats_kind(lambda p: dc.is_trainable(p, config)))
        self._sync_precision()

    # ------------------------------------------------------------ construction
    @classmethod
    def from_params(cls, config: dc.DPA2Config | dict, params: dict) -> DescrptDPA2:
        """A module holding copies of ``params`` (numpy or torch pytree)."""
        return cls(config, params=params)

    @classmethod
    def from_deepmd(cls, source: Any, head: str | None = None) -> DescrptDPA2:
        """Load a descriptor: a deepmd-kit dict, or any model file
        :func:`dpa2_core.io.load_descriptor` reads (deepmd-kit .dp/.yaml/.json, a deepmd-kit
        ``.pt`` checkpoint -- ``head`` picks a multi-task head, default the first --, a
        ``dpa2 train`` checkpoint, a ``dpa2_core.save`` file)."""
        if isinstance(source, dict):
            config, params = dc.load_deepmd(source)
        else:
            config, params = load_descriptor(source, head)
        return cls(config, params=params)

    def params(self) -> dict:
        """The pytree of live Parameters and buffers (what ``forward`` hands to the core)."""
        return _tree.tree_of(self)

    def numpy_params(self) -> dict:
        """Detached host numpy copy of :meth:`params`."""
        return _tree.to_numpy_tree(self.params())

    def to_deepmd(self) -> dict:
        """deepmd-kit's serialized ``DescrptDPA2`` dict (in the module's current precision)."""
        return dc.dump_deepmd(self.config, self.numpy_params())

    def save(self, path: str | os.PathLike) -> None:
        """Write config and parameters to the core's ``.npz`` format (:func:`dpa2_core.save`)."""
        dc.save(path, self.config, self.numpy_params())

    # ------------------------------------------------------------ dtype/device
    def _sync_precision(self) -> None:
        """Keep ``config.precision`` equal to the parameters' dtype."""
        dtype = _tree.torch_dtype_name(self.type_embedding[0].w.dtype)
        if dtype != self.config.dtype_name:
            self.config = dataclasses.replace(self.config, precision=dtype)

    def _apply(self, fn, recurse: bool = True):
        out = super()._apply(fn, recurse)
        self._sync_precision()
        return out

    @property
    def dim_out(self) -> int:
        return self.config.dim_out

    # ------------------------------------------------------------ forward
    def forward(self, coord_ext: torch.Tensor, atype_ext: torch.Tensor, nlist: torch.Tensor,
                mapping: torch.Tensor | None = None, *, slot_widths: SlotWidths | None = None
                ) -> dc.DescriptorOutput:
        """The core's five outputs; see :func:`dpa2_core.descriptor` for the shapes.

        coord_ext: (nf, nall, 3); atype_ext: (nf, nall); nlist: (nf, nloc, nnei);
        mapping: (nf, nall). Values are validated on CPU in eager mode only.
        ``slot_widths``: static bounds on the slots in use (:meth:`live_widths` of these
        inputs), so that a compiled or exported forward cuts the padding the eager one
        cuts by itself; None: eager calls read them from the values, traced calls cut
        nothing.
        """
        return dc.descriptor(self.params(), self.config, coord_ext, atype_ext, nlist, mapping,
                             validate=validate_inputs(coord_ext), slot_widths=slot_widths)

    def live_widths(self, coord_ext: torch.Tensor, nlist: torch.Tensor, multiple: int = 4
                    ) -> SlotWidths:
        """Bounds on the slots in use in every block for these concrete inputs (one host
        copy of the coordinates and the list): :func:`dpa2_core.model.dpa2.live_widths`,
        rounded up to ``multiple``. For ``forward(..., slot_widths=)`` under
        ``torch.compile``; it reads the statistics, so call it outside the compiled code."""
        stats = {block: {"davg": to_numpy(getattr(self, block).davg)}  # what it reads
                 for block in ("repinit", "three_body") if hasattr(self, block)}
        return live_widths(np, self.config, stats, to_numpy(coord_ext), to_numpy(nlist),
                           multiple)

    def forward_structure(self, coord: torch.Tensor, atype: torch.Tensor,
                          box: torch.Tensor | None = None) -> dc.DescriptorOutput:
        """Descriptor of plain structures; the neighbor list is built on the host.

        coord: (nf, nloc, 3) or (nloc, 3); atype: (nf, nloc) or (nloc,); box: (nf, 3, 3),
        (3, 3) or None (no periodicity). Unbatched inputs give unbatched outputs.
        Gradients flow back to ``coord`` (ghost images included). Inputs are moved to the
        module's device; the list is built on the host from a copy.
        """
        single = coord.ndim == 2
        if single:
            coord, atype = coord[None], atype[None]
            box = None if box is None else box.reshape(1, 3, 3)
        coord = coord.to(self.type_embedding[0].w.device)  # differentiable move
        nb = neighbors_for(coord, atype, self.config, box)
        out = self.forward_neighbors(coord, nb)
        return dc.DescriptorOutput(*(x[0] for x in out)) if single else out

    def forward_neighbors(self, coord: torch.Tensor, nb: Neighbors) -> dc.DescriptorOutput:
        """Descriptor from local coordinates (nf, nloc, 3) and prebuilt :class:`Neighbors`."""
        return self(extend_coord(coord, nb), nb.atype_ext, nb.nlist, nb.mapping)
