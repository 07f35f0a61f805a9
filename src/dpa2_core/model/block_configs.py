"""Frozen, hashable configuration of DPA-2's two blocks: repinit and the repformer stack.

The dataclasses mirror deepmd-kit's ``RepinitArgs`` and ``RepformerArgs`` with identical
defaults; every check runs once, at construction, in plain Python.
"""

from __future__ import annotations

import dataclasses

from .activations import check_activation
from .config_fields import check_fields, fail, positive

__all__ = ["RESIDUAL_INITS", "RepformerConfig", "RepinitConfig", "TEBD_INPUT_MODES",
           "UPDATE_STYLES"]

UPDATE_STYLES = ("res_avg", "res_incr", "res_residual")
RESIDUAL_INITS = ("norm", "const")
TEBD_INPUT_MODES = ("concat", "strip")


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
        check_fields(self, p)
        positive(p + "rcut", self.rcut, float)
        positive(p + "nsel", self.nsel)
        positive(p + "axis_neuron", self.axis_neuron)
        positive(p + "tebd_dim", self.tebd_dim)
        if not 0 <= self.rcut_smth < self.rcut:
            fail(p + "rcut_smth", self.rcut_smth, f"must lie in [0, rcut={self.rcut})")
        if self.axis_neuron > self.neuron[-1]:
            fail(p + "axis_neuron", self.axis_neuron, "must not exceed neuron[-1]")
        if self.tebd_input_mode not in TEBD_INPUT_MODES:
            fail(p + "tebd_input_mode", self.tebd_input_mode, f"must be one of {TEBD_INPUT_MODES}")
        check_activation(p + "activation_function", self.activation_function)
        if self.use_three_body:
            positive(p + "three_body_sel", self.three_body_sel)
            positive(p + "three_body_rcut", self.three_body_rcut, float)
            if not 0 <= self.three_body_rcut_smth < self.three_body_rcut:
                fail(p + "three_body_rcut_smth", self.three_body_rcut_smth,
                      f"must lie in [0, three_body_rcut={self.three_body_rcut})")
            if self.three_body_rcut > self.rcut:
                fail(p + "three_body_rcut", self.three_body_rcut,
                      f"must not exceed repinit.rcut={self.rcut} (neighbors would be lost)")
            if self.three_body_sel > self.nsel:
                fail(p + "three_body_sel", self.three_body_sel,
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
        check_fields(self, p)
        positive(p + "rcut", self.rcut, float)
        for key in ("nsel", "nlayers", "g1_dim", "g2_dim", "axis_neuron",
                    "attn1_hidden", "attn1_nhead", "attn2_hidden", "attn2_nhead"):
            positive(p + key, getattr(self, key))
        positive(p + "ln_eps", self.ln_eps, float)
        if not 0 <= self.rcut_smth < self.rcut:
            fail(p + "rcut_smth", self.rcut_smth, f"must lie in [0, rcut={self.rcut})")
        if self.axis_neuron > min(self.g1_dim, self.g2_dim):
            fail(p + "axis_neuron", self.axis_neuron, "must not exceed g1_dim nor g2_dim")
        if self.update_style not in UPDATE_STYLES:
            fail(p + "update_style", self.update_style, f"must be one of {UPDATE_STYLES}")
        if self.update_residual_init not in RESIDUAL_INITS:
            fail(p + "update_residual_init", self.update_residual_init,
                  f"must be one of {RESIDUAL_INITS}")
        check_activation(p + "activation_function", self.activation_function)
        conv_outer = self.update_g1_has_conv and self.g1_out_conv
        if (self.g1_out_mlp and (conv_outer or not self.update_g1_has_conv)
                and not self.update_g1_has_grrg and not self.update_g1_has_drrd):
            fail(p + "update_g1_has_grrg", self.update_g1_has_grrg,
                  "this flag combination leaves linear1 without input (enable grrg or drrd, "
                  "or set g1_out_mlp=False, or g1_out_conv=False with conv on)")
