"""Frozen, hashable configuration of the DPA-2 descriptor.

The three dataclasses mirror deepmd-kit's ``RepinitArgs``, ``RepformerArgs`` and
the keywords of ``DescrptDPA2`` with identical defaults. Every check runs once, at
construction, in plain Python: a config that exists is one the math can run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .activations import check_activation
from .econf import ELEMENTS

__all__ = [
    "DPA2Config", "PRECISIONS", "RepformerConfig", "RepinitConfig", "RESIDUAL_INITS",
    "TEBD_INPUT_MODES", "UPDATE_STYLES",
]

PRECISIONS = {
    "float64": "float64",
    "double": "float64",
    "default": "float64",
    "float32": "float32",
    "single": "float32",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
}
UPDATE_STYLES = ("res_avg", "res_incr", "res_residual")
RESIDUAL_INITS = ("norm", "const")
TEBD_INPUT_MODES = ("concat", "strip")


def _fail(key: str, value: Any, why: str) -> None:
    raise ValueError(f"{key}={value!r}: {why}")


def _check_type(key: str, value: Any, kind: type | tuple[type, ...]) -> None:
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        _fail(key, value, f"must be of type {names}")


def _positive(key: str, value: Any, kind: type = int) -> None:
    _check_type(key, value, kind)
    if not value > 0:
        _fail(key, value, "must be positive")


def _check_fields(obj: Any, prefix: str) -> None:
    """Type-check every field against its annotation."""
    kinds = {"int": int, "float": float, "bool": bool, "str": str}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        kind = kinds.get(str(f.type))
        if kind is not None:
            _check_type(key, value, kind)
        elif str(f.type) == "tuple[int, ...]":
            if not isinstance(value, tuple) or not value:
                _fail(key, value, "must be a non-empty list of positive ints")
            for v in value:
                _positive(key, v)


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


# neighbor counts deepmd-kit accepts as a list of ints (one per type, or one total): it
# sums the list (``RepinitArgs(nsel=[7])`` is nsel=7), so this reads them the same way
_SEL_KEYS = ("nsel", "three_body_sel")


def _sum_sel(key: str, value: Any) -> Any:
    if not isinstance(value, list | tuple):
        return value
    if not value or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in value):
        _fail(key, value, "a list of neighbor counts must hold non-negative ints")
    return sum(value)


def _build(cls: type, d: Mapping[str, Any], prefix: str, aliases: Mapping[str, str] = {}):
    if not isinstance(d, Mapping):
        _fail(prefix.rstrip("."), d, "must be a dict")
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in d.items():
        name = aliases.get(key, key)
        if name not in names:
            _fail(f"{prefix}{key}", value, f"unknown key; accepted: {sorted(names)}")
        kwargs[name] = _sum_sel(f"{prefix}{key}", value) if name in _SEL_KEYS else \
            _freeze(value)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs and f.default is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{prefix}{missing[0]}: required key is missing")
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class RepinitConfig:
    """The repinit block (se_atten without attention) and its optional three-body part."""

    rcut: float
    """Cutoff radius of repinit in Å; also the model's cutoff, with which the neighbour list is
    built."""
    rcut_smth: float
    """Radius in Å where the switch function starts to fall from 1 (it is 0 at ``rcut``)."""
    nsel: int
    """Neighbour slots per atom within ``rcut`` (``S_i``); the model's list width. Part of the
    model, not a capacity: normalisers and statistics depend on it."""
    neuron: tuple[int, ...] = (25, 50, 100)
    """Widths of the layers of the repinit embedding net; the last one is ``ng``."""
    axis_neuron: int = 16
    """How many embedding channels (``ax_i``) the repinit output is contracted with; output
    width ``neuron[-1] * axis_neuron``."""
    tebd_dim: int = 8
    """Width of the type embedding of each atom type (``tebd``)."""
    tebd_input_mode: str = "concat"
    """Either ``"concat"`` (one embedding net on [distance, type embeddings]) or ``"strip"``
    (a radial net times 1 + a type-only net evaluated once per type pair)."""
    set_davg_zero: bool = True
    """Keep the mean statistics ``davg`` of repinit and three-body at zero (only ``dstd`` is
    computed), which also removes the padding residual."""
    activation_function: str = "tanh"
    """Activation of the repinit and three-body embedding nets (``tanh``, ``gelu``, ``silu``,
    ...)."""
    resnet_dt: bool = False
    """Give the embedding-net layers a learned per-channel scale (timestep) on their residual
    branch."""
    type_one_side: bool = False
    """Embed only the neighbour's type, not the (neighbour, centre) pair."""
    use_three_body: bool = False
    """Add the three-body embedding (angles between pairs of neighbours) to the repinit output."""
    three_body_neuron: tuple[int, ...] = (2, 4, 8)
    """Widths of the three-body embedding net; the last one (``ng3``) is appended to the
    repinit output."""
    three_body_sel: int = 40
    """Neighbour slots of the three-body block (``S_3``); at most ``nsel``."""
    three_body_rcut: float = 4.0
    """Cutoff radius of the three-body block in Å; at most ``rcut``."""
    three_body_rcut_smth: float = 0.5
    """Radius in Å where the three-body switch starts to fall."""

    def __post_init__(self) -> None:
        p = "repinit."
        _check_fields(self, p)
        _positive(p + "rcut", self.rcut, float)
        _positive(p + "nsel", self.nsel)
        _positive(p + "axis_neuron", self.axis_neuron)
        _positive(p + "tebd_dim", self.tebd_dim)
        if not 0 <= self.rcut_smth < self.rcut:
            _fail(p + "rcut_smth", self.rcut_smth, f"must lie in [0, rcut={self.rcut})")
        if self.axis_neuron > self.neuron[-1]:
            _fail(p + "axis_neuron", self.axis_neuron, "must not exceed neuron[-1]")
        if self.tebd_input_mode not in TEBD_INPUT_MODES:
            _fail(p + "tebd_input_mode", self.tebd_input_mode, f"must be one of {TEBD_INPUT_MODES}")
        check_activation(p + "activation_function", self.activation_function)
        if self.use_three_body:
            _positive(p + "three_body_sel", self.three_body_sel)
            _positive(p + "three_body_rcut", self.three_body_rcut, float)
            if not 0 <= self.three_body_rcut_smth < self.three_body_rcut:
                _fail(p + "three_body_rcut_smth", self.three_body_rcut_smth,
                      f"must lie in [0, three_body_rcut={self.three_body_rcut})")
            if self.three_body_rcut > self.rcut:
                _fail(p + "three_body_rcut", self.three_body_rcut,
                      f"must not exceed repinit.rcut={self.rcut} (neighbors would be lost)")
            if self.three_body_sel > self.nsel:
                _fail(p + "three_body_sel", self.three_body_sel,
                      f"must not exceed repinit.nsel={self.nsel} (neighbors would be lost)")

    @property
    def out_dim(self) -> int:
        """Width of the repinit output, three-body part included."""
        extra = self.three_body_neuron[-1] if self.use_three_body else 0
        return self.neuron[-1] * self.axis_neuron + extra


