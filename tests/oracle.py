"""deepmd-kit 3.2.0 as a test-only oracle: build its DescrptDPA2, its inputs and its outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
WATER = SHARED / "data" / "water"
MODEL_DP = SHARED / "models" / "water_dpa2_small.dp"


def water_frames(system: int = 0, frames=(0,)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coord (nf, 192, 3), atype (nf, 192), box (nf, 3, 3)) as float64 (stored float32)."""
    root = WATER / f"data_{system}"
    coord = np.load(root / "set.000" / "coord.npy")[list(frames)].astype(np.float64)
    box = np.load(root / "set.000" / "box.npy")[list(frames)].astype(np.float64)
    atype = np.loadtxt(root / "type.raw", dtype=np.int64)
    nf = len(frames)
    return coord.reshape(nf, -1, 3), np.tile(atype, (nf, 1)), box.reshape(nf, 3, 3)


def deepmd_inputs(coord, atype, box, rcut: float, nsel: int):
    """deepmd's own wrap + ghost extension + sorted mixed-type list."""
    from deepmd.dpmodel.utils.nlist import extend_input_and_build_neighbor_list

    nf = coord.shape[0]
    coord_ext, atype_ext, mapping, nlist = extend_input_and_build_neighbor_list(
        coord.reshape(nf, -1), atype, rcut, [nsel], mixed_types=True,
        box=None if box is None else box.reshape(nf, 9),
    )
    return coord_ext.reshape(nf, -1, 3), atype_ext, nlist, mapping


def deepmd_descriptor(serialized: dict):
    from deepmd.dpmodel.descriptor.dpa2 import DescrptDPA2

    return DescrptDPA2.deserialize(serialized)


def deepmd_call(serialized: dict, coord_ext, atype_ext, nlist, mapping):
    """The five outputs of deepmd-kit's numpy reference for a serialized descriptor."""
    model = deepmd_descriptor(serialized)
    nf = coord_ext.shape[0]
    return model.call(coord_ext.reshape(nf, -1), atype_ext, nlist, mapping)


def deepmd_energy_model(descriptor: dict, seed: int = 0) -> dict:
    """A whole deepmd-kit energy model dict around a serialized DPA-2 descriptor: a small
    type-mixed fitting net (8, 8) and random non-zero ``bias_atom_e`` and ``out_bias``."""
    from deepmd.dpmodel.fitting.ener_fitting import EnergyFittingNet
    from deepmd.dpmodel.model.ener_model import EnergyModel

    desc = deepmd_descriptor(descriptor)
    fit = EnergyFittingNet(2, desc.get_dim_out(), neuron=[8, 8], mixed_types=True, seed=seed,
                           precision="float64")
    d = EnergyModel(desc, fit, type_map=["O", "H"]).serialize()
    rng = np.random.default_rng(seed)
    d["@variables"]["out_bias"] = rng.normal(size=(1, 2, 1))
    d["fitting"]["@variables"]["bias_atom_e"] = rng.normal(size=(2, 1))
    return d
