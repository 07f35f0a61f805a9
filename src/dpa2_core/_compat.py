"""The one place that knows about array namespaces and devices."""

from __future__ import annotations

import math
import sys
from typing import Any, TypeAlias

import array_api_compat
import numpy as np

Array: TypeAlias = Any  # an array of any array-API namespace (the one alias of the core)
Namespace: TypeAlias = Any  # an array-API namespace module

__all__ = ["Array", "Namespace", "BLOCK_ELEMENTS", "BlockPlan", "PLAN_BLOCKS", "asarray_like",
           "device", "dtype_of", "gather_rows", "in_atom_order", "is_traced", "muladd",
           "namespace", "numpy_dtype", "plan_width", "softmax", "static_plan", "take_rows",
           "to_numpy", "torch_load", "used_width", "width_blocks"]


def namespace(*arrays: Array) -> Any:
    """The array-API namespace of ``arrays`` (numpy, torch, jax, array-api-strict...)."""
    return array_api_compat.array_namespace(*arrays)


def device(x: Array) -> Any:
    return array_api_compat.device(x)


def dtype_of(xp: Any, name: str) -> Any:
    """The ``xp`` dtype called ``name`` (``"float64"``, ``"float32"``, ...)."""
    if not hasattr(xp, name):
        raise ValueError(f"precision={name!r}: not available in the {xp.__name__} namespace "
                         "(numpy has no bfloat16; use torch or jax arrays)")
    return getattr(xp, name)


def numpy_dtype(name: str) -> Any:
    """numpy dtype for a precision name; bfloat16 comes from ml_dtypes (shipped with jax)."""
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError as err:
            raise ValueError("precision='bfloat16': numpy parameters need ml_dtypes "
                             "(pip install ml_dtypes)") from err
        return ml_dtypes.bfloat16
    return np.dtype(name)


def to_numpy(x: Array) -> np.ndarray:
    """Copy any array to host numpy (for I/O and tests; never inside the math)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    if hasattr(x, "__dlpack__") and not isinstance(x, np.ndarray):
        try:
            return np.from_dlpack(x).copy()
        except (TypeError, RuntimeError, BufferError):
            pass
    return np.asarray(x)


def asarray_like(xp: Any, value: Any, like: Array, dtype: Any = None) -> Array:
    """A constant array on the device of ``like`` (dtype of ``like`` unless given)."""
    return xp.asarray(value, dtype=like.dtype if dtype is None else dtype, device=device(like))


def gather_rows(xp: Any, table: Array, index: Array) -> Array:
    """``table[f, index[f, ...]]`` for every frame ``f``.

    table: (nf, n, ...); index: (nf, ...) integer, every entry in ``[0, n)``.
    Returns ``(nf, *index.shape[1:], *table.shape[2:])``. One flat ``take``: no
    ``take_along_axis`` (missing from older standards) and a cheap backward.
    """
    nf, n = table.shape[0], table.shape[1]
    tail = tuple(table.shape[2:])
    flat_table = xp.reshape(table, (nf * n, *tail))
    offsets = xp.arange(nf, dtype=index.dtype, device=device(index)) * n
    offsets = xp.reshape(offsets, (nf,) + (1,) * (index.ndim - 1))
    flat_index = xp.reshape(index + offsets, (-1,))
    out = xp.take(flat_table, flat_index, axis=0)
    return xp.reshape(out, (*index.shape, *tail))


def is_traced(x: Array) -> bool:
    """True while ``x`` is abstract (jax tracer, torch compile/fake/meta tensor).

    Value checks are skipped then: they would force a host sync or break tracing.
    """
    kind = type(x)
    if kind.__module__.startswith("jax") and "Tracer" in kind.__name__:
        return True
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        if x.device.type == "meta" or torch.compiler.is_compiling():
            return True
        return "Fake" in type(x).__name__ or "Functional" in type(x).__name__
    return False


def _plain(obj: Any) -> Any:
    """Nested dicts/lists/tuples of tensors -> the same structure of numpy arrays."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_plain(v) for v in obj)
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):
        return obj.detach().cpu().numpy().copy()
    return obj


def torch_load(path: Any) -> Any:
    """A torch-pickled file (``torch.save``) as plain dicts/lists of numpy arrays.

    The only place the core touches torch, imported here lazily (``weights_only=True``:
    no code from the file runs). Raises ``ImportError`` without torch and ``ValueError``
    (one line naming the file) when torch cannot read it.
    """
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"{str(path)!r}: reading a torch file needs torch "
                          "(pip install 'dpa2[torch]')") from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - TorchScript archives, foreign pickles, ...
        first = (str(err).strip().splitlines() or [""])[0]
        raise ValueError(f"{str(path)!r}: torch cannot read it ({type(err).__name__}: "
                         f"{first[:160]})") from err
    return _plain(obj)


