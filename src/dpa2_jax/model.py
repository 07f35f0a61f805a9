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
from dpa2_core.io.deepmd_model import load_deepmd_model as load_deepmd_model_np
from dpa2_core.model.fitting import FittingConfig, atomic_energy, init_fitting_params
from dpa2_core.neighbors.extension import Extension
from dpa2_core.neighbors.extension import extend_coord as _extend_coord

from .descriptor import descriptor
from .params import check_precision, to_jax, trainable_mask

__all__ = [
    "atom_energy", "energy", "energy_and_forces", "extend_coord", "init_model",
    "load_deepmd_model", "model_trainable", "ModelConfig", "to_deepmd_model",
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
    m = load_deepmd_model_np(source)
    return ModelConfig(m.config, m.fitting_config), {
        "descriptor": to_jax(m.params), "fitting": to_jax(m.fitting_params),
        "out_bias": to_jax(m.out_bias.astype(m.config.dtype_name))}


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
                mapping=None) -> Array:
    """Per-atom energies (nf, nloc), or (nloc,) for one frame; virtual atoms give 0."""
    desc = descriptor(params["descriptor"], config.descriptor, coord_ext, atype_ext, nlist,
                      mapping).descriptor
    atype = atype_ext[..., : nlist.shape[-2]]
    return atomic_energy(params["fitting"], config.fitting, desc, atype,
                         params.get("out_bias"))


def extend_coord(coord: Array, ext: Extension) -> Array:
    """coord (..., nloc, 3) -> coord_ext (..., nall, 3) (:func:`dpa2_core.neighbors.
    extension.extend_coord`); padding rows read atom 0."""
    return _extend_coord(jnp, coord, ext.mapping, ext.shift)


def energy(params: dict, config: ModelConfig, coord: Array, ext: Extension) -> Array:
    """Total energy (nf,) (or () for one frame) of local coordinates coord (.., nloc, 3)."""
    e = atom_energy(params, config, extend_coord(coord, ext), ext.atype_ext, ext.nlist,
                    ext.mapping)
    return jnp.sum(e, axis=-1)


def energy_and_forces(params: dict, config: ModelConfig, coord: Array, ext: Extension
                      ) -> tuple[Array, Array]:
    """(energy (nf,), force (nf, nloc, 3) = -dE/dcoord); differentiable again in params."""

    def total(c):
        e = energy(params, config, c, ext)
        return jnp.sum(e), e

    grad, e = jax.grad(total, has_aux=True)(coord)
    return e, -grad
