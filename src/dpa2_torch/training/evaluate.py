"""Energy and force errors of a model on deepmd-format systems (``dpa2 test``)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from dpa2_core.io.npy_data import DeepmdSystem
from dpa2_core.training.metrics import energy_force_errors, weighted_errors

from ..model import EnergyModel

__all__ = ["evaluate_systems", "predict", "report", "SystemErrors"]


class SystemErrors(NamedTuple):
    """Errors on one system: energies in eV (total and per atom), forces in eV/Å."""

    name: str
    nframes: int
    natoms: int
    rmse_e: float
    mae_e: float
    rmse_f: float
    mae_f: float

    @property
    def rmse_e_atom(self) -> float:
        return self.rmse_e / self.natoms


def predict(model: EnergyModel, coord, atype, box, batch: int = 4) -> tuple:
    """(energy (nf,), force (nf, nloc, 3)) numpy predictions, ``batch`` frames at a time."""
    p = next(model.parameters())
    energies, forces = [], []
    for s in range(0, coord.shape[0], batch):
        c = torch.as_tensor(coord[s : s + batch], dtype=p.dtype, device=p.device)
        a = torch.as_tensor(atype[s : s + batch], device=p.device)
        b = None if box is None else torch.as_tensor(box[s : s + batch], dtype=p.dtype,
                                                     device=p.device)
        out = model(c, a, b, create_graph=False, virial=False)
        energies.append(out["energy"].detach().cpu().numpy())
        forces.append(out["force"].detach().cpu().numpy())
    return np.concatenate(energies), np.concatenate(forces)


def evaluate_systems(model: EnergyModel, systems: list[Path], numb_test: int | None = None
                     ) -> list[SystemErrors]:
    model.eval()
    type_map = list(model.config.type_map) if model.config.type_map else None
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    results = []
    for path in systems:
        f = DeepmdSystem(path, type_map).frames(dtype)
        n = f.coord.shape[0] if numb_test is None else min(numb_test, f.coord.shape[0])
        if f.energy is None:
            raise ValueError(f"system={str(path)!r}: no energy.npy to compare against")
        energy, force = predict(model, f.coord[:n], f.atype[:n], None if f.box is None
                                else f.box[:n])
        e = energy_force_errors(energy, f.energy[:n], f.coord.shape[1], force,
                                None if f.force is None else f.force[:n])
        results.append(SystemErrors(str(path), n, f.coord.shape[1], e["rmse_e"], e["mae_e"],
                                    e["rmse_f"], e["mae_f"]))
    return results


def report(results: list[SystemErrors]) -> str:
    lines = []
    for r in results:
        lines += [f"# system: {r.name} ({r.nframes} frames, {r.natoms} atoms)",
                  f"Energy MAE         : {r.mae_e:e} eV",
                  f"Energy RMSE        : {r.rmse_e:e} eV",
                  f"Energy MAE/Natoms  : {r.mae_e / r.natoms:e} eV",
                  f"Energy RMSE/Natoms : {r.rmse_e_atom:e} eV",
                  f"Force  MAE         : {r.mae_f:e} eV/Å",
                  f"Force  RMSE        : {r.rmse_f:e} eV/Å"]
    if len(results) > 1:
        avg = weighted_errors([{"nframes": r.nframes, "natoms": r.natoms, "mae_e": r.mae_e,
                                "rmse_e": r.rmse_e, "mae_ea": r.mae_e / r.natoms,
                                "rmse_ea": r.rmse_e_atom, "mae_f": r.mae_f,
                                "rmse_f": r.rmse_f} for r in results])
        lines += ["# weighted average over systems",
                  f"Energy RMSE/Natoms : {avg['rmse_ea']:e} eV",
                  f"Force  RMSE        : {avg['rmse_f']:e} eV/Å"]
    return "\n".join(lines)
