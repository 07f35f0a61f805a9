"""deepmd-kit's energy + force loss (``loss.type = "ener"``, mean squared errors).

loss = pref_e / natoms * mean_f (E - E*)^2 + pref_f * mean (F - F*)^2, with the
prefactors interpolated by ``lr / start_lr``. Displayed metrics follow deepmd:
``rmse = sqrt(loss)``, ``rmse_e = sqrt(mean (E - E*)^2) / natoms``, ``rmse_f``.
"""

from __future__ import annotations

import torch


def energy_force_loss(pred: dict, energy: torch.Tensor, force: torch.Tensor | None,
                      natoms: int, prefs: tuple[float, float]
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, detached metrics); pred holds "energy" (nf,) and "force" (nf, nloc, 3)."""
    pref_e, pref_f = prefs
    l2_e = torch.mean(torch.square(pred["energy"] - energy.to(pred["energy"].dtype)))
    loss = pref_e / natoms * l2_e
    metrics = {"rmse_e": l2_e.detach().sqrt() / natoms}
    if force is not None:
        l2_f = torch.mean(torch.square(pred["force"] - force.to(pred["force"].dtype)))
        loss = loss + pref_f * l2_f
        metrics["rmse_f"] = l2_f.detach().sqrt()
    metrics["rmse"] = loss.detach().sqrt()
    return loss, metrics

