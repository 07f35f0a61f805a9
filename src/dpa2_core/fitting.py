"""Energy fitting net (deepmd-kit's mixed-type ``EnergyFittingNet`` layout), pure array API.

atomic energy = FittingNet(descriptor) + bias_atom_e[type]; the net is a chain of
resnet layers (``neuron``) with the fitting activation and a final linear layer to 1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .activations import check_activation
from .nn import dense
from .params import Leaf, _layer, tree_map, tree_paths

Array = Any


@dataclasses.dataclass(frozen=True)
class FittingConfig:
    """Hyper-parameters of the energy fitting net (``model.fitting_net`` of a deepmd input)."""

    ntypes: int
    dim_descrpt: int
    neuron: tuple[int, ...] = (120, 120, 120)
    resnet_dt: bool = True
    activation_function: str = "tanh"
    precision: str = "float64"

    def __post_init__(self) -> None:
        if not self.neuron or any(not isinstance(n, int) or n <= 0 for n in self.neuron):
            raise ValueError(f"fitting_net.neuron={self.neuron!r}: must be positive ints")
        check_activation("fitting_net.activation_function", self.activation_function)


def fitting_spec(cfg: FittingConfig) -> dict:
    """Nested :class:`Leaf` spec: ``{"layers": [...], "bias_atom_e": (ntypes, 1)}``."""
    sizes = (cfg.dim_descrpt, *cfg.neuron)
    layers = [_layer(a, b, True, cfg.resnet_dt) for a, b in zip(sizes, sizes[1:], strict=False)]
    layers.append(_layer(sizes[-1], 1))
    return {"layers": layers, "bias_atom_e": Leaf((cfg.ntypes, 1), "zeros")}


def init_fitting_params(cfg: FittingConfig, seed: int = 0) -> dict:
    """Fresh numpy parameters (same schemes as the descriptor's dense layers)."""
    from .config import PRECISIONS
    from .params import _draw

    rng = np.random.default_rng(seed)
    dtype = PRECISIONS[cfg.precision]
    spec = fitting_spec(cfg)
    drawn = {path: _draw(leaf, rng, dtype, False) for path, leaf in tree_paths(spec)}
    return tree_map(lambda path, _: drawn[path], spec)


def atomic_energy(params: dict, cfg: FittingConfig, desc: Array, atype: Array) -> Array:
    """Per-atom energies (nf, nloc) from desc (nf, nloc, dim_descrpt); virtual atoms give 0."""
    from ._compat import namespace

    xp = namespace(desc)
    x = desc
    act = cfg.activation_function
    for p in params["layers"][:-1]:
        x = dense(p, x, xp, act=act, resnet=True)
    e = dense(params["layers"][-1], x, xp)[..., 0]
    real = atype >= 0
    idx = xp.reshape(xp.where(real, atype, xp.zeros_like(atype)), (-1,))
    bias = xp.reshape(xp.take(params["bias_atom_e"][:, 0], idx, axis=0), atype.shape)
    return xp.where(real, e + bias, xp.zeros_like(e))
