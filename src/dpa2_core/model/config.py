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
    rcut_smth: float
    nsel: int
    neuron: tuple[int, ...] = (25, 50, 100)
    axis_neuron: int = 16
    tebd_dim: int = 8
    tebd_input_mode: str = "concat"
    set_davg_zero: bool = True
    activation_function: str = "tanh"
    resnet_dt: bool = False
    type_one_side: bool = False
    use_three_body: bool = False
    three_body_neuron: tuple[int, ...] = (2, 4, 8)
    three_body_sel: int = 40
    three_body_rcut: float = 4.0
    three_body_rcut_smth: float = 0.5

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
    rcut_smth: float
    nsel: int
    nlayers: int = 3
    g1_dim: int = 128
    g2_dim: int = 16
    axis_neuron: int = 4
    direct_dist: bool = False
    update_g1_has_conv: bool = True
    update_g1_has_drrd: bool = True
    update_g1_has_grrg: bool = True
    update_g1_has_attn: bool = True
    update_g2_has_g1g1: bool = True
    update_g2_has_attn: bool = True
    update_h2: bool = False
    attn1_hidden: int = 64
    attn1_nhead: int = 4
    attn2_hidden: int = 16
    attn2_nhead: int = 4
    attn2_has_gate: bool = False
    activation_function: str = "tanh"
    update_style: str = "res_avg"
    update_residual: float = 0.001
    update_residual_init: str = "norm"
    set_davg_zero: bool = True
    trainable_ln: bool = True
    use_sqrt_nnei: bool = True
    g1_out_conv: bool = True
    g1_out_mlp: bool = True
    ln_eps: float = 1e-5

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
    repinit: RepinitConfig
    repformer: RepformerConfig
    concat_output_tebd: bool = True
    precision: str = "float64"
    smooth: bool = True
    exclude_types: tuple[tuple[int, int], ...] = ()
    env_protection: float = 0.0
    trainable: bool = True
    seed: int | tuple[int, ...] | None = None
    add_tebd_to_repinit_out: bool = False
    use_econf_tebd: bool = False
    use_tebd_bias: bool = False
    type_map: tuple[str, ...] | None = None
    # Only legacy (@version < 3) files set this: their rot_mat uses a block-level
    # use_sqrt_nnei that differs from the one the layers use.
    rot_mat_use_sqrt_nnei: bool | None = None

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
        from .econf import ELEMENTS

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
