"""Error metrics of energy models, in numpy, for the trainers and ``dpa2 test``.

- :class:`WeightedMean`: the validation metrics of ``numb_btch`` batches, each batch
  weighted by its number of atoms (``nframes * nloc``), as deepmd-kit averages them;
- :func:`energy_force_errors`: RMSE and MAE of energies (total and per atom) and forces
  of one system;
- :func:`average_errors`: those of several systems, frame-weighted (energies) and
  atom-weighted (forces), as ``dp test`` reports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["WeightedMean", "average_errors", "energy_force_errors"]


class WeightedMean:
    """Running weighted mean of metric dicts: ``add(metrics, weight)``, ``result()``."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.weight = 0.0

    def add(self, metrics: Mapping[str, object], weight: float) -> None:
        """``metrics``: name -> scalar (any array type ``float()`` accepts); ``weight``:
        e.g. the batch's atom count."""
        self.weight += weight
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v) * weight

    def result(self) -> dict[str, float]:
        if self.weight <= 0:
            raise ValueError("WeightedMean: nothing was added")
        return {k: v / self.weight for k, v in self.sums.items()}


def energy_force_errors(energy, energy_ref, force=None, force_ref=None,
                        natoms: int | None = None) -> dict[str, float]:
    """Errors of one system: ``energy``/``energy_ref`` (nf,) eV, ``force``/``force_ref``
    (nf, nloc, 3) eV/Å (or None). Returns ``rmse_e``, ``mae_e`` (eV), ``rmse_e_atom``,
    ``mae_e_atom`` (eV/atom; ``natoms``, default nloc of the forces, else NaN),
    ``rmse_f``, ``mae_f`` (eV/Å; NaN without forces), ``nframes``, ``natoms``."""
    de = np.asarray(energy, dtype=np.float64) - np.asarray(energy_ref, dtype=np.float64)
    has_f = force is not None and force_ref is not None
    df = np.asarray(force, dtype=np.float64) - np.asarray(force_ref, dtype=np.float64) \
        if has_f else None
    if natoms is None:
        natoms = int(df.shape[1]) if has_f else 0
    rmse_e, mae_e = float(np.sqrt(np.mean(de**2))), float(np.mean(np.abs(de)))
    nan = float("nan")
    return {"nframes": int(de.shape[0]), "natoms": natoms, "rmse_e": rmse_e, "mae_e": mae_e,
            "rmse_e_atom": rmse_e / natoms if natoms else nan,
            "mae_e_atom": mae_e / natoms if natoms else nan,
            "rmse_f": float(np.sqrt(np.mean(df**2))) if has_f else nan,
            "mae_f": float(np.mean(np.abs(df))) if has_f else nan}


def average_errors(errors: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Several systems' :func:`energy_force_errors`: per-atom energy RMSE weighted by
    frames, force RMSE weighted by frames x atoms (squares averaged, then the root)."""
    w = np.asarray([e["nframes"] for e in errors], dtype=float)
    wf = w * np.asarray([e["natoms"] for e in errors], dtype=float)
    e2 = np.asarray([e["rmse_e_atom"] ** 2 for e in errors])
    f2 = np.asarray([e["rmse_f"] ** 2 for e in errors])
    return {"rmse_e_atom": float(np.sqrt(np.sum(w * e2) / w.sum())),
            "rmse_f": float(np.sqrt(np.sum(wf * f2) / wf.sum()))}
