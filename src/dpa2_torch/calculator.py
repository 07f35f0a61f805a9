"""``Calculator``: an ASE calculator on :class:`dpa2_torch.EnergyModel`.

The ASE side (types, checks, the neighbor list kept within a skin, forces and stress) is
:class:`dpa2_core.calculator.BaseCalculator`; this module only runs the model's lower
interface: per-atom energies of the extended frame, forces on every extended atom and the
virial by one backward pass.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpa2_core.calculator import DEFAULT_SKIN, MIN_DISTANCE, BaseCalculator, artifact_precision

from .export import ExportedModel, load_exported
from .model import EnergyModel, load_model

__all__ = ["Calculator"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}
_ARTIFACTS = (".pte", ".pt2")  # read by load_exported, not by the one loader



class Calculator(BaseCalculator):
    """ASE calculator (energy, free_energy, energies, forces, stress) on a torch model.

    Parameters
    ----------
    model : str, os.PathLike, EnergyModel or DeepmdModel
        A model file (deepmd-kit ``.dp``/``.yaml``/``.json``, a deepmd-kit ``.pt`` training
        checkpoint, a ``dpa2 train`` torch checkpoint, an exported ``.pte``/``.pt2`` of
        :func:`dpa2_torch.export_model`, which runs without the eager model) or a model
        object.
    head : str, optional
        The head of a multi-task deepmd-kit checkpoint.
    device : str or torch.device
        Where the model runs (``"cpu"``, ``"cuda"``...).
    dtype : {"float64", "float32"}, optional
        Precision of the model (cast from the file's if it differs); default float64, and
        an exported artifact's own precision.
    skin, min_distance : float
        Å; see :class:`dpa2_core.calculator.BaseCalculator`.
    """

    def __init__(self, model: Any, head: str | None = None, device: Any = "cpu",
                 dtype: str | None = None, skin: float = DEFAULT_SKIN,
                 min_distance: float = MIN_DISTANCE, **kwargs: Any) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r}: torch sees no CUDA device (use 'cpu')")
        self.program: ExportedModel | None = None
        self.model: EnergyModel | None = None
        if isinstance(model, str | os.PathLike) and Path(model).suffix in _ARTIFACTS:
            self.program = load_exported(model)
            dtype = artifact_precision(self.program, dtype, head)
            if self.device.type != "cpu":
                raise ValueError(f"device={device!r}: {self.program.path.name} was exported "
                                 "for the CPU (export it on the device it should run on)")
            type_map, rcut, nsel = self.program.type_map, self.program.rcut, self.program.nnei
        else:
            dtype = "float64" if dtype is None else dtype
            if dtype not in _DTYPES:
                raise ValueError(f"dtype={dtype!r}: must be one of {sorted(_DTYPES)}")
            self.model = load_model(model, head, device, _DTYPES[dtype]).eval()
            cfg = self.model.config
            type_map, rcut, nsel = cfg.type_map, cfg.rcut, cfg.nsel
        super().__init__(type_map, rcut, nsel, dtype=dtype, skin=skin,
                         min_distance=min_distance, **kwargs)

    def _evaluate(self, coord_ext: np.ndarray, atype_ext: np.ndarray, nlist: np.ndarray,
                  mapping: np.ndarray) -> dict[str, np.ndarray]:
        if self.program is not None:
            return self.program(coord_ext, atype_ext, nlist, mapping)
        dev, dt = self.device, _DTYPES[self.dtype_name]
        x = torch.as_tensor(coord_ext, dtype=dt, device=dev).requires_grad_(True)
        a, n, m = (torch.as_tensor(v, device=dev) for v in (atype_ext, nlist, mapping))
        atom_e = self.model.atom_energy_lower(x, a, n, m)
        energy = atom_e.sum(dim=-1)
        (grad,) = torch.autograd.grad(energy.sum(), x)
        force = -grad
        virial = torch.einsum("fai,faj->fij", force, x)  # deepmd's sign: sum_a f_a (x) x_a
        return {k: v.detach().cpu().double().numpy() for k, v in (
            ("energy", energy), ("atom_energy", atom_e), ("force_ext", force),
            ("virial", virial))}