@dataclasses.dataclass(frozen=True)
class RepformerConfig:
    """The repformer block: ``nlayers`` message-passing layers over g1, g2, h2."""

    rcut: float
    """Cutoff radius of the repformer layers in Å; must be smaller than repinit's."""
    rcut_smth: float
    """Radius in Å where the repformer switch function starts to fall."""
    nsel: int
    """Neighbour slots of the repformer (``S_f``); must be smaller than repinit's ``nsel``."""
    nlayers: int = 3
    """Number of repformer layers."""
    g1_dim: int = 128
    """Width of the single-atom channel ``g1`` and of the descriptor (before the type
    embedding)."""
    g2_dim: int = 16
    """Width of the pair channel ``g2``."""
    axis_neuron: int = 4
    """Channels (``ax_f``) kept on one side of the symmetrisation ``Sym``; at most ``g1_dim``
    and ``g2_dim``."""
    direct_dist: bool = False
    """Start ``g2``/``h2`` from the plain distance and direction over ``rcut`` instead of the
    normalised environment matrix."""
    update_g1_has_conv: bool = True
    """A g1 update term, convolution of the neighbours' g1 weighted by their g2."""
    update_g1_has_drrd: bool = True
    """A g1 update term, the symmetrised product of the neighbours' g1 with h2 (``drrd``)."""
    update_g1_has_grrg: bool = True
    """A g1 update term, the symmetrised product of g2 with h2 (``grrg``)."""
    update_g1_has_attn: bool = True
    """A g1 update term, local attention of the atom over its neighbours' g1."""
    update_g2_has_g1g1: bool = True
    """A g2 update term, a projection of the product of the two atoms' g1."""
    update_g2_has_attn: bool = True
    """A g2 update term, gated self-attention among the pairs of one atom (multi-head, with layer
    norm)."""
    update_h2: bool = False
    """Update h2 too, by attention-weighted mixing of the neighbours' h2 (equivariant)."""
    attn1_hidden: int = 64
    """Width of the queries and keys of the local (g1) attention, per head."""
    attn1_nhead: int = 4
    """Heads of the local (g1) attention."""
    attn2_hidden: int = 16
    """Width of the queries and keys of the pair (g2) attention, per head."""
    attn2_nhead: int = 4
    """Heads of the pair (g2) attention."""
    attn2_has_gate: bool = False
    """Multiply the pair-attention logits by the angle term ``h2_ij . h2_ik``."""
    activation_function: str = "tanh"
    """Activation inside the repformer layers (applied outside the dense layers)."""
    update_style: str = "res_avg"
    """How a channel's updates are combined, ``"res_avg"`` (mean-like, scaled by 1/sqrt(n+1)),
    ``"res_incr"`` (increments scaled by 1/sqrt(n)) or ``"res_residual"`` (learned per-channel
    weights)."""
    update_residual: float = 0.001
    """Size of the initial residual weights of ``res_residual`` (standard deviation or
    constant)."""
    update_residual_init: str = "norm"
    """Initialisation of the residual weights, ``"norm"`` (normal draws) or ``"const"``."""
    set_davg_zero: bool = True
    """Keep the repformer's mean statistics ``davg`` at zero."""
    trainable_ln: bool = True
    """Whether the layer-norm parameters are meant to be trained; no effect on the forward pass
    (deepmd-kit's PyTorch backend trains them anyway)."""
    use_sqrt_nnei: bool = True
    """Normalise the symmetrisation by the square root of the neighbour count (or of ``nsel``
    when smooth) instead of the count."""
    g1_out_conv: bool = True
    """Add the convolution to g1 directly (``True``) instead of feeding it to ``linear1``."""
    g1_out_mlp: bool = True
    """Add a self-MLP of g1 as its own update (``True``) instead of feeding g1 to ``linear1``."""
    ln_eps: float = 1e-5
    """Epsilon of the pair-attention layer norm (``None`` means 1e-5)."""

    def __post_init__(self) -> None:
        p = "repformer."
        if self.ln_eps is None:
            object.__setattr__(self, "ln_eps", 1e-5)
        _check_fields(self, p)
        _positive(p + "rcut", self.rcut, float)
        for key in ("nsel", "nlayers", "g1_dim", "g2_dim", "axis_neuron",
                    "attn1_hidden", "attn1_nhead", "attn2_hidden", "attn2_nhead"):
            _positive(p + key, getattr(self, key))
        _positive(p + "ln_eps", self.ln_eps, float)
        if not 0 <= self.rcut_smth < self.rcut:
            _fail(p + "rcut_smth", self.rcut_smth, f"must lie in [0, rcut={self.rcut})")
        if self.axis_neuron > min(self.g1_dim, self.g2_dim):
            _fail(p + "axis_neuron", self.axis_neuron, "must not exceed g1_dim nor g2_dim")
        if self.update_style not in UPDATE_STYLES:
            _fail(p + "update_style", self.update_style, f"must be one of {UPDATE_STYLES}")
        if self.update_residual_init not in RESIDUAL_INITS:
            _fail(p + "update_residual_init", self.update_residual_init,
                  f"must be one of {RESIDUAL_INITS}")
        check_activation(p + "activation_function", self.activation_function)
        conv_outer = self.update_g1_has_conv and self.g1_out_conv
        if (self.g1_out_mlp and (conv_outer or not self.update_g1_has_conv)
                and not self.update_g1_has_grrg and not self.update_g1_has_drrd):
            _fail(p + "update_g1_has_grrg", self.update_g1_has_grrg,
                  "this flag combination leaves linear1 without input (enable grrg or drrd, "
                  "or set g1_out_mlp=False, or g1_out_conv=False with conv on)")


