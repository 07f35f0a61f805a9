"""Parameter spec and initialisation: the single source of names, shapes and init schemes.

``param_spec(config)`` describes every array as a nested dict (lists for layer stacks)
of :class:`Leaf`; ``init_params`` draws them in numpy, deterministically per seed,
with deepmd-kit's schemes (§15). Shims convert the numpy tree; they never do shape
arithmetic of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from .._compat import numpy_dtype
from .config import DPA2Config, RepformerConfig
from .econf import ECONF_DIM

__all__ = [
    "check_params", "init_params", "is_trainable", "Leaf", "linear1_in", "param_spec",
    "repformer_layer_spec", "STATISTICS", "tree_map", "tree_paths",
]

STATISTICS = ("davg", "dstd")


class Leaf(NamedTuple):
    """One parameter array: its shape and how it is initialised.

    init: "normal" (mean, std in ``args``), "ones", "zeros" or "const" (value in ``args``).
    """

    shape: tuple[int, ...]
    init: str
    args: tuple[float, ...] = ()


def _layer(n_in: int, n_out: int, bias: bool = True, timestep: bool = False) -> dict:
    fan = (n_in + n_out) ** 0.5
    p = {"w": Leaf((n_in, n_out), "normal", (0.0, 1.0 / fan))}
    if bias:
        p["b"] = Leaf((n_out,), "normal", (0.0, 1.0))
    if timestep and n_out in (n_in, 2 * n_in):
        p["idt"] = Leaf((n_out,), "normal", (0.1, 0.001))
    return p


def _embedding_net(n_in: int, neuron: tuple[int, ...], resnet_dt: bool, bias=True) -> list:
    sizes = (n_in, *neuron)
    return [_layer(a, b, bias, resnet_dt) for a, b in zip(sizes, sizes[1:], strict=False)]


def _stats(ntypes: int, nsel: int) -> dict:
    return {"davg": Leaf((ntypes, nsel, 4), "zeros"), "dstd": Leaf((ntypes, nsel, 4), "ones")}


def _repinit_spec(config: DPA2Config) -> dict:
    ri, nt = config.repinit, config.ntypes
    strip = ri.tebd_input_mode == "strip"
    tebd = ri.tebd_dim
    n_in = 1 if strip else 1 + (tebd if ri.type_one_side else 2 * tebd)
    spec = {"embedding": _embedding_net(n_in, ri.neuron, ri.resnet_dt), **_stats(nt, ri.nsel)}
    if strip:
        n_strip = tebd if ri.type_one_side else 2 * tebd
        spec["embedding_strip"] = _embedding_net(n_strip, ri.neuron, ri.resnet_dt)
    return spec


def _three_body_spec(config: DPA2Config) -> dict:
    ri = config.repinit
    strip = ri.tebd_input_mode == "strip"
    n_in = 1 if strip else 1 + 2 * ri.tebd_dim
    spec = {
        "embedding": _embedding_net(n_in, ri.three_body_neuron, ri.resnet_dt),
        **_stats(config.ntypes, ri.three_body_sel),
    }
    if strip:
        spec["embedding_strip"] = _embedding_net(2 * ri.tebd_dim, ri.three_body_neuron,
                                                 ri.resnet_dt)
    return spec


def linear1_in(cfg: RepformerConfig) -> int:
    """Input width of a repformer layer's ``linear1`` (§10.4)."""
    g1, g2, ax = cfg.g1_dim, cfg.g2_dim, cfg.axis_neuron
    return (
        (0 if cfg.g1_out_mlp else g1)
        + (g2 if cfg.update_g1_has_conv and not cfg.g1_out_conv else 0)
        + (ax * g2 if cfg.update_g1_has_grrg else 0)
        + (ax * g1 if cfg.update_g1_has_drrd else 0)
    )


def _residuals(cfg: RepformerConfig, width: int, count: int) -> list:
    if cfg.update_residual_init == "norm":
        return [Leaf((width,), "normal", (0.0, cfg.update_residual))] * count
    return [Leaf((width,), "const", (cfg.update_residual,))] * count


def _pair_terms(cfg: RepformerConfig) -> dict:
    g2, nh = cfg.g2_dim, cfg.attn2_nhead
    spec: dict[str, Any] = {"linear2": _layer(g2, g2)}
    if cfg.update_g2_has_g1g1:
        spec["proj_g1g1g2"] = _layer(cfg.g1_dim, g2, bias=False)
    if cfg.update_g2_has_attn or cfg.update_h2:
        spec["attn2g_map"] = {"mapqk": _layer(g2, 2 * cfg.attn2_hidden * nh, bias=False)}
    if cfg.update_g2_has_attn:
        spec["attn2_mh_apply"] = {"mapv": _layer(g2, g2 * nh, bias=False),
                                  "head_map": _layer(g2 * nh, g2)}
        spec["attn2_lm"] = {"w": Leaf((g2,), "ones"), "b": Leaf((g2,), "zeros")}
    if cfg.update_h2:
        spec["attn2_ev_apply"] = {"head_map": _layer(nh, 1, bias=False)}
    return spec


