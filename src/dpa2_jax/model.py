"""Energy model: DPA-2 descriptor + :func:`dpa2_core.model.fitting.atomic_energy`; forces by grad.

The torch shim's :class:`dpa2_torch.EnergyModel` layout: parameters are one pytree
``{"descriptor", "fitting", "out_bias"}`` (``out_bias`` (ntypes,), deepmd-kit's
model-level per-type energy that the statistics set); the static :class:`ModelConfig`
holds both configs. Forces are ``-dE/dcoord`` with respect to the local coordinates,
before ghost extension (``coord_ext = coord[mapping] + shift``), so every periodic image
moves with its atom.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import dpa2_core as dc
from dpa2_core.array_api import Array
from dpa2_core.io.deepmd_model import DeepmdModel
from dpa2_core.io.deepmd_model import load_deepmd_model as load_deepmd_model_np
from dpa2_core.io.loader import load_model as load_model_np
from dpa2_core.model.dpa2 import SlotWidths
from dpa2_core.model.fitting import FittingConfig, atomic_energy, init_fitting_params
from dpa2_core.neighbors.extension import Extension
from dpa2_core.neighbors.extension import extend_coord as _extend_coord

from .descriptor import descriptor
from .params import as_params, check_precision, to_jax, trainable_mask

__all__ = [
    "ModelConfig", "atom_energy", "energy", "energy_and_forces", "energy_force_virial",
    "extend_coord", "from_record", "init_model", "load_deepmd_model", "load_model",
    "model_trainable", "to_deepmd_model",
]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Static configuration of the energy model (hashable)."""

    descriptor: dc.DPA2Config
    fitting: FittingConfig

    def __post_init__(self) -> None:
        if self.fitting.precision != self.descriptor.dtype_name:
            raise ValueError(f"fitting_net.precision={self.fitting.precision!r}: must match the "
                             f"descriptor precision {self.descriptor.precision!r}")

    @classmethod
    def build(cls, descriptor: dc.DPA2Config, fitting: dict | None = None) -> ModelConfig:
        """Fitting net from a deepmd-kit ``fitting_net`` dict; precision follows the
        descriptor unless given."""
        return cls(descriptor, FittingConfig.from_input(fitting or {}, descriptor.ntypes,
                                                        descriptor.dim_out,
                                                        precision=descriptor.dtype_name))


def init_model(config: ModelConfig, seed: int = 0, descriptor_params: Any = None,
               fitting_seed: int | None = None, out_bias: Any = None) -> dict:
    """``{"descriptor", "fitting", "out_bias"}`` jax parameters (descriptor ones given or
    drawn; ``out_bias`` zeros unless given)."""
    check_precision(config.descriptor.dtype_name)
    desc = dc.init_params(config.descriptor, seed) if descriptor_params is None \
        else descriptor_params
    fit = init_fitting_params(config.fitting, seed if fitting_seed is None else fitting_seed)
    ntypes = config.descriptor.ntypes
    bias = np.zeros(ntypes) if out_bias is None else np.asarray(out_bias).reshape(ntypes)
    return {"descriptor": to_jax(desc), "fitting": to_jax(fit),
            "out_bias": to_jax(bias.astype(config.descriptor.dtype_name))}


def load_deepmd_model(source: dict | str | os.PathLike) -> tuple[ModelConfig, dict]:
    """``(ModelConfig, params)`` of a whole deepmd-kit energy model (``.dp``/``.yaml``/
    ``.json`` or its dict): descriptor, fitting net and ``out_bias``."""
    if isinstance(source, dict):
        return from_record(load_deepmd_model_np(source))
    return load_model(source)


def from_record(m: DeepmdModel, dtype: str | None = None) -> tuple[ModelConfig, dict]:
    """``(ModelConfig, jax params)`` of a :class:`dpa2_core.DeepmdModel` (converted once);
    ``dtype`` (e.g. ``"float32"``) is an explicit cast of configs and parameters."""
    desc, fit = m.config, m.fitting_config
    if dtype is not None:
        desc = dataclasses.replace(desc, precision=dtype)
        fit = dataclasses.replace(fit, precision=desc.dtype_name)
    name = desc.dtype_name
    check_precision(name)
    return ModelConfig(desc, fit), {
        "descriptor": to_jax(m.params, name), "fitting": to_jax(m.fitting_params, name),
        "out_bias": to_jax(m.out_bias, name)}  # any array kind (a torch Parameter too)


def load_model(source: Any, head: str | None = None, dtype: str | None = None
               ) -> tuple[ModelConfig, dict]:
    """``(ModelConfig, jax params)`` of any model file (:func:`dpa2_core.io.load_model`
    reads it, recognising the kind by content: deepmd-kit .dp/.yaml/.json and .pt
    checkpoints, ``dpa2 train`` checkpoints of both backends) or of a
    :class:`dpa2_core.DeepmdModel` record, or a ``(ModelConfig, params)`` pair itself
    (returned as is unless ``dtype`` casts it): the one way the calculator and the export
    turn what a user hands them into a model. A float64 model needs ``jax_enable_x64``
    unless ``dtype="float32"`` casts it."""
    if isinstance(source, str | os.PathLike):
        return from_record(load_model_np(source, head), dtype)
    if head is not None:
        raise ValueError(f"head={head!r}: only for a multi-task model file, not a model object")
    if isinstance(source, DeepmdModel):
        return from_record(source, dtype)
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], ModelConfig):
        if dtype is None or dtype == source[0].descriptor.dtype_name:
            return source
        return from_record(to_deepmd_model(*source), dtype)
    raise TypeError(f"model: expected a model file, a DeepmdModel or (ModelConfig, params), "
                    f"got {type(source).__name__}")


