"""The DPA-2 descriptor (§9): repinit [+ three-body] -> repformer, one pure function."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._compat import (
    Array,
    BlockPlan,
    Namespace,
    dtype_of,
    is_traced,
    namespace,
    static_plan,
    to_numpy,
    used_width,
)
from .checks import check_shapes, check_values
from .config import DPA2Config
from .env_mat import Geometry, geometry, pad_nlist, sub_list, type_index
from .layers import dense
from .repformer import repformer
from .repinit import repinit, silent_beyond, three_body
from .type_embedding import type_embedding_table

__all__ = ["descriptor", "DescriptorOutput", "grow_widths", "live_width", "live_widths",
           "SlotWidths"]


class DescriptorOutput(NamedTuple):
    """descriptor (nf, nloc, dim_out); rot_mat (nf, nloc, g2d, 3); g2 (nf, nloc, S_f, g2d);
    h2 (nf, nloc, S_f, 3); sw (nf, nloc, S_f)."""

    descriptor: Array
    rot_mat: Array
    g2: Array
    h2: Array
    sw: Array


class SlotWidths(NamedTuple):
    """Static bounds on the slots in use in each block (:func:`live_widths`): an int cuts
    every centre to it (a block's ``nsel``: no cut), a :data:`.._compat.BlockPlan` runs
    centres sorted into blocks of their own widths. Hashable, so it can be a static
    argument of ``jax.jit``."""

    repinit: int | BlockPlan
    three_body: int | BlockPlan
    repformer: int | BlockPlan


def _glue(xp: Namespace, params: dict, config: DPA2Config, geo: Geometry, lists: dict,
          atype_ext: Array, tebd_ext: Array, table: Array, widths: SlotWidths | None) -> Array:
    """Repinit [+ three-body], shape transform and optional type-embedding add (§9).

    lists: ``{(rcut, nsel): (nf, nloc, nsel) sub-list}``; atype_ext: (nf, nall);
    tebd_ext: (nf, nall, tebd); table: (nt+1, tebd). Returns (nf, nloc, g1d).
    """
    ri = config.repinit
    g = repinit(xp, config, params["repinit"], geo, lists[(ri.rcut, ri.nsel)], atype_ext,
                tebd_ext, table, None if widths is None else widths.repinit)
    if ri.use_three_body:
        key = (ri.three_body_rcut, ri.three_body_sel)
        g3 = three_body(xp, config, params["three_body"], geo, lists[key], atype_ext,
                        tebd_ext, table, None if widths is None else widths.three_body)
        g = xp.concat([g, g3], axis=-1)
    if "g1_shape_transform" in params:
        g = dense(xp, params["g1_shape_transform"], g)
    if config.add_tebd_to_repinit_out:
        g = g + dense(xp, params["tebd_transform"], tebd_ext[:, : g.shape[1], ...])
    return g


def descriptor(
    params: dict,
    config: DPA2Config,
    coord_ext: Array,
    atype_ext: Array,
    nlist: Array,
    mapping: Array | None = None,
    *,
    validate: bool = True,
    repformer_width: int | None = None,
    slot_widths: SlotWidths | None = None,
) -> DescriptorOutput:
    """DPA-2 descriptor of the local atoms, identical to deepmd-kit's ``DescrptDPA2.call``.

    coord_ext: (nf, nall, 3) or (nf, nall*3), Å; atype_ext: (nf, nall) int, < 0 = virtual;
    nlist: (nf, nloc, nnei) int, -1 padded, sorted by distance; mapping: (nf, nall)
    extended -> local index (may be omitted when nall == nloc).
    Runs in ``config.precision``; float outputs come back in ``coord_ext``'s dtype.
    ``validate=False`` skips the value checks (they sync device and host).
    ``repformer_width``: a static bound from :func:`live_width` on these inputs, so that a
    traced call (jit) takes the eager fast path; see :func:`.repformer.repformer`.
    ``slot_widths``: the static bounds of every block from :func:`live_widths` (it takes
    precedence over ``repformer_width``), so a traced call also cuts the silent slots of
    repinit and the three-body block.
    """
    xp = namespace(coord_ext, atype_ext, nlist)
    coord_ext, mapping = check_shapes(xp, coord_ext, atype_ext, nlist, mapping)
    if validate:
        check_values(xp, config.ntypes, coord_ext, atype_ext, nlist, mapping,
                     env_protection=config.env_protection)
    out_dtype = coord_ext.dtype
    dtype = dtype_of(xp, config.dtype_name)
    if params["repformer"]["g2_embd"]["w"].dtype != dtype:
        raise ValueError(f"params: dtype {params['repformer']['g2_embd']['w'].dtype} does not "
                         f"match precision={config.precision!r}; convert the parameters")
    coord = xp.astype(coord_ext, dtype)
    nlist = pad_nlist(xp, nlist, config.nsel)
    geo = geometry(xp, coord, nlist)
    lists = {(rc, ns): sub_list(xp, nlist, geo.r2, rc, ns) for rc, ns in config.sub_lists()}
    table = type_embedding_table(xp, params["type_embedding"], config)
    tebd_ext = xp.take(table, xp.reshape(type_index(xp, atype_ext, config.ntypes), (-1,)), axis=0)
    tebd_ext = xp.reshape(tebd_ext, (*atype_ext.shape, table.shape[-1]))
    g = _glue(xp, params, config, geo, lists, atype_ext, tebd_ext, table, slot_widths)
    rf = config.repformer
    if slot_widths is not None:
        repformer_width = slot_widths.repformer
    out = repformer(xp, config, params["repformer"], geo, lists[(rf.rcut, rf.nsel)], atype_ext,
                    g, mapping, repformer_width)
    desc = out.g1
    if config.concat_output_tebd:
        desc = xp.concat([desc, tebd_ext[:, : desc.shape[1], ...]], axis=-1)
    result = DescriptorOutput(desc, out.rot_mat, out.g2, out.h2, out.sw)
    return DescriptorOutput(*(xp.astype(x, out_dtype) for x in result))


def _padded_geometry(xp: Namespace, config: DPA2Config, coord_ext: Array, nlist: Array
                     ) -> tuple[Array, Array]:
    """The padded list and its squared distances (Å²), in the config's precision."""
    coord = xp.astype(coord_ext, dtype_of(xp, config.dtype_name))
    coord = xp.reshape(coord, (nlist.shape[0], -1, 3))
    nlist = pad_nlist(xp, nlist, config.nsel)
    return nlist, geometry(xp, coord, nlist).r2


def _bound(xp: Namespace, nlist: Array, r2: Array, rcut: float, nsel: int, multiple: int
           ) -> int:
    """The slots in use in the (rcut, nsel) sub-list plus one, rounded up to ``multiple``
    and capped at nsel."""
    used = used_width(xp, sub_list(xp, nlist, r2, rcut, nsel) >= 0)
    if used is None:
        raise ValueError("live_width: needs concrete inputs (it reads their values)")
    return min(nsel, -(-(used + 1) // multiple) * multiple)


def live_width(xp: Namespace, config: DPA2Config, coord_ext: Array, nlist: Array,
               multiple: int = 8) -> int:
    """A bound on the repformer slots in use by some atom of these concrete inputs, rounded
    up to ``multiple`` (fewer distinct values: fewer compiles) and capped at its nsel.

    coord_ext: (nf, nall, 3), Å; nlist: (nf, nloc, nnei) sorted by distance. The same
    sub-list rule as :func:`descriptor` (exclusions can only empty more slots), in the
    config's precision, plus one slot: a distance another backend rounds to the other side
    of rcut cannot make the bound short.
    """
    rf = config.repformer
    return _bound(xp, *_padded_geometry(xp, config, coord_ext, nlist), rf.rcut, rf.nsel,
                  multiple)


def _plan(xp: Namespace, nlist: Array, r2: Array, rcut: float, nsel: int, multiple: int,
          blocks: int) -> BlockPlan:
    """:func:`.._compat.static_plan` of the (rcut, nsel) sub-list of concrete inputs."""
    valid = to_numpy(sub_list(xp, nlist, r2, rcut, nsel) >= 0)
    rank = np.arange(1, valid.shape[-1] + 1)  # the last slot in use, any frame, per centre
    used = np.sort(np.max(np.where(valid, rank, 0), axis=(0, 2)))  # (nloc,) ascending
    return static_plan([int(u) for u in used], nsel, multiple, blocks)


def live_widths(xp: Namespace, config: DPA2Config, params: dict, coord_ext: Array,
                nlist: Array, multiple: int = 8, blocks: int = 1) -> SlotWidths:
    """The bounds of :func:`live_width` for every block, from concrete inputs and params.

    Repinit and the three-body block cut only silent slots (their §5.5 residual is zero
    where the sum would see it: ``davg == 0`` there, components 0:4 and 1:4), so each of
    their bounds is kept only when the parameters make the cut slots silent, and is the
    block's nsel (no cut) otherwise.

    ``blocks`` > 1: static plans (:func:`.._compat.static_plan`) of up to that many sorted
    blocks of centres, each with its own bound, instead of one bound for all: a traced
    call then cuts each block to its own width, as eager calls do.
    """
    ri, rf = config.repinit, config.repformer
    nlist, r2 = _padded_geometry(xp, config, coord_ext, nlist)

    def bound(rcut: float, nsel: int) -> int | BlockPlan:
        if blocks > 1:
            plan = _plan(xp, nlist, r2, rcut, nsel, multiple, blocks)
            return plan if len(plan) > 1 else plan[0][1]
        return _bound(xp, nlist, r2, rcut, nsel, multiple)

    def silent(block: str, width: int | BlockPlan, first: int) -> int | BlockPlan:
        davg = params[block]["davg"]
        if is_traced(davg):
            raise ValueError("live_widths: needs concrete params (it reads davg)")
        narrowest = width if isinstance(width, int) else min(w for _, w in width)
        quiet = silent_beyond(xp, xp.asarray(davg), narrowest, first)
        return width if quiet else davg.shape[1]

    w_ri = silent("repinit", bound(ri.rcut, ri.nsel), 0)
    w_3b = ri.three_body_sel
    if ri.use_three_body:
        w_3b = silent("three_body", bound(ri.three_body_rcut, ri.three_body_sel), 1)
    return SlotWidths(w_ri, w_3b, bound(rf.rcut, rf.nsel))


def grow_widths(seen: SlotWidths | None, new: SlotWidths) -> SlotWidths:
    """The larger of two one-block bounds, block by block (``seen`` None: ``new``).

    A compiled program specialises on its bounds, so a caller that feeds it many
    structures (MD, training) keeps the largest bound seen: it recompiles only when a
    structure needs wider blocks, not each time one needs narrower ones. Any bound at or
    above the slots in use gives the same numbers. Sorted-block plans are not merged:
    ``new`` is returned when either holds one.
    """
    if seen is None or not all(isinstance(w, int) for w in (*seen, *new)):
        return new
    return SlotWidths(*(max(a, b) for a, b in zip(seen, new, strict=True)))
