"""Energy fitting net (deepmd-kit's mixed-type ``EnergyFittingNet`` layout), pure array API.

atomic energy = FittingNet(descriptor) + bias_atom_e[type] (+ the model's out_bias[type]);
the net is a chain of resnet layers (``neuron``) with the fitting activation and a final
linear layer to 1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._compat import Array, namespace
from .activations import check_activation
from .config import PRECISIONS
from .layers import dense
from .params import Leaf, _draw, _layer, tree_map, tree_paths

__all__ = [
    "atomic_energy", "fitting_spec", "FittingConfig", "init_fitting_params", "trainable_flag",
]


@dataclasses.dataclass(frozen=True)
class FittingConfig:
    """Hyper-parameters of the energy fitting net (``model.fitting_net`` of a deepmd input)."""

    ntypes: int
    dim_descrpt: int
    neuron: tuple[int, ...] = (120, 120, 120)
    resnet_dt: bool = True
    activation_function: str = "tanh"
    precision: str = "float64"
    trainable: bool = True

    def __post_init__(self) -> None:
        if not self.neuron or any(not isinstance(n, int) or n <= 0 for n in self.neuron):
            raise ValueError(f"fitting_net.neuron={self.neuron!r}: must be positive ints")
        check_activation("fitting_net.activation_function", self.activation_function)

    @classmethod
    def from_input(cls, fit: dict, ntypes: int, dim_descrpt: int,
                   precision: str | None = None) -> FittingConfig:
        """From a deepmd-kit ``fitting_net`` input section (energy fitting only); keys that
        would change results and are not implemented raise, naming the key. ``precision``
        is the default when the section has none (deepmd: the descriptor's)."""
        if fit.get("type", "ener") != "ener":
            raise ValueError(f"fitting_net.type={fit.get('type')!r}: only 'ener' is supported")
        for key, value in fit.items():
            if key in _FIT_ZERO:
                if value not in (_FIT_ZERO[key], None, []):
                    raise ValueError(f"fitting_net.{key}={value!r}: not supported (only "
                                     f"{_FIT_ZERO[key]!r})")
            elif key not in _FIT_KEYS and not str(key).startswith("_"):
                raise ValueError(f"fitting_net.{key}: unsupported key; supported: "
                                 f"{sorted(_FIT_KEYS | set(_FIT_ZERO))}")

        name = fit.get("precision", "default" if precision is None else precision)
        if name not in PRECISIONS:
            raise ValueError(f"fitting_net.precision={name!r}: must be one of "
                             f"{sorted(PRECISIONS)}")
        return cls(ntypes=ntypes, dim_descrpt=dim_descrpt,
                   neuron=tuple(fit.get("neuron", (120, 120, 120))),
                   resnet_dt=bool(fit.get("resnet_dt", True)),
                   activation_function=fit.get("activation_function", "tanh"),
                   precision=PRECISIONS[name], trainable=trainable_flag(fit.get("trainable", True)))


# Keys of deepmd's energy fitting_net that we read, and those only allowed at their default.
_FIT_KEYS = {"type", "neuron", "resnet_dt", "activation_function", "precision", "seed",
             "trainable", "rcond", "use_aparam_as_mask"}
_FIT_ZERO = {"numb_fparam": 0, "numb_aparam": 0, "dim_case_embd": 0, "atom_ener": [],
             "default_fparam": None, "layer_name": None}


def trainable_flag(value: Any) -> bool:
    """deepmd's ``trainable``: one bool, or one per layer (only all-equal lists here)."""
    values = list(value) if isinstance(value, list | tuple) else [value]
    if not values or any(not isinstance(v, bool) for v in values) or len(set(values)) != 1:
        raise ValueError(f"fitting_net.trainable={value!r}: must be a bool (or a list of "
                         "equal bools; per-layer freezing is not supported)")
    return values[0]


def fitting_spec(cfg: FittingConfig) -> dict:
    """Nested :class:`Leaf` spec: ``{"layers": [...], "bias_atom_e": (ntypes, 1)}``."""
    sizes = (cfg.dim_descrpt, *cfg.neuron)
    layers = [_layer(a, b, True, cfg.resnet_dt) for a, b in zip(sizes, sizes[1:], strict=False)]
    layers.append(_layer(sizes[-1], 1))
    return {"layers": layers, "bias_atom_e": Leaf((cfg.ntypes, 1), "zeros")}


def init_fitting_params(cfg: FittingConfig, seed: int = 0) -> dict:
    """Fresh numpy parameters (same schemes as the descriptor's dense layers)."""

    rng = np.random.default_rng(seed)
    dtype = PRECISIONS[cfg.precision]
    spec = fitting_spec(cfg)
    drawn = {path: _draw(leaf, rng, dtype, False) for path, leaf in tree_paths(spec)}
    return tree_map(lambda path, _: drawn[path], spec)


def atomic_energy(params: dict, cfg: FittingConfig, desc: Array, atype: Array,
                  out_bias: Array | None = None) -> Array:
    """Per-atom energies (nf, nloc) from desc (nf, nloc, dim_descrpt); virtual atoms give 0.

    ``out_bias`` (ntypes,): the model-level per-type shift deepmd-kit adds on top of the
    fitting's own ``bias_atom_e`` (what the energy statistics set).
    """

    xp = namespace(desc)
    x = desc
    act = cfg.activation_function
    for p in params["layers"][:-1]:
        x = dense(xp, p, x, act=act, resnet=True)
    e = dense(xp, params["layers"][-1], x)[..., 0]
    real = atype >= 0
    idx = xp.reshape(xp.where(real, atype, xp.zeros_like(atype)), (-1,))

    def per_atom(table: Array) -> Array:
        return xp.reshape(xp.take(xp.astype(table, e.dtype), idx, axis=0), atype.shape)

    e = e + per_atom(params["bias_atom_e"][:, 0])
    if out_bias is not None:  # added after the fitting's bias, in deepmd-kit's order
        e = e + per_atom(xp.reshape(out_bias, (-1,)))
    return xp.where(real, e, xp.zeros_like(e))
