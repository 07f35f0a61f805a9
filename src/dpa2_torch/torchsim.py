"""``TorchSimModel``: :class:`dpa2_torch.EnergyModel` as a torch-sim ``ModelInterface``.

torch-sim (``pip install torch-sim-atomistic``, the ``md`` extra) batches many systems
into one ``SimState`` (atoms concatenated, ``system_idx`` saying whose each is). Here the
systems are padded to a common atom count with virtual atoms (type -1: no energy, never
neighbors) and evaluated in one batched forward; energies (n_systems,), forces
(n_atoms, 3) and stresses (n_systems, 3, 3) come back in torch-sim's layout, eV, eV/Å,
eV/Å³ (stress sign: ASE's, :func:`dpa2_core.calculator.stress_from_virial`). The
neighbor list is built on the host at every call (torch-sim moves atoms between calls).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch_sim.models.interface import ModelInterface
from torch_sim.state import SimState

from dpa2_core.calculator import stress_from_virial

from .model import EnergyModel, load_model
from .neighbors import neighbors_for

__all__ = ["TorchSimModel"]


def _atomic_numbers(type_map: tuple[str, ...]) -> np.ndarray:
    from ase.data import atomic_numbers

    unknown = [t for t in type_map if t not in atomic_numbers]
    if unknown:
        raise ValueError(f"type_map={list(type_map)}: {unknown} are not element symbols")
    return np.asarray([atomic_numbers[t] for t in type_map])


class TorchSimModel(ModelInterface):
    """A DPA-2 energy model for torch-sim's integrators, optimizers and runners.

    Parameters
    ----------
    model : EnergyModel or str
        The model, or a path :class:`dpa2_torch.calculator.Calculator` reads.
    device, dtype : torch device and dtype of the simulation (the model is moved there).
    compute_stress : bool
        Also return the stress (needs periodic systems).
    """

    def __init__(self, model: EnergyModel | str, *, device: Any = "cpu",
                 dtype: torch.dtype = torch.float64, compute_stress: bool = True,
                 head: str | None = None) -> None:
        super().__init__()
        self.model = load_model(model, head, device, dtype).eval()
        self._device, self._dtype = torch.device(device), dtype
        self._compute_forces, self._compute_stress = True, bool(compute_stress)
        self._memory_scales_with = "n_atoms_x_density"
        type_map = self.model.config.type_map
        if type_map is None:
            raise ValueError("model: has no type_map; torch-sim gives atomic numbers")
        self.type_map = tuple(type_map)
        table = np.full(int(_atomic_numbers(self.type_map).max()) + 1, -1, dtype=np.int64)
        table[_atomic_numbers(self.type_map)] = np.arange(len(self.type_map))
        self._types = torch.as_tensor(table)

    def _atom_types(self, numbers: torch.Tensor) -> torch.Tensor:
        z = numbers.detach().cpu().long()
        known = (z >= 0) & (z < len(self._types))
        types = torch.where(known, self._types[z.clamp(0, len(self._types) - 1)], -1)
        if bool((types < 0).any()):
            from ase.data import chemical_symbols

            bad = sorted({chemical_symbols[int(v)] for v in z[types < 0]})
            raise ValueError(f"state.atomic_numbers: element(s) {bad} not in the model's "
                             f"type_map={list(self.type_map)}")
        return types

    def forward(self, state: SimState | dict, **kwargs: Any) -> dict[str, torch.Tensor]:
        """energy (n_systems,), forces (n_atoms, 3), stress (n_systems, 3, 3) if asked."""
        if not isinstance(state, SimState):
            state = SimState(**state)
        sys_idx = state.system_idx.long()
        n_sys = int(sys_idx.max()) + 1 if sys_idx.numel() else 0
        counts = torch.bincount(sys_idx, minlength=n_sys)
        nmax = int(counts.max())
        # slot of every atom within its system (atoms of a system are contiguous or not)
        order = torch.argsort(sys_idx, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.empty_like(sys_idx)
        slot[order] = torch.arange(len(sys_idx), device=sys_idx.device) - starts[sys_idx[order]]
        dev, dt = self._device, self._dtype
        coord = torch.zeros(n_sys, nmax, 3, dtype=dt, device=dev)
        coord = coord.index_put((sys_idx, slot), state.positions.to(dev, dt))
        atype = torch.full((n_sys, nmax), -1, dtype=torch.long)
        atype[sys_idx.cpu(), slot.cpu()] = self._atom_types(state.atomic_numbers)
        atype = atype.to(dev)
        periodic = bool(torch.as_tensor(state.pbc).all())
        box = state.row_vector_cell.to(dev, dt) if periodic else None
        nb = neighbors_for(coord.detach(), atype, self.model.config, box)
        want_stress = self._compute_stress and periodic
        out = self.model(coord, atype, box, neighbors=nb, create_graph=False,
                         virial=want_stress)
        result = {"energy": out["energy"].detach(),
                  "forces": out["force"].detach()[sys_idx, slot]}
        if want_stress:
            volume = torch.abs(torch.linalg.det(box))
            result["stress"] = stress_from_virial(torch, out["virial"].detach(), volume)
        return result
