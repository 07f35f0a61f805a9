"""Error metrics of predictions against labels, pure numpy (``dpa2 test``, both backends)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["energy_force_errors", "weighted_errors"]


def energy_force_errors(energy: np.ndarray, energy_ref: np.ndarray, natoms: int,
                        force: np.ndarray | None = None, force_ref: np.ndarray | None = None
                        ) -> dict[str, float]:
    """MAE and RMSE of energies (nf,) eV, per atom (eV/atom) and of forces (nf, nloc, 3)
    eV/Å (NaN where there are no force labels); ``nframes`` and ``natoms`` included."""
    de = np.asarray(energy, dtype=np.float64) - np.asarray(energy_ref, dtype=np.float64)
    out = {"nframes": float(de.shape[0]), "natoms": float(natoms),
           "mae_e": float(np.mean(np.abs(de))), "rmse_e": float(np.sqrt(np.mean(de**2))),
           "mae_ea": float(np.mean(np.abs(de))) / natoms,
           "rmse_ea": float(np.sqrt(np.mean(de**2))) / natoms,
           "mae_f": float("nan"), "rmse_f": float("nan")}
    if force is not None and force_ref is not None:
        df = np.asarray(force, dtype=np.float64) - np.asarray(force_ref, dtype=np.float64)
        out["mae_f"] = float(np.mean(np.abs(df)))
        out["rmse_f"] = float(np.sqrt(np.mean(df**2)))
    return out


def weighted_errors(per_system: Sequence[dict[str, float]]) -> dict[str, float]:
    """Errors over several systems: energy terms weighted by frames, force terms by frames
    times atoms (deepmd's ``dp test`` averages; RMSEs combine as root mean squares)."""
    w = np.asarray([s["nframes"] for s in per_system])
    wf = w * np.asarray([s["natoms"] for s in per_system])
    out = {"nframes": float(w.sum())}
    for key, weight in (("e", w), ("ea", w), ("f", wf)):
        mae = np.asarray([s[f"mae_{key}"] for s in per_system])
        rmse = np.asarray([s[f"rmse_{key}"] for s in per_system])
        out[f"mae_{key}"] = float(np.sum(weight * mae) / weight.sum())
        out[f"rmse_{key}"] = float(np.sqrt(np.sum(weight * rmse**2) / weight.sum()))
    return out
