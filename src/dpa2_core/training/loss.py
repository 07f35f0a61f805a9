"""deepmd-kit's energy + force loss (``loss.type = "ener"``), pure array API.

loss = pref_e / natoms * mean_frames (E - E*)^2 + pref_f * mean (F - F*)^2, the
prefactors interpolated with ``lr / start_lr`` (:class:`dpa2_core.training.settings.
LossPrefactors`). Metrics as deepmd displays them: ``rmse = sqrt(loss)``,
``rmse_e = sqrt(mean (E - E*)^2) / natoms`` (per atom), ``rmse_f = sqrt(mean (F - F*)^2)``.
"""

from __future__ import annotations

from typing import Any

from .._compat import Array, namespace

__all__ = ["ener_loss"]


def ener_loss(energy: Array, energy_ref: Array, force: Array | None, force_ref: Array | None,
              natoms: int, pref_e: Any, pref_f: Any) -> tuple[Array, dict[str, Array]]:
    """(loss, metrics) of energies (nf,) and forces (nf, nloc, 3) against references.

    ``force`` or ``force_ref`` None: energy term only (no ``rmse_f``). The metrics are
    arrays of the inputs' namespace (differentiable; detach them for display).
    """
    xp = namespace(energy)
    l2_e = xp.mean(xp.square(energy - xp.astype(energy_ref, energy.dtype)))
    loss = pref_e / natoms * l2_e
    metrics = {"rmse_e": xp.sqrt(l2_e) / natoms}
    if force is not None and force_ref is not None:
        l2_f = xp.mean(xp.square(force - xp.astype(force_ref, force.dtype)))
        loss = loss + pref_f * l2_f
        metrics["rmse_f"] = xp.sqrt(l2_f)
    metrics["rmse"] = xp.sqrt(loss)
    return loss, metrics
