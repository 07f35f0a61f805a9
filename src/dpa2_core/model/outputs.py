"""The outputs of the lower (extended-system) interface from the energy and its gradient.

One rule for every backend that differentiates the energy with respect to the extended
coordinates (the exported artifacts of both shims): energy (nf, 1), atom_energy
(nf, nloc, 1), force_ext (nf, nall, 3) = -dE/dcoord_ext and the virial (nf, 9) =
-sum_a dE/dx_a (x) x_a over extended atoms, row-major (deepmd-kit's sign and layout; the
torch ``EnergyModel.forward`` virial is the same sum taken through ``coord_ext``).
"""

from __future__ import annotations

from .._compat import Array, namespace

__all__ = ["LOWER_OUTPUTS", "lower_outputs"]

LOWER_OUTPUTS = ("energy", "atom_energy", "force_ext", "virial")


def lower_outputs(atom_energy: Array, dedx_ext: Array, coord_ext: Array) -> dict[str, Array]:
    """atom_energy (nf, nloc) eV, dedx_ext = dE/dcoord_ext (nf, nall, 3) eV/Å, coord_ext
    (nf, nall, 3) Å -> the four outputs, keys in :data:`LOWER_OUTPUTS` order."""
    xp = namespace(atom_energy, dedx_ext, coord_ext)
    nf = atom_energy.shape[0]
    # W_ij = -sum_a g_ai x_aj as one batched matmul (nf, 3, nall) @ (nf, nall, 3)
    virial = -xp.matmul(xp.permute_dims(dedx_ext, (0, 2, 1)), coord_ext)
    return {
        "energy": xp.sum(atom_energy, axis=-1, keepdims=True),
        "atom_energy": atom_energy[..., None],
        "force_ext": -dedx_ext,
        "virial": xp.reshape(virial, (nf, 9)),
    }