def softmax(xp: Any, x: Array, extra: int = 0, extra_logit: float = 0.0) -> Array:
    """Softmax over the last axis, ``exp(x - max) / sum``, as if ``extra`` more keys of
    logit ``extra_logit`` were there (each adds ``exp(extra_logit - max)`` to the sum).

    torch gets its fused kernels (one pass forward and one backward instead of five
    elementwise ops each way over ``(nf, nloc, nh, S, S)``; with extra keys the
    normalisation is ``logaddexp(logsumexp(x), log(extra) + extra_logit)``); the same
    formula, results equal to the last ulps. Every other namespace runs it as written;
    under jax the max is a constant to autodiff (``stop_gradient``: the softmax does not
    depend on it), so no argmax mask is built in the backward.
    """
    if array_api_compat.is_torch_namespace(xp):  # tensor methods: the core never imports torch
        if extra == 0:
            return x.softmax(dim=-1)
        lse = x.logsumexp(dim=-1, keepdim=True)
        return (x - lse.logaddexp(xp.full_like(lse, math.log(extra) + extra_logit))).exp()
    m = xp.max(x, axis=-1, keepdims=True)
    if extra:  # the extra keys join the max, so their terms never overflow
        m = xp.where(m > extra_logit, m, xp.full_like(m, extra_logit))
    if array_api_compat.is_jax_namespace(xp):
        # the result does not depend on m: no gradient through the max (its argmax masks
        # were full (nf, nloc, S, nh, S) passes of every attention backward)
        m = sys.modules["jax"].lax.stop_gradient(m)
    e = xp.exp(x - m)
    total = xp.sum(e, axis=-1, keepdims=True)
    return e / (total + extra * xp.exp(extra_logit - m) if extra else total)


def muladd(xp: Any, a: Array, b: Array, c: Array) -> Array:
    """``a * b + c`` (broadcasting); one fused pass in torch (``addcmul``)."""
    if array_api_compat.is_torch_namespace(xp):
        return c.addcmul(a, b)
    return a * b + c


def used_width(xp: Any, valid: Array, *params: Array) -> int | None:
    """Number of leading slots holding a valid entry in some row, or ``None`` while traced.

    valid: (..., S) bool. The eager fast paths cut the trailing slots that are empty in
    every row (value-dependent, hence never under jit/compile: ``None`` there, and also
    when any of ``params`` is traced, since the callers then read parameter values).
    """
    if is_traced(valid) or any(is_traced(p) for p in params):
        return None
    nslot = valid.shape[-1]
    flags = xp.reshape(xp.any(xp.reshape(valid, (-1, nslot)), axis=0), (nslot,))
    rank = xp.arange(1, nslot + 1, dtype=xp.int64, device=device(valid))
    return int(xp.max(xp.where(flags, rank, xp.zeros_like(rank))))


#: elements of the largest intermediate of one block of atoms in the eager fast paths
#: (8 MiB of float64): large boxes then run cache-sized blocks, so the time per atom stays
#: flat instead of growing with the box once the working set leaves the cache
BLOCK_ELEMENTS = 1 << 20


#: the fewest centres in a block that :func:`width_blocks` closes for a narrower width
#: (every block costs a fixed number of op dispatches per layer), and by how many slots a
#: block may widen before a new one starts
MIN_BLOCK_ROWS = 32
WIDTH_TOLERANCE = 2


#: a static partition of the centres sorted by the slots they use: ``((rows, width), ...)``
#: in ascending width, ``rows`` counted along the sorted order (hashable: a static argument
#: of ``jax.jit``); see :func:`width_blocks` and :func:`static_plan`
BlockPlan: TypeAlias = tuple[tuple[int, int], ...]


def width_blocks(xp: Any, valid: Array, per_row: Any, plan: BlockPlan | None = None
                 ) -> list[tuple[Array | None, int]] | None:
    """Centres grouped by the slots they use: ``[(rows, width), ...]``, or ``None`` while
    ``valid`` is traced and no ``plan`` is given.

    valid: (nf, nloc, S) bool. ``rows``: (n,) int centre indices (None: all, in order);
    ``width``: the slots in use by some row of the block in any frame (>= 1). Rows are
    sorted by their own width, so each block carries only its own padding; a block holds
    at most about :data:`BLOCK_ELEMENTS` / ``per_row(width)`` centres (``per_row``: width
    -> elements of one centre's largest intermediate). Every centre is in exactly one block.

    ``plan``: static block sizes and widths (:func:`static_plan`, from concrete inputs), so
    a traced call sorts the centres in the program and runs the same blocks; each width
    must bound the slots its rows use.
    """
    if plan is not None:
        if len(plan) == 1:
            return [(None, plan[0][1])]
        order, _ = _sorted_use(xp, valid)
        starts = [sum(n for n, _ in plan[:i]) for i in range(len(plan))]
        return [(order[a : a + n], w) for a, (n, w) in zip(starts, plan, strict=True)]
    if is_traced(valid):
        return None
    order, used = _sorted_use(xp, valid)
    widths = [max(w, 1) for w in _host_ints(used)]
    blocks, start = [], 0
    while start < len(widths):
        stop = _block_end(widths, start, per_row)
        blocks.append((order[start:stop], widths[stop - 1]))
        start = stop
    return blocks


