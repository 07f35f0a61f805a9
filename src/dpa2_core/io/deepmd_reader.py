"""Conversion between deepmd-kit's serialized ``DescrptDPA2`` dict and (config, params).

The layout is deepmd-kit 3.2.0's ``serialize()`` (§14): readers accept ``@version``
1-4, the writer emits version 3 (2 for legacy models whose rot_mat flag differs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._compat import numpy_dtype
from ..model.config import DPA2Config, RepformerConfig

__all__ = ["from_deepmd_dict"]

_LAYER_FLAGS = (
    "update_g1_has_conv", "update_g1_has_drrd", "update_g1_has_grrg", "update_g1_has_attn",
    "attn1_hidden", "attn1_nhead", "attn2_hidden", "attn2_nhead", "attn2_has_gate",
    "activation_function", "update_style", "use_sqrt_nnei", "g1_out_conv", "g1_out_mlp",
    "g1_dim", "g2_dim", "axis_neuron", "trainable_ln",
)
_PAIR_FLAGS = ("update_g2_has_g1g1", "update_g2_has_attn", "update_h2")
_LEGACY_FORCED = ("use_sqrt_nnei", "g1_out_conv", "g1_out_mlp")


# ------------------------------------------------------------------------ reading
def _arr(x: Any, dtype: str) -> np.ndarray:
    return np.asarray(x).astype(numpy_dtype(dtype))


def _read_layer(d: dict, dtype: str) -> dict:
    v = d["@variables"]
    out = {"w": _arr(v["w"], dtype)}
    for key in ("b", "idt"):
        if v.get(key) is not None:
            out[key] = _arr(v[key], dtype).ravel()
    return out


def _read_net(d: dict, dtype: str) -> list:
    return [_read_layer(layer, dtype) for layer in d["layers"]]


def _read_collection(d: dict, dtype: str) -> list:
    nets = d["networks"]
    if len(nets) != 1:
        raise ValueError(f"embeddings: expected one type-mixed network, got {len(nets)}")
    return _read_net(nets[0], dtype)


def _read_block(d: dict, dtype: str, strip: bool) -> dict:
    out = {"embedding": _read_collection(d["embeddings"], dtype)}
    if strip:
        out["embedding_strip"] = _read_collection(d["embeddings_strip"], dtype)
    out["davg"] = _arr(d["@variables"]["davg"], dtype)
    out["dstd"] = _arr(d["@variables"]["dstd"], dtype)
    return out


def _read_residuals(d: dict, dtype: str) -> dict:
    src = d.get("@variables", d)
    return {k: [_arr(r, dtype) for r in src[k]] for k in
            ("g1_residual", "g2_residual", "h2_residual") if k in src}


def _read_repformer_layer(d: dict, dtype: str, style: str) -> dict:
    out: dict[str, Any] = {}
    for key in ("linear1", "linear2", "proj_g1g2", "proj_g1g1g2", "g1_self_mlp"):
        if d.get(key) is not None:
            out[key] = _read_layer(d[key], dtype)
    for key, subs in (("attn2g_map", ("mapqk",)), ("attn2_mh_apply", ("mapv", "head_map")),
                      ("attn2_ev_apply", ("head_map",)),
                      ("loc_attn", ("mapq", "mapkv", "head_map"))):
        if d.get(key) is not None:
            out[key] = {s: _read_layer(d[key][s], dtype) for s in subs}
    if d.get("attn2_lm") is not None:
        v = d["attn2_lm"]["@variables"]
        out["attn2_lm"] = {"w": _arr(v["w"], dtype), "b": _arr(v["b"], dtype)}
    if style == "res_residual":
        out.update(_read_residuals(d, dtype))
    return out


def _check_layer(i: int, d: dict, cfg: RepformerConfig, smooth: bool, last: bool) -> None:
    """Layer dicts must agree with the block config (our config holds one set of flags)."""
    for key in _LAYER_FLAGS + (() if last else _PAIR_FLAGS):
        if key in d and d[key] != getattr(cfg, key):
            raise ValueError(f"repformer_layers[{i}].{key}={d[key]!r} differs from the block "
                             f"value {getattr(cfg, key)!r}; per-layer flags are not supported")
    if d.get("smooth", smooth) != smooth:
        raise ValueError(f"repformer_layers[{i}].smooth={d['smooth']!r} differs from {smooth!r}")
    ln_eps = d.get("ln_eps", cfg.ln_eps)
    if (ln_eps if ln_eps is not None else 1e-5) != cfg.ln_eps:
        raise ValueError(f"repformer_layers[{i}].ln_eps={ln_eps!r} differs from {cfg.ln_eps!r}")


def _config_from_dict(d: dict) -> DPA2Config:
    version = int(d.get("@version", 1))
    if not 1 <= version <= 4:
        raise ValueError(f"@version={version}: deepmd-kit 3.2.0 reads versions 1 to 4")
    rf_args = dict(d["repformer_args"])
    rot_flag = None
    layers = d["repformers_variable"]["repformer_layers"]
    if version < 3:
        # the block-level flags are forced off; the layers keep their own
        rot_flag = False
        for key in _LEGACY_FORCED:
            rf_args[key] = layers[0].get(key, True) if layers else False  # layer default
    keys = ("ntypes", "concat_output_tebd", "precision", "smooth", "exclude_types",
            "env_protection", "trainable", "add_tebd_to_repinit_out", "use_econf_tebd",
            "type_map")
    top = {k: d[k] for k in keys if k in d}
    tebd = d["type_embedding"]
    top["use_tebd_bias"] = bool(tebd.get("use_tebd_bias", int(tebd.get("@version", 1)) < 2))
    if rot_flag is not None and rot_flag != rf_args.get("use_sqrt_nnei", True):
        top["rot_mat_use_sqrt_nnei"] = rot_flag
    return DPA2Config.from_dict({**top, "repinit": d["repinit_args"], "repformer": rf_args})


def from_deepmd_dict(d: dict) -> tuple[DPA2Config, dict]:
    """(config, params) from a ``DescrptDPA2.serialize()`` dict."""
    if d.get("type", "dpa2") != "dpa2":
        raise ValueError(f"type={d.get('type')!r}: not a DPA-2 descriptor")
    config = _config_from_dict(d)
    dtype = config.dtype_name
    strip = config.repinit.tebd_input_mode == "strip"
    rv = d["repformers_variable"]
    rf = config.repformer
    for i, layer in enumerate(rv["repformer_layers"]):
        _check_layer(i, layer, rf, config.smooth, i == rf.nlayers - 1)
    params: dict[str, Any] = {
        "type_embedding": _read_net(d["type_embedding"]["embedding"], dtype),
        "repinit": _read_block(d["repinit_variable"], dtype, strip),
        "repformer": {
            "g2_embd": _read_layer(rv["g2_embd"], dtype),
            "layers": [_read_repformer_layer(x, dtype, rf.update_style)
                       for x in rv["repformer_layers"]],
            "davg": _arr(rv["@variables"]["davg"], dtype),
            "dstd": _arr(rv["@variables"]["dstd"], dtype),
        },
    }
    if config.repinit.use_three_body:
        params["three_body"] = _read_block(d["repinit_three_body_variable"], dtype, strip)
    if config.repinit.out_dim != rf.g1_dim:
        params["g1_shape_transform"] = _read_layer(d["g1_shape_tranform"], dtype)
    if config.add_tebd_to_repinit_out:
        params["tebd_transform"] = _read_layer(d["tebd_transform"], dtype)
    return config, params