def repformer_layer_spec(cfg: RepformerConfig, last: bool) -> dict:
    """Parameters of one repformer layer; the last layer has no pair-channel terms."""
    g1, g2 = cfg.g1_dim, cfg.g2_dim
    spec: dict[str, Any] = {"linear1": _layer(linear1_in(cfg), g1)}
    if cfg.update_g1_has_conv:
        shape = (g2, g1) if cfg.g1_out_conv else (g1, g2)
        spec["proj_g1g2"] = _layer(*shape, bias=False)
    if cfg.update_g1_has_attn:
        nd, nh = cfg.attn1_hidden, cfg.attn1_nhead
        spec["loc_attn"] = {"mapq": _layer(g1, nd * nh, bias=False),
                            "mapkv": _layer(g1, (nd + g1) * nh, bias=False),
                            "head_map": _layer(g1 * nh, g1)}
    if cfg.g1_out_mlp:
        spec["g1_self_mlp"] = _layer(g1, g1)
    if not last:
        spec.update(_pair_terms(cfg))
    if cfg.update_style == "res_residual":
        n1 = (cfg.g1_out_mlp + (cfg.update_g1_has_conv and cfg.g1_out_conv) + 1
              + cfg.update_g1_has_attn)
        spec["g1_residual"] = _residuals(cfg, g1, n1)
        n2 = 0 if last else 1 + cfg.update_g2_has_g1g1 + cfg.update_g2_has_attn
        spec["g2_residual"] = _residuals(cfg, g2, n2)
        spec["h2_residual"] = _residuals(cfg, 1, int(cfg.update_h2 and not last))
    return spec


def param_spec(config: DPA2Config) -> dict:
    """Nested dict of :class:`Leaf` describing every parameter of ``config``."""
    ri, rf = config.repinit, config.repformer
    n_type_in = ECONF_DIM if config.use_econf_tebd else config.ntypes
    spec: dict[str, Any] = {
        "type_embedding": [_layer(n_type_in, ri.tebd_dim, bias=config.use_tebd_bias)],
        "repinit": _repinit_spec(config),
        "repformer": {
            "g2_embd": _layer(1, rf.g2_dim),
            "layers": [repformer_layer_spec(rf, i == rf.nlayers - 1) for i in range(rf.nlayers)],
            **_stats(config.ntypes, rf.nsel),
        },
    }
    if ri.use_three_body:
        spec["three_body"] = _three_body_spec(config)
    if ri.out_dim != rf.g1_dim:
        spec["g1_shape_transform"] = _layer(ri.out_dim, rf.g1_dim, bias=False)
    if config.add_tebd_to_repinit_out:
        spec["tebd_transform"] = _layer(ri.tebd_dim, rf.g1_dim, bias=False)
    return spec


def tree_paths(tree: Any, prefix: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Depth-first ``(path, leaf)`` pairs of a nested dict/list tree (dict keys sorted)."""
    if isinstance(tree, dict):
        for key in sorted(tree):
            yield from tree_paths(tree[key], (*prefix, key))
    elif isinstance(tree, list):
        for i, item in enumerate(tree):
            yield from tree_paths(item, (*prefix, i))
    else:
        yield prefix, tree


def tree_map(fn, tree: Any, prefix: tuple = ()) -> Any:
    """Apply ``fn(path, leaf)`` to every leaf, keeping the dict/list structure."""
    if isinstance(tree, dict):
        return {k: tree_map(fn, v, (*prefix, k)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [tree_map(fn, v, (*prefix, i)) for i, v in enumerate(tree)]
    return fn(prefix, tree)


def is_trainable(path: tuple, config: DPA2Config) -> bool:
    """Whether the parameter at ``path`` is trained (statistics never are).

    ``config.trainable`` decides for every weight, the attention LayerNorm included:
    deepmd-kit's PyTorch DPA-2 sets ``requires_grad = trainable`` on all its parameters
    after building them, which overrides ``repformer.trainable_ln = False``. The flag is
    kept (and serialized) but, as there, it freezes nothing.
    """
    return config.trainable and path[-1] not in STATISTICS


def _draw(leaf: Leaf, rng: np.random.Generator, dtype: Any, zero_residual: bool) -> np.ndarray:
    if leaf.init == "normal" and not zero_residual:
        mean, std = leaf.args
        return rng.normal(mean, std, size=leaf.shape).astype(dtype)
    if leaf.init == "const" and not zero_residual:
        return np.full(leaf.shape, leaf.args[0], dtype=dtype)
    if leaf.init == "ones":
        return np.ones(leaf.shape, dtype=dtype)
    return np.zeros(leaf.shape, dtype=dtype)


def init_params(config: DPA2Config, seed: int = 0) -> dict:
    """Fresh parameters for ``config`` as numpy arrays in ``config.precision``.

    Deterministic per ``seed``: the leaves are drawn in sorted-path order from one
    ``numpy.random.default_rng(seed)``. Residual vectors of a non-trainable
    descriptor are zero, as in deepmd-kit's numpy backend.
    """
    dtype = numpy_dtype(config.dtype_name)
    rng = np.random.default_rng(seed)
    spec = param_spec(config)
    drawn = {
        path: _draw(leaf, rng, dtype,
                    not config.trainable and "residual" in str(path[-2]))
        for path, leaf in tree_paths(spec)
    }
    return tree_map(lambda path, _: drawn[path], spec)


def check_params(params: dict, config: DPA2Config) -> None:
    """Raise ``ValueError`` naming the first array whose presence or shape is off."""
    spec = dict(tree_paths(param_spec(config)))
    got = dict(tree_paths(params))
    for path, leaf in spec.items():
        name = "/".join(map(str, path))
        if path not in got:
            raise ValueError(f"params[{name}]: missing (expected shape {leaf.shape})")
        if tuple(got[path].shape) != leaf.shape:
            raise ValueError(f"params[{name}]: expected shape {leaf.shape}, "
                             f"got {tuple(got[path].shape)}")
    extra = sorted("/".join(map(str, p)) for p in got if p not in spec)
    if extra:
        raise ValueError(f"params[{extra[0]}]: not a parameter of this config")