def _sorted_use(xp: Any, valid: Array) -> tuple[Array, Array]:
    """The centres sorted by the slots they use in any frame, and those counts (nloc,)."""
    nslot = valid.shape[-1]
    rank = xp.arange(1, nslot + 1, dtype=xp.int64, device=device(valid))
    used = xp.max(xp.where(valid, rank, xp.zeros_like(rank)), axis=-1)  # (nf, nloc)
    used = xp.max(used, axis=0)  # (nloc,)
    order = xp.argsort(used, stable=True)
    return order, xp.take(used, order)


#: the most blocks of :func:`static_plan`: every block is compiled on its own
PLAN_BLOCKS = 4


def static_plan(used: list[int], nsel: int, multiple: int, blocks: int = PLAN_BLOCKS
                ) -> BlockPlan:
    """Blocks for a traced call from the ascending slots in use of every centre (host ints).

    Up to ``blocks`` groups of about equal size, at least :data:`MIN_BLOCK_ROWS` centres
    each; a group is as wide as its widest row plus one slot (a distance another backend
    rounds to the other side of rcut moves every sorted count by at most one), rounded up
    to ``multiple`` (fewer distinct plans: fewer compiles) and capped at ``nsel``.
    Neighbouring groups of equal width merge.
    """
    n = len(used)
    k = max(1, min(blocks, n // MIN_BLOCK_ROWS))
    bounds = [round(i * n / k) for i in range(k + 1)]
    plan: list[tuple[int, int]] = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        width = min(nsel, -(-(used[b - 1] + 1) // multiple) * multiple)
        if plan and plan[-1][1] == width:
            plan[-1] = (plan[-1][0] + b - a, width)
        else:
            plan.append((b - a, width))
    return tuple(plan)


def plan_width(width: int | BlockPlan | None) -> int | None:
    """The widest block of a static bound: an int (one block) or a :data:`BlockPlan`."""
    return width if width is None or isinstance(width, int) else max(w for _, w in width)


def _host_ints(x: Array) -> list[int]:
    """A 1-D integer array as Python ints (one transfer; element-wise for the storage-less
    wrappers of torch.func transforms, whose values are concrete all the same)."""
    try:
        return [int(v) for v in to_numpy(x)]
    except RuntimeError:
        return [int(v) for v in x]


def _block_end(widths: list[int], start: int, per_row: Any) -> int:
    """End of the block from ``start`` over ascending ``widths``: it grows while within the
    element budget, and past :data:`MIN_BLOCK_ROWS` only within the width tolerance or to
    take in a remainder of fewer than :data:`MIN_BLOCK_ROWS` centres."""
    n = len(widths)
    # a short remainder joins this block when all of it fits: a block of a few centres
    # costs a whole block's dispatches
    rest_fits = (n - start) * per_row(widths[-1]) <= BLOCK_ELEMENTS
    for stop in range(start + 1, n):
        if (stop + 1 - start) * per_row(widths[stop]) > BLOCK_ELEMENTS:
            return stop
        close = widths[stop] <= widths[start] + WIDTH_TOLERANCE
        tail = rest_fits and n - stop < MIN_BLOCK_ROWS
        if stop - start >= MIN_BLOCK_ROWS and not close and not tail:
            return stop
    return n


def take_rows(xp: Any, x: Array, rows: Array | None) -> Array:
    """The centres ``rows`` ((n,) int) of x (nf, nloc, ...); None: all of them, in order."""
    return x if rows is None else xp.take(x, rows, axis=1)


def in_atom_order(xp: Any, parts: list[Array], blocks: list[tuple[Array | None, int]]
                  ) -> Array:
    """Per-block arrays (nf, n_b, ...) of :func:`width_blocks` back to one (nf, nloc, ...)
    in atom order."""
    out = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)
    if blocks[0][0] is None:
        return out
    order = blocks[0][0] if len(blocks) == 1 else xp.concat([r for r, _ in blocks])
    return xp.take(out, xp.argsort(order, stable=True), axis=1)
