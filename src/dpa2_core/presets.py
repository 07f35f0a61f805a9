"""Reference configurations (deepmd-kit's water examples), the bundled water frame and the
bundled water model."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from .model.config import DPA2Config

__all__ = ["preset", "PRESETS", "water_frame", "water_model"]

_REPINIT = {
    "rcut": 6.0, "rcut_smth": 0.5, "nsel": 120, "neuron": [25, 50, 100], "axis_neuron": 12,
    "tebd_dim": 8, "activation_function": "tanh", "use_three_body": True,
    "three_body_sel": 48, "three_body_rcut": 4.0, "three_body_rcut_smth": 3.5,
}
_REPFORMER = {
    "rcut": 4.0, "rcut_smth": 3.5, "nsel": 48, "nlayers": 3, "g1_dim": 128, "g2_dim": 32,
    "attn2_hidden": 32, "attn2_nhead": 4, "attn1_hidden": 128, "attn1_nhead": 4,
    "axis_neuron": 4, "update_h2": False, "update_g1_has_conv": True,
    "update_g1_has_grrg": True, "update_g1_has_drrd": True, "update_g1_has_attn": False,
    "update_g2_has_g1g1": False, "update_g2_has_attn": False, "update_style": "res_residual",
    "update_residual": 0.01, "update_residual_init": "norm", "attn2_has_gate": True,
    "use_sqrt_nnei": True, "g1_out_conv": True, "g1_out_mlp": True,
}
PRESETS = {
    "small": {"nlayers": 3, "update_g2_has_attn": False},
    "medium": {"nlayers": 6, "update_g2_has_attn": True},
    "large": {"nlayers": 12, "update_g2_has_attn": True},
}


def preset(name: str = "medium", type_map: tuple[str, ...] = ("O", "H")) -> DPA2Config:
    """deepmd-kit's water-example DPA-2 ("small", "medium" or "large"), float64."""
    if name not in PRESETS:
        raise ValueError(f"preset={name!r}: choose one of {sorted(PRESETS)}")
    return DPA2Config.from_dict({
        "type": "dpa2", "repinit": _REPINIT, "repformer": {**_REPFORMER, **PRESETS[name]},
        "precision": "float64", "add_tebd_to_repinit_out": False, "type_map": list(type_map),
    })


def water_frame() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """One periodic DFT water frame (192 atoms): coord (192, 3), atype (192,), box (3, 3), Å,
    as float64 (stored float32), and its type map."""
    with resources.files("dpa2_core").joinpath("_resources/water_192.npz").open("rb") as f:
        data = np.load(f)
        return (data["coord"].astype(np.float64), data["atype"].astype(np.int64),
                data["box"].astype(np.float64), tuple(str(t) for t in data["type_map"]))


def water_model() -> Path:
    """Path of the bundled water model: a deepmd-kit ``.dp`` (DPA-2 "small", trained by
    deepmd-kit on its water example), weights stored as float32 (gzip) to keep the package
    small; it declares float64 and runs in float64. Energies differ from the float64
    original by ~1e-8 relative. ``dpa2 md`` without ``--model`` runs it."""
    path = Path(str(resources.files("dpa2_core").joinpath("_resources/water_dpa2_small.dp")))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the bundled water model is missing (broken install?)")
    return path