def to_deepmd_model(config: ModelConfig, params: dict) -> dc.DeepmdModel:
    """The whole model as numpy pytrees (:class:`dpa2_core.DeepmdModel`), e.g. for
    :func:`dpa2_core.io.save_deepmd_model` (back into deepmd-kit)."""
    host = jax.tree.map(lambda x: np.array(x, copy=True), params)
    return dc.DeepmdModel(config.descriptor, host["descriptor"], config.fitting,
                          host["fitting"], np.asarray(host["out_bias"]))


def model_trainable(params: dict, config: ModelConfig) -> dict:
    """Bool tree: statistics, ``bias_atom_e`` and ``out_bias`` (set from data) are frozen;
    the fitting net follows ``fitting.trainable``."""
    fit = jax.tree_util.tree_map_with_path(
        lambda path, _: config.fitting.trainable
        and jax.tree_util.keystr(path) != "['bias_atom_e']", params["fitting"])
    return {"descriptor": trainable_mask(params["descriptor"], config.descriptor),
            "fitting": fit, "out_bias": False}


def atom_energy(params: dict, config: ModelConfig, coord_ext, atype_ext, nlist,
                mapping=None, *, slot_widths: SlotWidths | None = None) -> Array:
    """Per-atom energies (nf, nloc), or (nloc,) for one frame; virtual atoms give 0.

    ``slot_widths`` (static under jit): the bounds of
    :func:`dpa2_core.model.dpa2.live_widths` on these inputs, so a traced call cuts the
    slots no atom fills.
    """
    params = as_params(params)  # numpy/torch trees: converted once, at the edge
    desc = descriptor(params["descriptor"], config.descriptor, coord_ext, atype_ext, nlist,
                      mapping, slot_widths=slot_widths).descriptor
    atype = atype_ext[..., : nlist.shape[-2]]
    return atomic_energy(params["fitting"], config.fitting, desc, atype,
                         params.get("out_bias"))


def extend_coord(coord: Array, ext: Extension) -> Array:
    """coord (..., nloc, 3) -> coord_ext (..., nall, 3) (:func:`dpa2_core.neighbors.
    extension.extend_coord`); padding rows read atom 0."""
    return _extend_coord(jnp, coord, ext.mapping, ext.shift)


def energy(params: dict, config: ModelConfig, coord: Array, ext: Extension) -> Array:
    """Total energy (nf,) (or () for one frame) of local coordinates coord (.., nloc, 3)."""
    params = as_params(params)
    e = atom_energy(params, config, extend_coord(coord, ext), ext.atype_ext, ext.nlist,
                    ext.mapping)
    return jnp.sum(e, axis=-1)


def energy_and_forces(params: dict, config: ModelConfig, coord: Array, ext: Extension
                      ) -> tuple[Array, Array]:
    """(energy (nf,), force (nf, nloc, 3) = -dE/dcoord); differentiable again in params."""
    params = as_params(params)

    def total(c):
        e = energy(params, config, c, ext)
        return jnp.sum(e), e

    grad, e = jax.grad(total, has_aux=True)(coord)
    return e, -grad


def energy_force_virial(params: dict, config: ModelConfig, coord: Array, ext: Extension
                        ) -> tuple[Array, Array, Array]:
    """(atom_energy (nf, nloc), force (nf, nloc, 3), virial (nf, 3, 3)) of one gradient.

    The gradient is taken w.r.t. the extended coordinates ``g = dE/dcoord_ext``: the force
    on a local atom sums ``-g`` over its images (``coord_ext = coord[mapping] + shift``) and
    the virial is ``-sum_a coord_ext_a (x) g_a`` (deepmd's sign and layout, as
    :class:`dpa2_torch.EnergyModel`); padding atoms have ``g = 0``.
    """
    params = as_params(params)
    coord_ext = extend_coord(coord, ext)

    def total(c_ext):
        e = atom_energy(params, config, c_ext, ext.atype_ext, ext.nlist, ext.mapping)
        return jnp.sum(e), e

    g, atom_e = jax.grad(total, has_aux=True)(coord_ext)
    nloc = coord.shape[-2]
    slot = jnp.where(ext.mapping >= 0, ext.mapping, nloc)  # padding -> a dropped row
    frame = jnp.arange(g.shape[0])[:, None]
    force = -jnp.zeros((g.shape[0], nloc + 1, 3), g.dtype).at[frame, slot].add(g)[:, :nloc]
    virial = -jnp.einsum("fai,faj->fij", g, coord_ext)
    return atom_e, force, virial
