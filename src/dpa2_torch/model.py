"""``EnergyModel``: DPA-2 descriptor + energy fitting net, forces and virials by autograd.

Atomic energy (deepmd-kit's convention, checked against its models):
``e_i = FittingNet(D_i) + bias_atom_e[t_i] + out_bias[t_i]``; the fitting net and
``bias_atom_e`` are :func:`dpa2_core.model.fitting.atomic_energy`, ``out_bias`` is the
model-level per-type shift that statistics (least squares on the energies) set.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from dpa2_core.array_api import to_numpy
from dpa2_core.io.deepmd_model import DeepmdModel
from dpa2_core.io.loader import load_model as load_model_record
from dpa2_core.model.dpa2 import SlotWidths, grow_widths
from dpa2_core.model.fitting import FittingConfig, atomic_energy, init_fitting_params

from . import _tree
from .deepmd_io import model_from_file
from .descriptor import DescrptDPA2
from .neighbors import Neighbors, extend_coord, neighbors_for

__all__ = ["EnergyModel", "load_model", "WIDTH_MULTIPLE"]


def _fitting_kind(trainable: bool) -> _tree.Kind:
    """``bias_atom_e`` is a buffer (set from data); the net follows ``trainable``."""

    def kind(path: tuple) -> str:
        if path[-1] == "bias_atom_e":
            return _tree.BUFFER
        return _tree.TRAIN if trainable else _tree.FROZEN

    return kind


#: :meth:`EnergyModel.compile_forces` rounds its slot bounds up to multiples of this: in
#: 80 frames of the shared water data (data_0) bounds of 4 took 6 values, of 8 took 2, so
#: the running bound settles after one or two recompiles
WIDTH_MULTIPLE = 8


class EnergyModel(nn.Module):
    """Energy model: ``descriptor`` (:class:`DescrptDPA2`), ``fitting`` net, ``out_bias``.

    ``forward(coord, atype, box)`` returns energy (nf,), atom_energy (nf, nloc),
    force (nf, nloc, 3) = -dE/dx and virial (nf, 3, 3) = -sum_ext dE/dx (x) x (deepmd's).
    """

    def __init__(self, descriptor: DescrptDPA2, fitting: FittingConfig | dict | None = None,
                 fitting_params: dict | None = None, out_bias: Any = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.descriptor = descriptor
        cfg = descriptor.config
        if not isinstance(fitting, FittingConfig):  # a deepmd-kit ``fitting_net`` dict
            fitting = FittingConfig.from_input(fitting or {}, cfg.ntypes, cfg.dim_out,
                                               precision=cfg.dtype_name)
        self.fitting_config = fitting
        if fitting_params is None:
            fitting_params = init_fitting_params(fitting, seed)
        self.fitting = _tree.build(fitting_params, _fitting_kind(fitting.trainable))
        self._compiled_force = None
        #: the slot bounds the compiled force program runs with (:meth:`compile_forces`)
        self.compiled_widths: SlotWidths | None = None
        bias = np.zeros(cfg.ntypes) if out_bias is None else to_numpy(out_bias)
        self.register_buffer("out_bias", torch.as_tensor(bias.reshape(cfg.ntypes)).to(
            self.fitting.layers[0].w.dtype))

    # ------------------------------------------------------------ construction
    @classmethod
    def from_deepmd(cls, source: Any, head: str | None = None) -> EnergyModel:
        """A whole energy model from any model file (:func:`dpa2_core.io.load_model`: a
        deepmd-kit .dp/.yaml/.json or .pt checkpoint, a ``dpa2 train`` checkpoint; ``head``
        selects a multi-task head) or a deepmd-kit model dict."""
        if isinstance(source, dict):
            if head is not None:
                raise ValueError(f"head={head!r}: a model dict has no heads")
            return cls.from_record(model_from_file(source))
        return cls.from_record(load_model_record(source, head))

    @classmethod
    def from_record(cls, m: DeepmdModel) -> EnergyModel:
        """The model of a :class:`dpa2_core.DeepmdModel` (numpy pytrees, copied once)."""
        return cls(DescrptDPA2(m.config, params=m.params), m.fitting_config, m.fitting_params,
                   m.out_bias)

    @property
    def config(self):
        return self.descriptor.config

    def to_deepmd_model(self) -> DeepmdModel:
        """The whole model as numpy pytrees (:class:`dpa2_core.DeepmdModel`), e.g. for
        :func:`dpa2_core.io.save_deepmd_model` (back into deepmd-kit)."""
        return DeepmdModel(self.config, self.descriptor.numpy_params(), self.fitting_config,
                           _tree.to_numpy_tree(_tree.tree_of(self.fitting)),
                           self.out_bias.detach().cpu().numpy().copy())

    def _apply(self, fn, recurse: bool = True):
        out = super()._apply(fn, recurse)
        dtype = _tree.torch_dtype_name(self.fitting.layers[0].w.dtype)
        if dtype != self.fitting_config.precision:
            self.fitting_config = dataclasses.replace(self.fitting_config, precision=dtype)
        return out

    # ------------------------------------------------------------ energies
    def atom_energy_lower(self, coord_ext: torch.Tensor, atype_ext: torch.Tensor,
                          nlist: torch.Tensor, mapping: torch.Tensor | None = None,
                          slot_widths: SlotWidths | None = None) -> torch.Tensor:
        """Per-atom energies (nf, nloc) of the extended system; virtual atoms give 0.
        ``slot_widths``: see :meth:`DescrptDPA2.forward`."""
        desc = self.descriptor(coord_ext, atype_ext, nlist, mapping,
                               slot_widths=slot_widths).descriptor
        atype = atype_ext[:, : nlist.shape[1]]
        fp = _tree.tree_of(self.fitting)
        desc = desc.to(fp["layers"][0]["w"].dtype)
        return atomic_energy(fp, self.fitting_config, desc, atype, self.out_bias)

    def forward(self, coord: torch.Tensor, atype: torch.Tensor, box: torch.Tensor | None = None,
                *, neighbors: Neighbors | None = None, create_graph: bool | None = None,
                virial: bool = True) -> dict[str, torch.Tensor]:
        """Energies, forces and virial of structures.

        coord: (nf, nloc, 3) Å; atype: (nf, nloc); box: (nf, 3, 3) or None. ``neighbors``
        (prebuilt, on the model's device) skips the host neighbor-list build.
        ``create_graph`` (default: ``self.training``) keeps the force graph for
        force-matching losses (double backward); without the virial it goes through
        :meth:`energy_force` (same numbers).
        """
        if create_graph is None:
            create_graph = self.training
        coord = coord.to(self.out_bias.device)  # differentiable move to the model
        nb = neighbors if neighbors is not None else neighbors_for(coord, atype, self.config,
                                                                    box)
        if not virial and (create_graph or self._compiled_force is not None):
            # force training: the functional gradient is ~15% faster than
            # autograd.grad(create_graph=True) on CPU, and it is what compile captures
            atom_e, force = (self._compiled_force or self.energy_force)(coord, nb)
            return {"energy": atom_e.sum(dim=-1), "atom_energy": atom_e, "force": force}
        if not coord.requires_grad:
            coord = coord.detach().requires_grad_(True)
        coord_ext = extend_coord(coord, nb)
        atom_e = self.atom_energy_lower(coord_ext, nb.atype_ext, nb.nlist, nb.mapping)
        energy = atom_e.sum(dim=-1)
        inputs = (coord, coord_ext) if virial else (coord,)
        grads = torch.autograd.grad(energy.sum(), inputs, create_graph=create_graph)
        out = {"energy": energy, "atom_energy": atom_e, "force": -grads[0]}
        if virial:
            # W = -sum_a x_a (x) dE/dx_a over extended atoms (deepmd's sign and layout)
            out["virial"] = -torch.einsum("fai,faj->fij", grads[1], coord_ext)
        return out

    def energy_force(self, coord: torch.Tensor, nb: Neighbors,
                     slot_widths: SlotWidths | None = None) -> tuple[torch.Tensor, ...]:
        """(atom_energy (nf, nloc), force (nf, nloc, 3)), the force as a functional gradient
        (``torch.func.grad``): one graph under ``torch.compile``, and still differentiable
        w.r.t. the parameters (force training). Same numbers as :meth:`forward`.
        ``slot_widths``: see :meth:`DescrptDPA2.forward`."""

        def total(c: torch.Tensor):
            atom_e = self.atom_energy_lower(extend_coord(c, nb), nb.atype_ext, nb.nlist,
                                            nb.mapping, slot_widths)
            return atom_e.sum(), atom_e

        grad, atom_e = torch.func.grad(total, has_aux=True)(coord)
        return atom_e, -grad

    def compile_forces(self, **compile_kwargs) -> EnergyModel:
        """Route ``forward(..., virial=False)`` through ``torch.compile(energy_force)``
        (fullgraph; forward, force and the parameter backward in compiled graphs). The
        number of extended atoms is marked dynamic: ghost counts vary per frame.
        Each call reads the slots in use on the host (:meth:`DescrptDPA2.live_widths`) and
        the compiled program cuts the padding beyond the largest bound seen so far, as
        the eager path does (:func:`dpa2_core.model.dpa2.grow_widths`: a recompile only
        when a structure needs wider blocks; bounds are multiples of
        :data:`WIDTH_MULTIPLE`). ``compile_forces(off=True)`` switches back to eager."""
        if compile_kwargs.pop("off", False):
            self._compiled_force = None
            return self
        compiled = torch.compile(self.energy_force, fullgraph=True, **compile_kwargs)
        self.compiled_widths = None

        def call(coord: torch.Tensor, nb: Neighbors):
            with torch.no_grad():
                widths = self.descriptor.live_widths(extend_coord(coord, nb), nb.nlist,
                                                     multiple=WIDTH_MULTIPLE)
            self.compiled_widths = grow_widths(self.compiled_widths, widths)
            for x in nb:
                torch._dynamo.maybe_mark_dynamic(x, 1)
            return compiled(coord, nb, self.compiled_widths)

        self._compiled_force = call
        return self

    def energy_lower(self, coord_ext, atype_ext, nlist, mapping=None) -> torch.Tensor:
        """Total energy (nf,) of an extended system (compile/export-friendly, no autograd)."""
        return self.atom_energy_lower(coord_ext, atype_ext, nlist, mapping).sum(dim=-1)


def load_model(source: Any, head: str | None = None, device: Any = None,
               dtype: Any = None) -> EnergyModel:
    """An :class:`EnergyModel` from any model file (:func:`dpa2_core.io.load_model` reads
    it, recognising the kind by content), from a :class:`dpa2_core.DeepmdModel` record or
    an :class:`EnergyModel` itself (no copy); moved to ``device`` and cast to ``dtype``
    (``"float32"``, ``torch.float32``...) if given. The one way every caller (calculator,
    torch-sim, export) turns what a user hands it into a model.
    """
    if isinstance(source, str | os.PathLike):
        model = EnergyModel.from_deepmd(source, head)
    elif head is not None:
        raise ValueError(f"head={head!r}: only for a multi-task model file, not a model object")
    elif isinstance(source, EnergyModel):
        model = source
    elif isinstance(source, DeepmdModel):
        model = EnergyModel.from_record(source)
    elif isinstance(source, nn.Module):
        raise ValueError(f"model: a {type(source).__name__}, not an EnergyModel (a whole "
                         "energy model is needed: descriptor + fitting net)")
    else:
        raise TypeError(f"model: expected a model file, a DeepmdModel or an EnergyModel, got "
                        f"{type(source).__name__}")
    if dtype is not None:
        model = model.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
    if device is not None:
        model = model.to(device)
    return model
