"""The core's descriptor on jax arrays: jit (config static), grad, vmap.

No formula lives here: :func:`descriptor` checks dtypes, adds or strips the frame
axis and calls :func:`dpa2_core.descriptor`, whose array-API code traces as is.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import dpa2_core as dc
from dpa2_core import DescriptorOutput
from dpa2_core.array_api import Array, is_traced, numpy_dtype
from dpa2_core.model.dpa2 import SlotWidths, live_widths

from .params import X64_HINT, as_params, check_precision, check_tree, x64_enabled

__all__ = ["JIT_BLOCKS", "JIT_MULTIPLE", "as_jax", "check_inputs", "descriptor",
           "jit_descriptor"]

#: the bounds :func:`jit_descriptor` reads are rounded up to a multiple of this (one compile
#: per bound; measured on water: bound 36 instead of 40, forces 1.2x faster than with 8)
JIT_MULTIPLE = 4
#: sorted blocks of centres per block type in :func:`jit_descriptor` (1: one bound for all;
#: 2 made forces 1.15x faster but compiled 1.7x longer on water, see benchmarks/PROFILE.md)
JIT_BLOCKS = 1


def as_jax(x: Any, name: str) -> jax.Array:
    """``jnp.asarray`` that refuses to turn a float64/int64 host array into 32 bits."""
    if x is None or isinstance(x, jax.Array):
        return x
    a = np.asarray(x)
    if a.dtype in (np.float64, np.int64) and not x64_enabled():
        if a.dtype == np.int64:  # indices: 32 bits are exact for any realistic size
            return jnp.asarray(a.astype(np.int32))
        raise ValueError(f"{name}: float64 input while jax_enable_x64 is off: {X64_HINT}, "
                         "or pass float32 coordinates")
    return jnp.asarray(a)


def check_inputs(params: Any, config: dc.DPA2Config, coord_ext: Array) -> None:
    """Static (trace-time) checks: precision vs x64, parameter dtypes, coordinate dtype.

    ``coord_ext`` may be as wide as or wider than the model precision (a float32 model
    accepts float64 coordinates and returns float64, as deepmd-kit does); narrower
    coordinates would silently lose the model's precision, so they raise.
    """
    check_precision(config.dtype_name)
    check_tree(params, config)
    model = jnp.dtype(numpy_dtype(config.dtype_name))
    got = jnp.dtype(coord_ext.dtype)
    if not jnp.issubdtype(got, jnp.floating):
        raise ValueError(f"coord_ext: must be a floating array, got dtype {got}")
    if jnp.finfo(got).bits < jnp.finfo(model).bits:
        raise ValueError(f"coord_ext: dtype {got} is narrower than precision="
                         f"{config.precision!r} ({model}); pass {model} coordinates")


def descriptor(
    params: dict,
    config: dc.DPA2Config,
    coord_ext: Array,
    atype_ext: Array,
    nlist: Array,
    mapping: Array | None = None,
    *,
    repformer_width: int | None = None,
    slot_widths: SlotWidths | None = None,
) -> DescriptorOutput:
    """DPA-2 descriptor of jax arrays (:func:`dpa2_core.descriptor`).

    Batched: coord_ext (nf, nall, 3), atype_ext (nf, nall), nlist (nf, nloc, nnei),
    mapping (nf, nall) -> outputs with a leading ``nf``. One frame (what ``jax.vmap``
    sees): coord_ext (nall, 3), atype_ext (nall,), nlist (nloc, nnei), mapping (nall,)
    -> outputs without it. ``config`` must be static under ``jax.jit``
    (``static_argnums=1``); it is a frozen, hashable dataclass. ``repformer_width`` and
    ``slot_widths`` (static under jit): see :func:`dpa2_core.model.dpa2.live_widths`.
    """
    coord_ext = as_jax(coord_ext, "coord_ext")
    atype_ext, nlist = as_jax(atype_ext, "atype_ext"), as_jax(nlist, "nlist")
    mapping = as_jax(mapping, "mapping")
    params = as_params(params)  # numpy/torch trees from the core: converted once, here
    check_inputs(params, config, coord_ext)
    if atype_ext.ndim != 1:
        return dc.descriptor(params, config, coord_ext, atype_ext, nlist, mapping,
                             repformer_width=repformer_width, slot_widths=slot_widths)
    batch = (coord_ext[None], atype_ext[None], nlist[None],
             None if mapping is None else mapping[None])
    out = dc.descriptor(params, config, *batch, repformer_width=repformer_width,
                        slot_widths=slot_widths)
    return DescriptorOutput(*(x[0] for x in out))


_jitted = jax.jit(descriptor, static_argnums=1, static_argnames=("repformer_width", "slot_widths"))


def jit_descriptor(
    params: dict,
    config: dc.DPA2Config,
    coord_ext: Array,
    atype_ext: Array,
    nlist: Array,
    mapping: Array | None = None,
    *,
    validate: bool = True,
    multiple: int = JIT_MULTIPLE,
    blocks: int = JIT_BLOCKS,
) -> DescriptorOutput:
    """:func:`descriptor` under ``jax.jit`` (config static): one compile per (config, input
    shapes, dtypes); later calls with the same shapes reuse it (``jit_descriptor.jitted``).

    ``validate``: run the core's value checks (NaN/inf coordinates, types, index ranges,
    coincident atoms) eagerly on concrete inputs before dispatch, which jit alone cannot
    do; they cost one device-to-host read of the inputs. Inside a caller's own
    ``jax.jit`` (traced inputs) they are skipped, as in :func:`dpa2_core.descriptor`.
    The same read gives the bounds on the slots in use in every block
    (:func:`dpa2_core.model.dpa2.live_widths`, multiples of ``multiple``), so the compiled
    program skips the trailing slots no atom fills, as the eager path does; one compile per
    bound. ``blocks`` > 1: the centres are sorted into up to that many blocks, each with
    its own bound (less padding, a longer compile).
    """
    args = tuple(as_jax(x, name) for x, name in ((coord_ext, "coord_ext"),
                                                 (atype_ext, "atype_ext"), (nlist, "nlist"),
                                                 (mapping, "mapping")))
    widths = None
    params = as_params(params)
    if validate:
        single = args[1].ndim == 1
        batched = [x if x is None or not single else x[None] for x in args]
        dc.model.checks.validate(config, *batched)
        if not any(is_traced(x) for x in batched[:3]):
            if not any(is_traced(x) for x in jax.tree_util.tree_leaves(params)):
                widths = live_widths(np, config, params, np.asarray(batched[0]),
                                     np.asarray(batched[2]), multiple, blocks)
    return _jitted(params, config, *args, slot_widths=widths)


jit_descriptor.jitted = _jitted
