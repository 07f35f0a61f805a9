"""Writer of deepmd-kit's ``DescrptDPA2`` serialized dict (``@version`` 3) from (config, params)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._compat import numpy_dtype, to_numpy
from ..model.config import DPA2Config

__all__ = ["to_deepmd_dict"]


def _np(x: Any, dtype: str) -> np.ndarray:
    return to_numpy(x).astype(numpy_dtype(dtype))


def _layer(p: dict, dtype: str, act: str = "none", resnet: bool = False, trainable=True) -> dict:
    return {
        "@class": "Layer", "@version": 2, "bias": "b" in p, "use_timestep": "idt" in p,
        "activation_function": act, "resnet": resnet, "precision": dtype, "trainable": trainable,
        "@variables": {"w": _np(p["w"], dtype),
                       "b": _np(p["b"], dtype) if "b" in p else None,
                       "idt": _np(p["idt"], dtype) if "idt" in p else None},
    }


def _net(layers: list, dtype: str, act: str, resnet_dt: bool, bias=True, trainable=True) -> dict:
    return {
        "@class": "EmbeddingNetwork", "@version": 2, "in_dim": int(layers[0]["w"].shape[0]),
        "neuron": [int(p["w"].shape[1]) for p in layers], "activation_function": act,
        "resnet_dt": resnet_dt, "bias": bias, "precision": dtype,
        "layers": [_layer(p, dtype, act, True, trainable) for p in layers],
    }


def _collection(layers: list, config: DPA2Config, trainable: bool) -> dict:
    ri = config.repinit
    net = _net(layers, config.dtype_name, ri.activation_function, ri.resnet_dt,
               trainable=trainable)
    return {"@class": "NetworkCollection", "@version": 1, "ndim": 0, "ntypes": config.ntypes,
            "network_type": "embedding_network", "networks": [net]}


def _block(p: dict, config: DPA2Config, rcut: float, rcut_smth: float) -> dict:
    t = config.trainable
    out = {
        "embeddings": _collection(p["embedding"], config, t),
        "env_mat": {"rcut": rcut, "rcut_smth": rcut_smth, "protection": 0.0,
                    "use_exp_switch": False},
        "@variables": {"davg": _np(p["davg"], config.dtype_name),
                       "dstd": _np(p["dstd"], config.dtype_name)},
    }
    if "embedding_strip" in p:
        out["embeddings_strip"] = _collection(p["embedding_strip"], config, t)
    return out


def _attention(p: dict, config: DPA2Config) -> dict:
    rf, prec, dt = config.repformer, config.precision, config.dtype_name
    out: dict[str, Any] = {}
    g2, nh2 = rf.g2_dim, rf.attn2_nhead
    if "attn2g_map" in p:
        out["attn2g_map"] = {
            "@class": "Atten2Map", "@version": 1, "input_dim": g2, "hidden_dim": rf.attn2_hidden,
            "head_num": nh2, "has_gate": rf.attn2_has_gate, "smooth": config.smooth,
            "attnw_shift": 20.0, "precision": prec, "mapqk": _layer(p["attn2g_map"]["mapqk"], dt)}
    if "attn2_mh_apply" in p:
        q = p["attn2_mh_apply"]
        out["attn2_mh_apply"] = {
            "@class": "Atten2MultiHeadApply", "@version": 1, "input_dim": g2, "head_num": nh2,
            "precision": prec, "mapv": _layer(q["mapv"], dt), "head_map": _layer(q["head_map"], dt)}
        out["attn2_lm"] = {
            "@class": "LayerNorm", "@version": 1, "eps": rf.ln_eps, "trainable": rf.trainable_ln,
            "precision": prec, "@variables": {"w": _np(p["attn2_lm"]["w"], dt),
                                              "b": _np(p["attn2_lm"]["b"], dt)}}
    if "attn2_ev_apply" in p:
        out["attn2_ev_apply"] = {
            "@class": "Atten2EquiVarApply", "@version": 1, "input_dim": g2, "head_num": nh2,
            "precision": prec, "head_map": _layer(p["attn2_ev_apply"]["head_map"], dt)}
    if "loc_attn" in p:
        q = p["loc_attn"]
        out["loc_attn"] = {
            "@class": "LocalAtten", "@version": 1, "input_dim": rf.g1_dim,
            "hidden_dim": rf.attn1_hidden, "head_num": rf.attn1_nhead, "smooth": config.smooth,
            "attnw_shift": 20.0, "precision": prec, "mapq": _layer(q["mapq"], dt),
            "mapkv": _layer(q["mapkv"], dt), "head_map": _layer(q["head_map"], dt)}
    return out


def _repformer_layer(p: dict, config: DPA2Config, last: bool) -> dict:
    rf, dt = config.repformer, config.dtype_name
    flags = {k: getattr(rf, k) for k in (
        "g1_dim", "g2_dim", "axis_neuron", "update_g1_has_conv", "update_g1_has_drrd",
        "update_g1_has_grrg", "update_g1_has_attn", "update_g2_has_g1g1", "update_g2_has_attn",
        "update_h2", "attn1_hidden", "attn1_nhead", "attn2_hidden", "attn2_nhead",
        "attn2_has_gate", "activation_function", "update_style")}
    if last:
        flags.update(update_g2_has_g1g1=False, update_g2_has_attn=False, update_h2=False)
    out: dict[str, Any] = {
        "@class": "RepformerLayer", "@version": 2, "rcut": rf.rcut, "rcut_smth": rf.rcut_smth,
        "sel": [rf.nsel], "ntypes": config.ntypes, "update_chnnl_2": not last, **flags,
        "smooth": config.smooth, "precision": config.precision, "trainable_ln": rf.trainable_ln,
        "use_sqrt_nnei": rf.use_sqrt_nnei, "g1_out_conv": rf.g1_out_conv,
        "g1_out_mlp": rf.g1_out_mlp, "ln_eps": rf.ln_eps,
    }
    for key in ("linear1", "linear2", "proj_g1g2", "proj_g1g1g2", "g1_self_mlp"):
        if key in p:
            out[key] = _layer(p[key], dt)
    out.update(_attention(p, config))
    if rf.update_style == "res_residual":
        out["@variables"] = {k: [_np(r, dt) for r in p.get(k, [])]
                             for k in ("g1_residual", "g2_residual", "h2_residual")}
    return out


def to_deepmd_dict(config: DPA2Config, params: dict) -> dict:
    """The ``DescrptDPA2.serialize()`` dict of (config, params), readable by deepmd-kit 3.2.0."""
    ri, rf, dt = config.repinit, config.repformer, config.dtype_name
    legacy = config.rot_mat_use_sqrt_nnei is not None
    rf_args = dataclasses.asdict(rf)
    if legacy:
        rf_args.update(use_sqrt_nnei=False, g1_out_conv=False, g1_out_mlp=False)
    in_type = params["type_embedding"]
    out: dict[str, Any] = {
        "@class": "Descriptor", "type": "dpa2", "@version": 2 if legacy else 3,
        "ntypes": config.ntypes,
        "repinit_args": {k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in dataclasses.asdict(ri).items()},
        "repformer_args": rf_args,
        "concat_output_tebd": config.concat_output_tebd, "precision": config.precision,
        "smooth": config.smooth, "exclude_types": [list(p) for p in config.exclude_types],
        "env_protection": config.env_protection, "trainable": config.trainable,
        "add_tebd_to_repinit_out": config.add_tebd_to_repinit_out,
        "use_econf_tebd": config.use_econf_tebd, "use_tebd_bias": config.use_tebd_bias,
        "type_map": list(config.type_map) if config.type_map is not None else None,
        "type_embedding": {
            "@class": "TypeEmbedNet", "@version": 2, "ntypes": config.ntypes,
            "neuron": [ri.tebd_dim], "resnet_dt": False, "precision": config.precision,
            "activation_function": "Linear", "trainable": config.trainable, "padding": True,
            "use_econf_tebd": config.use_econf_tebd, "use_tebd_bias": config.use_tebd_bias,
            "type_map": list(config.type_map) if config.type_map is not None else None,
            "embedding": _net(in_type, dt, "Linear", False, bias=config.use_tebd_bias,
                              trainable=config.trainable),
        },
        "g1_shape_tranform": (_layer(params["g1_shape_transform"], dt)
                              if "g1_shape_transform" in params
                              else {"@class": "Identity", "@version": 1}),
        "repinit_variable": _block(params["repinit"], config, ri.rcut, ri.rcut_smth),
        "repformers_variable": {
            "g2_embd": _layer(params["repformer"]["g2_embd"], dt),
            "repformer_layers": [_repformer_layer(p, config, i == rf.nlayers - 1)
                                 for i, p in enumerate(params["repformer"]["layers"])],
            "env_mat": {"rcut": rf.rcut, "rcut_smth": rf.rcut_smth, "protection": 0.0,
                        "use_exp_switch": False},
            "@variables": {"davg": _np(params["repformer"]["davg"], dt),
                           "dstd": _np(params["repformer"]["dstd"], dt)},
        },
    }
    if "tebd_transform" in params:
        out["tebd_transform"] = _layer(params["tebd_transform"], dt)
    if ri.use_three_body:
        out["repinit_three_body_variable"] = _block(params["three_body"], config,
                                                    ri.three_body_rcut, ri.three_body_rcut_smth)
    return out