@dataclasses.dataclass(frozen=True)
class DPA2Config:
    """The whole DPA-2 descriptor: repinit + repformer + the glue keywords."""

    ntypes: int
    """Number of atom types; taken from ``len(type_map)`` when only ``type_map`` is given."""
    repinit: RepinitConfig
    """The repinit block and its three-body part (a dict in ``from_dict``)."""
    repformer: RepformerConfig
    """The repformer block (a dict in ``from_dict``)."""
    concat_output_tebd: bool = True
    """Append the atom's raw type embedding to the descriptor (width ``g1_dim + tebd_dim``)."""
    precision: str = "float64"
    """Dtype of every parameter and computation, ``float64``, ``float32``, ``float16``,
    ``bfloat16`` (aliases ``double``, ``single``, ``half``; ``default`` is float64)."""
    smooth: bool = True
    """Weight every neighbour sum and attention by the switch function so values and forces are
    smooth at the cutoffs (deepmd-kit's ``smooth_type_embedding``)."""
    exclude_types: tuple[tuple[int, int], ...] = ()
    """Pairs of types ``[a, b]`` whose interaction is removed (both orders)."""
    env_protection: float = 0.0
    """Added to distances in the environment matrix's denominators, so that very close atoms
    stay finite; 0 means off."""
    trainable: bool = True
    """Whether the parameters are trained (``False`` freezes the descriptor)."""
    seed: int | tuple[int, ...] | None = None
    """Seed of the parameter initialisation (an int or a list of ints); ``dpa2 train`` draws
    fresh descriptor parameters with it; ``init_params`` takes its own ``seed`` argument."""
    add_tebd_to_repinit_out: bool = False
    """Add a linear map of the type embedding to the repinit output before the repformer."""
    use_econf_tebd: bool = False
    """Build the type embedding from each element's electronic configuration instead of one-hot
    vectors (needs ``type_map`` of element symbols)."""
    use_tebd_bias: bool = False
    """Give the type-embedding layer a bias."""
    type_map: tuple[str, ...] | None = None
    """Element names of the types, in type order; needed for econf embeddings,
    ``change_type_map`` and reading structures."""
    # Only legacy (@version < 3) files set this: their rot_mat uses a block-level
    # use_sqrt_nnei that differs from the one the layers use.
    rot_mat_use_sqrt_nnei: bool | None = None
    """Only set by legacy (``@version`` < 3) files, the block-level ``use_sqrt_nnei`` that
    their ``rot_mat`` uses; ``None`` means the repformer's."""

    def __post_init__(self) -> None:
        _check_fields(self, "")
        _positive("ntypes", self.ntypes)
        self._check_dicts()
        if self.precision not in PRECISIONS:
            _fail("precision", self.precision, f"must be one of {sorted(PRECISIONS)}")
        if self.env_protection < 0:
            _fail("env_protection", self.env_protection, "must be >= 0")
        self._check_exclude_types()
        self._check_type_map()
        self._check_cutoffs()

    def _check_dicts(self) -> None:
        if not isinstance(self.repinit, RepinitConfig):
            _fail("repinit", self.repinit, "must be a RepinitConfig")
        if not isinstance(self.repformer, RepformerConfig):
            _fail("repformer", self.repformer, "must be a RepformerConfig")
        if self.seed is not None and not isinstance(self.seed, int | tuple):
            _fail("seed", self.seed, "must be an int, a list of ints or None")
        if self.rot_mat_use_sqrt_nnei is not None:
            _check_type("rot_mat_use_sqrt_nnei", self.rot_mat_use_sqrt_nnei, bool)

    def _check_exclude_types(self) -> None:
        for pair in self.exclude_types:
            if (not isinstance(pair, tuple) or len(pair) != 2
                    or not all(isinstance(t, int) and not isinstance(t, bool) for t in pair)):
                _fail("exclude_types", self.exclude_types, "must be a list of [int, int] pairs")
            if not all(0 <= t < self.ntypes for t in pair):
                _fail("exclude_types", pair, f"types must lie in [0, ntypes={self.ntypes})")

    def _check_type_map(self) -> None:

        if self.type_map is not None:
            if not all(isinstance(t, str) for t in self.type_map):
                _fail("type_map", self.type_map, "must be a list of strings")
            if len(self.type_map) != self.ntypes:
                _fail("type_map", self.type_map, f"must have ntypes={self.ntypes} entries")
            if len(set(self.type_map)) != len(self.type_map):
                _fail("type_map", self.type_map, "has duplicate entries")
        if self.use_econf_tebd:
            if self.type_map is None:
                _fail("use_econf_tebd", True, "needs type_map")
            bad = [t for t in self.type_map if t not in ELEMENTS]
            if bad:
                _fail("type_map", self.type_map,
                      f"use_econf_tebd needs element symbols; unknown: {bad}")

    def _check_cutoffs(self) -> None:
        ri, rf = self.repinit, self.repformer
        if not ri.rcut > rf.rcut:
            _fail("repformer.rcut", rf.rcut, f"must be smaller than repinit.rcut={ri.rcut}")
        if not ri.nsel > rf.nsel:
            _fail("repformer.nsel", rf.nsel, f"must be smaller than repinit.nsel={ri.nsel}")
        pairs = sorted(self.sub_lists())
        for (rc0, ns0), (rc1, ns1) in zip(pairs, pairs[1:], strict=False):
            if ns1 < ns0:
                _fail("repinit.three_body_sel", ri.three_body_sel,
                      f"nsel must grow with rcut: ({rc0}, {ns0}) vs ({rc1}, {ns1})")

    # ----------------------------------------------------------------- derived
    @property
    def dim_out(self) -> int:
        """Width of the descriptor output."""
        return self.repformer.g1_dim + (self.repinit.tebd_dim if self.concat_output_tebd else 0)

    @property
    def dtype_name(self) -> str:
        """Normalised precision name (``"float64"``, ``"float32"``, ...)."""
        return PRECISIONS[self.precision]

    @property
    def rcut(self) -> float:
        return self.repinit.rcut

    @property
    def nsel(self) -> int:
        return self.repinit.nsel

    @property
    def rot_mat_sqrt_nnei(self) -> bool:
        if self.rot_mat_use_sqrt_nnei is None:
            return self.repformer.use_sqrt_nnei
        return self.rot_mat_use_sqrt_nnei

    def sub_lists(self) -> tuple[tuple[float, int], ...]:
        """The ``(rcut, nsel)`` pairs of the blocks: repformer, repinit[, three-body]."""
        ri, rf = self.repinit, self.repformer
        pairs = [(rf.rcut, rf.nsel), (ri.rcut, ri.nsel)]
        if ri.use_three_body:
            pairs.append((ri.three_body_rcut, ri.three_body_sel))
        return tuple(pairs)

    # ----------------------------------------------------------------- dict io
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DPA2Config:
        """Build from the ``"descriptor"`` section of a deepmd-kit input (plus ``ntypes``).

        ``ntypes`` may be omitted when ``type_map`` is given.
        """
        if not isinstance(d, Mapping):
            _fail("descriptor", d, "must be a dict")
        d = dict(d)
        kind = d.pop("type", "dpa2")
        if kind != "dpa2":
            _fail("type", kind, "only 'dpa2' descriptors are supported")
        for key in ("repinit", "repformer"):
            if key not in d:
                raise ValueError(f"{key}: required key is missing")
        repinit = _build(RepinitConfig, d.pop("repinit"), "repinit.")
        repformer = _build(RepformerConfig, d.pop("repformer"), "repformer.")
        if "ntypes" not in d:
            if d.get("type_map") is None:
                raise ValueError("ntypes: required when type_map is not given")
            d["ntypes"] = len(d["type_map"])
        d.setdefault("precision", "default")
        full = {**d, "repinit": repinit, "repformer": repformer}
        alias = {"repformer_add_type_ebd_to_seq": "add_tebd_to_repinit_out"}
        return _build(cls, full, "", aliases=alias)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict that :meth:`from_dict` turns back into an equal config."""

        def thaw(v: Any) -> Any:
            return [thaw(x) for x in v] if isinstance(v, tuple) else v

        out = {f.name: thaw(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["repinit"] = {k: thaw(v) for k, v in dataclasses.asdict(self.repinit).items()}
        out["repformer"] = dataclasses.asdict(self.repformer)
        out["type"] = "dpa2"
        if out["rot_mat_use_sqrt_nnei"] is None:
            del out["rot_mat_use_sqrt_nnei"]
        return out
