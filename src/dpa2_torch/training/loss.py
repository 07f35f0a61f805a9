"""deepmd-kit's energy + force loss on torch tensors: :func:`dpa2_core.training.loss.ener_loss`
with the displayed metrics detached."""

from __future__ import annotations

import torch

from dpa2_core.training.loss import ener_loss

__all__ = ["energy_force_loss"]


def energy_force_loss(pred: dict, energy: torch.Tensor, force: torch.Tensor | None,
                      natoms: int, prefs: tuple[float, float]
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, detached metrics); pred holds "energy" (nf,) and "force" (nf, nloc, 3)."""
    loss, metrics = ener_loss(pred["energy"], energy, pred.get("force"), force, natoms, *prefs)
    return loss, {k: v.detach() for k, v in metrics.items()}
