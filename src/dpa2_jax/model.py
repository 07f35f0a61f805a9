"""Energy model: DPA-2 descriptor + :func:`dpa2_core.fitting.atomic_energy`; forces by grad.

Parameters are one pytree ``{"descriptor": ..., "fitting": ...}``; the static
:class:`ModelConfig` holds both configs. Forces are ``-dE/dcoord`` with respect to the
local coordinates, before ghost extension (``coord_ext = coord[mapping] + shift``),
so every periodic image moves with its atom.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import dpa2_core as dc
from dpa2_core.config import PRECISIONS
from dpa2_core.fitting import FittingConfig, atomic_energy, init_fitting_params

from .descriptor import descriptor
from .params import check_precision, to_jax, trainable_mask

Array = Any


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Static configuration of the energy model (hashable)."""

    descriptor: dc.DPA2Config
    fitting: FittingConfig

    @classmethod
    def build(cls, descriptor: dc.DPA2Config, fitting: dict | None = None) -> ModelConfig:
        """Fitting net from a ``model.fitting_net``-style dict; precision follows the
        descriptor unless given."""
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in (fitting or {}).items()}
        kw.setdefault("precision", descriptor.dtype_name)
        fit = FittingConfig(ntypes=descriptor.ntypes, dim_descrpt=descriptor.dim_out, **kw)
        if PRECISIONS[fit.precision] != descriptor.dtype_name:
            raise ValueError(f"fitting_net.precision={fit.precision!r}: must match the "
                             f"descriptor precision {descriptor.precision!r}")
        return cls(descriptor, fit)


class Extension(NamedTuple):
    """Ghost extension of fixed topology: coord_ext = coord[mapping] + shift.

    atype_ext, mapping: (nf, nall) int (-1 on padding); nlist: (nf, nloc, nnei);
    shift: (nf, nall, 3). Leading ``nf`` may be absent (one frame).
    """

    atype_ext: Array
    mapping: Array
    nlist: Array
    shift: Array


def init_model(config: ModelConfig, seed: int = 0, descriptor_params: Any = None,
               fitting_seed: int | None = None) -> dict:
    """``{"descriptor", "fitting"}`` jax parameters (descriptor ones given or drawn)."""
    check_precision(config.descriptor.dtype_name)
    desc = dc.init_params(config.descriptor, seed) if descriptor_params is None \
        else descriptor_params
    fit = init_fitting_params(config.fitting, seed if fitting_seed is None else fitting_seed)
    return {"descriptor": to_jax(desc), "fitting": to_jax(fit)}


def model_trainable(params: dict, config: ModelConfig) -> dict:
    """Bool tree: statistics and ``bias_atom_e`` (set from data) are frozen."""
    fit = jax.tree_util.tree_map_with_path(
        lambda path, _: jax.tree_util.keystr(path) != "['bias_atom_e']", params["fitting"])
    return {"descriptor": trainable_mask(params["descriptor"], config.descriptor),
            "fitting": fit}


def atom_energy(params: dict, config: ModelConfig, coord_ext, atype_ext, nlist,
                mapping=None) -> Array:
    """Per-atom energies (nf, nloc), or (nloc,) for one frame; virtual atoms give 0."""
    desc = descriptor(params["descriptor"], config.descriptor, coord_ext, atype_ext, nlist,
                      mapping).descriptor
    atype = atype_ext[..., : nlist.shape[-2]]
    return atomic_energy(params["fitting"], config.fitting, desc, atype)


def extend_coord(coord: Array, ext: Extension) -> Array:
    """coord (..., nloc, 3) -> coord_ext (..., nall, 3); padding rows read atom 0."""
    idx = jnp.where(ext.mapping >= 0, ext.mapping, 0)
    return jnp.take_along_axis(coord, idx[..., None], axis=-2) + ext.shift.astype(coord.dtype)


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


def energy_bias(energies: np.ndarray, atype: np.ndarray, ntypes: int,
                rcond: float | None = None) -> np.ndarray:
    """Per-type energy shift (ntypes, 1): least squares of frame energies on type counts
    (minimum norm when compositions do not separate the types, as deepmd-kit)."""
    counts = np.stack([(atype == t).sum(axis=-1) for t in range(ntypes)], axis=-1)
    bias, *_ = np.linalg.lstsq(counts.astype(np.float64), energies.astype(np.float64),
                               rcond=rcond)
    return bias.reshape(ntypes, 1)
