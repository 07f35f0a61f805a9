"""Frozen, hashable configuration of the DPA-2 descriptor.

:class:`DPA2Config` mirrors the keywords of deepmd-kit's ``DescrptDPA2`` with identical
defaults and holds the two block configs (:mod:`.block_configs`, re-exported here). Every
check runs once, at construction, in plain Python: a config that exists is one the math
can run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .block_configs import (
    RESIDUAL_INITS,
    TEBD_INPUT_MODES,
    UPDATE_STYLES,
    RepformerConfig,
    RepinitConfig,
)
from .config_fields import build, check_fields, check_type, fail, positive
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
        check_fields(self, "")
        positive("ntypes", self.ntypes)
        self._check_dicts()
        if self.precision not in PRECISIONS:
            fail("precision", self.precision, f"must be one of {sorted(PRECISIONS)}")
        if self.env_protection < 0:
            fail("env_protection", self.env_protection, "must be >= 0")
        self._check_exclude_types()
        self._check_type_map()
        self._check_cutoffs()

    def _check_dicts(self) -> None:
        if not isinstance(self.repinit, RepinitConfig):
            fail("repinit", self.repinit, "must be a RepinitConfig")
        if not isinstance(self.repformer, RepformerConfig):
            fail("repformer", self.repformer, "must be a RepformerConfig")
        if self.seed is not None and not isinstance(self.seed, int | tuple):
            fail("seed", self.seed, "must be an int, a list of ints or None")
        if self.rot_mat_use_sqrt_nnei is not None:
            check_type("rot_mat_use_sqrt_nnei", self.rot_mat_use_sqrt_nnei, bool)

    def _check_exclude_types(self) -> None:
        for pair in self.exclude_types:
            if (not isinstance(pair, tuple) or len(pair) != 2
                    or not all(isinstance(t, int) and not isinstance(t, bool) for t in pair)):
                fail("exclude_types", self.exclude_types, "must be a list of [int, int] pairs")
            if not all(0 <= t < self.ntypes for t in pair):
                fail("exclude_types", pair, f"types must lie in [0, ntypes={self.ntypes})")

    def _check_type_map(self) -> None:

        if self.type_map is not None:
            if not all(isinstance(t, str) for t in self.type_map):
                fail("type_map", self.type_map, "must be a list of strings")
            if len(self.type_map) != self.ntypes:
                fail("type_map", self.type_map, f"must have ntypes={self.ntypes} entries")
            if len(set(self.type_map)) != len(self.type_map):
                fail("type_map", self.type_map, "has duplicate entries")
        if self.use_econf_tebd:
            if self.type_map is None:
                fail("use_econf_tebd", True, "needs type_map")
            bad = [t for t in self.type_map if t not in ELEMENTS]
            if bad:
                fail("type_map", self.type_map,
                      f"use_econf_tebd needs element symbols; unknown: {bad}")

    def _check_cutoffs(self) -> None:
        ri, rf = self.repinit, self.repformer
        if not ri.rcut > rf.rcut:
            fail("repformer.rcut", rf.rcut, f"must be smaller than repinit.rcut={ri.rcut}")
        if not ri.nsel > rf.nsel:
            fail("repformer.nsel", rf.nsel, f"must be smaller than repinit.nsel={ri.nsel}")
        pairs = sorted(self.sub_lists())
        for (rc0, ns0), (rc1, ns1) in zip(pairs, pairs[1:], strict=False):
            if ns1 < ns0:
                fail("repinit.three_body_sel", ri.three_body_sel,
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
            fail("descriptor", d, "must be a dict")
        d = dict(d)
        kind = d.pop("type", "dpa2")
        if kind != "dpa2":
            fail("type", kind, "only 'dpa2' descriptors are supported")
        for key in ("repinit", "repformer"):
            if key not in d:
                raise ValueError(f"{key}: required key is missing")
        repinit = build(RepinitConfig, d.pop("repinit"), "repinit.")
        repformer = build(RepformerConfig, d.pop("repformer"), "repformer.")
        if "ntypes" not in d:
            if d.get("type_map") is None:
                raise ValueError("ntypes: required when type_map is not given")
            d["ntypes"] = len(d["type_map"])
        d.setdefault("precision", "default")
        full = {**d, "repinit": repinit, "repformer": repformer}
        alias = {"repformer_add_type_ebd_to_seq": "add_tebd_to_repinit_out"}
        return build(cls, full, "", aliases=alias)

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
