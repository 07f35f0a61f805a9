"""Parameters as JAX pytrees, and the float64 / x64 policy.

The core's parameter tree (nested dicts and lists of arrays) is already a JAX pytree;
this module only converts its leaves. Policy: a float64 model needs
``jax_enable_x64``. Without it JAX would silently turn every float64 array into
float32, so every entry point raises instead; :func:`cast` is the explicit,
documented downcast (it changes the config's precision too).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import dpa2_core as dc
from dpa2_core.array_api import numpy_dtype
from dpa2_core.array_api import to_numpy as to_host
from dpa2_core.model.config import PRECISIONS
from dpa2_core.model.params import check_params, is_trainable, tree_map

__all__ = [
    "as_params", "cast", "check_precision", "check_tree", "init_params", "load_deepmd", "to_jax",
    "to_numpy", "trainable_mask", "x64_enabled", "X64_HINT",
]

X64_HINT = ("enable 64-bit JAX first (jax.config.update('jax_enable_x64', True), or "
            "JAX_ENABLE_X64=1) or downcast explicitly with dpa2_jax.cast(config, params, "
            "'float32')")


def x64_enabled() -> bool:
    """Whether ``jax_enable_x64`` is on right now (also inside ``jax.enable_x64(...)``)."""
    return bool(jax.config.jax_enable_x64)


def check_precision(name: str, what: str = "precision") -> None:
    """Raise if ``name`` is a 64-bit dtype while JAX runs in 32-bit mode."""
    if name in ("float64", "int64") and not x64_enabled():
        raise ValueError(f"{what}={name!r} needs jax_enable_x64, which is off: {X64_HINT}")


def _leaf_to_jax(x: Any, dtype: Any) -> jax.Array:
    a = x if isinstance(x, jax.Array) else to_host(x)
    if dtype is None and a.dtype == np.float64:
        check_precision("float64", "params dtype")
    return jnp.asarray(a, dtype=dtype)


def to_jax(params: Any, dtype: str | None = None) -> Any:
    """Copy of a parameter tree (numpy, jax or anything ``np.asarray`` takes) as jax arrays.

    Dtypes are kept, unless ``dtype`` casts every leaf (an explicit choice). float64
    leaves without x64 raise ``ValueError`` rather than silently becoming float32.
    """
    target = None
    if dtype is not None:
        check_precision(PRECISIONS.get(dtype, dtype))
        target = numpy_dtype(PRECISIONS.get(dtype, dtype))
    return jax.tree.map(lambda x: _leaf_to_jax(x, target), params)


def as_params(params: Any) -> Any:
    """The core's parameter pytree with jax leaves, converted once at the shim's edge.

    numpy (``dpa2_core.init_params``, ``load_deepmd``), torch or any array-API leaves are
    copied to jax arrays (dtypes kept; float64 needs x64, see :func:`to_jax`); jax arrays
    and tracers pass as they are, so calls inside ``jax.jit`` stay traced.
    """
    leaves = jax.tree.leaves(params)
    if all(isinstance(x, jax.Array) for x in leaves):
        return params
    return jax.tree.map(lambda x: x if isinstance(x, jax.Array) else _leaf_to_jax(x, None),
                        params)


def to_numpy(params: Any) -> Any:
    """Host numpy copy of a tree of jax (or any) arrays."""
    return jax.tree.map(lambda x: np.array(x, copy=True), params)


def init_params(config: dc.DPA2Config, seed: int = 0) -> dict:
    """Fresh parameters (:func:`dpa2_core.init_params`, drawn in numpy) as jax arrays.

    The draws are identical to the numpy and torch backends for the same ``seed``.
    """
    check_precision(config.dtype_name)
    return to_jax(dc.init_params(config, seed))


def load_deepmd(source: Any, precision: str | None = None) -> tuple[dc.DPA2Config, dict]:
    """(config, jax params) from a deepmd-kit model file, model dict or descriptor dict.

    ``precision`` (e.g. ``"float32"``) is an explicit downcast of config and params;
    without it a float64 model requires ``jax_enable_x64``.
    """
    config, params = dc.load_deepmd(os.fspath(source) if isinstance(source, os.PathLike)
                                    else source)
    if precision is not None:
        return cast(config, params, precision)
    check_precision(config.dtype_name)
    return config, to_jax(params)


def cast(config: dc.DPA2Config, params: Any, precision: str) -> tuple[dc.DPA2Config, dict]:
    """``(config, params)`` switched to ``precision`` (e.g. float64 -> float32), as jax arrays.

    This is the documented way to run a float64 model without x64.
    """
    new = dataclasses.replace(config, precision=precision)
    check_precision(new.dtype_name)
    return new, to_jax(params, dtype=new.dtype_name)


def check_tree(params: Any, config: dc.DPA2Config) -> None:
    """Shapes (:func:`dpa2_core.model.params.check_params`) and one dtype everywhere."""
    check_params(params, config)
    want = jnp.dtype(numpy_dtype(config.dtype_name))
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if jnp.dtype(leaf.dtype) != want:
            name = jax.tree_util.keystr(path)
            raise ValueError(f"params{name}: dtype {leaf.dtype} does not match "
                             f"precision={config.precision!r} ({want}); use dpa2_jax.cast")


def trainable_mask(params: Any, config: dc.DPA2Config) -> Any:
    """Same-structure tree of bools: True where :func:`dpa2_core.is_trainable` says so."""
    return tree_map(lambda path, _: is_trainable(path, config), params)
