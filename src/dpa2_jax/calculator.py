"""``Calculator``: an ASE calculator on the JAX energy model (:mod:`dpa2_jax.model`).

The ASE side (types, checks, the neighbor list kept within a skin, forces and stress) is
:class:`dpa2_core.calculator.BaseCalculator`; this module runs the lower interface under
one ``jax.jit`` (energies, forces on the extended atoms and the virial from one
``jax.grad``). The number of extended atoms changes when the list is rebuilt, so it is
padded up to a multiple of :attr:`Calculator.bucket` with virtual atoms: a handful of
compiles per run instead of one per rebuild.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dpa2_core.calculator import DEFAULT_SKIN, MIN_DISTANCE, BaseCalculator, artifact_precision
from dpa2_core.model.dpa2 import live_widths

from .export import ExportedModel, load_exported
from .model import ModelConfig, atom_energy, load_model
from .params import check_precision, to_jax

__all__ = ["Calculator"]


def _cast(config: ModelConfig, params: Any, dtype: str) -> tuple[ModelConfig, Any]:
    """Config and parameters in ``dtype`` (an explicit cast when the file's differs)."""
    check_precision(dtype, "dtype")
    desc = dataclasses.replace(config.descriptor, precision=dtype)
    fit = dataclasses.replace(config.fitting, precision=desc.dtype_name)
    return ModelConfig(desc, fit), to_jax(jax.tree.map(np.asarray, params), dtype=dtype)


def _make_lower(config: ModelConfig):
    """jit: (params, coord_ext, atype_ext, nlist, mapping) -> energy, atom_e, force, virial;
    ``slot_widths`` static (one compile per bound, see :func:`atom_energy`)."""

    def lower(params, coord_ext, atype_ext, nlist, mapping, slot_widths=None):
        def total(x):
            e = atom_energy(params, config, x, atype_ext, nlist, mapping,
                            slot_widths=slot_widths)
            return jnp.sum(e), e

        grad, atom_e = jax.grad(total, has_aux=True)(coord_ext)
        force = -grad
        virial = jnp.einsum("fai,faj->fij", force, coord_ext)  # sum_a f_a (x) x_a
        return jnp.sum(atom_e, axis=-1), atom_e, force, virial

    return jax.jit(lower, static_argnames=("slot_widths",))


class Calculator(BaseCalculator):
    """ASE calculator (energy, free_energy, energies, forces, stress) on a JAX model.

    Parameters
    ----------
    model : str, os.PathLike, (ModelConfig, params) or DeepmdModel
        A model file (deepmd-kit ``.dp``/``.yaml``/``.json``, a ``dpa2 train`` jax
        checkpoint ``.npz``, an exported ``.jaxexport`` of :func:`dpa2_jax.export_model`,
        which runs without the model's code) or a model object.
    head : str, optional
        The head of a multi-task model file.
    device : str or jax.Device, optional
        Where the model runs (``"cpu"``, ``"gpu"`` or a device); default: JAX's default.
    dtype : {"float64", "float32"}, optional
        Precision of the model (default float64, and an exported artifact's own); float64
        needs ``jax_enable_x64`` (a clear error otherwise).
    skin, min_distance : float
        Å; see :class:`dpa2_core.calculator.BaseCalculator`.
    """

    bucket = 64  # nall padded to a multiple of 64: a new compile only every 64 ghosts

    def __init__(self, model: Any, head: str | None = None, device: Any = None,
                 dtype: str | None = None, skin: float = DEFAULT_SKIN,
                 min_distance: float = MIN_DISTANCE, **kwargs: Any) -> None:
        if isinstance(device, str):
            device = jax.devices(device)[0]
        self.device = device
        self.program: ExportedModel | None = None
        if isinstance(model, str | os.PathLike) and Path(model).suffix == ".jaxexport":
            self.program = load_exported(model)
            dtype = artifact_precision(self.program, dtype, head)
            type_map, rcut, nsel = self.program.type_map, self.program.rcut, self.program.nnei
        else:
            dtype = "float64" if dtype is None else dtype
            config, params = load_model(model, head)
            self.config, params = _cast(config, params, dtype)
            self.params = params if device is None else jax.device_put(params, device)
            self._lower = _make_lower(self.config)
            cfg = self.config.descriptor
            type_map, rcut, nsel = cfg.type_map, cfg.rcut, cfg.nsel
        super().__init__(type_map, rcut, nsel, dtype=dtype, skin=skin,
                         min_distance=min_distance, **kwargs)

    def _evaluate(self, coord_ext: np.ndarray, atype_ext: np.ndarray, nlist: np.ndarray,
                  mapping: np.ndarray) -> dict[str, np.ndarray]:
        if self.program is not None:
            where = contextlib.nullcontext() if self.device is None else \
                jax.default_device(self.device)
            with where:
                return self.program(coord_ext, atype_ext, nlist, mapping)
        put = (lambda x: x) if self.device is None else \
            (lambda x: jax.device_put(x, self.device))
        args = (put(jnp.asarray(coord_ext, dtype=self.config.descriptor.dtype_name)),
                *(put(jnp.asarray(v)) for v in (atype_ext, nlist, mapping)))
        # the bounds on the slots in use, from the host copies (the compiled step cuts the
        # slots no atom fills; they change in steps of 8, so recompiles are rare)
        widths = live_widths(np, self.config.descriptor, self.params["descriptor"],
                             coord_ext, nlist)
        energy, atom_e, force, virial = self._lower(self.params, *args, slot_widths=widths)
        return {"energy": np.asarray(energy, dtype=np.float64),
                "atom_energy": np.asarray(atom_e, dtype=np.float64),
                "force_ext": np.asarray(force, dtype=np.float64),
                "virial": np.asarray(virial, dtype=np.float64)}
