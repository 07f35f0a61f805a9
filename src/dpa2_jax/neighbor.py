"""Fixed-capacity neighbor lists that run inside ``jax.jit`` (the jax-md pattern).

Three functions, one frame each (``jax.vmap`` them for replicas sharing a box):

* :func:`allocate` (host, outside jit): picks the periodic images and the capacity
  (candidates per atom) from the first structure and returns the static
  :class:`NeighborSpec` plus the first :class:`NeighborList`.
* :func:`update` (jit): rebuilds the candidate list (all pairs within ``rcut + skin``,
  brute force over the fixed ghost images, O(nloc * nall)) only when some atom moved
  more than ``skin / 2`` since the last build, and raises the sticky
  ``did_overflow`` flag when an atom has more candidates than ``capacity``.
* :func:`extend` (jit): the descriptor inputs ``(coord_ext, atype_ext, mapping, nlist)``
  from the current coordinates: candidates re-sorted by current distance, cut at
  ``rcut`` and truncated to ``nsel`` (deepmd-kit's ``format_nlist``).

Check ``bool(nbrs.did_overflow)`` outside jit (e.g. after each chunk of MD steps); on
overflow the results since the last check are invalid: :func:`allocate` again (a
larger capacity recompiles) and redo the chunk. The box is fixed (NVE/NVT).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dpa2_core.array_api import Array
from dpa2_core.neighbors.cells import check_cell, check_images, fold_into_cell
from dpa2_core.neighbors.reference import candidates, sorted_list, within_cutoff
from dpa2_core.neighbors.reference import image_shifts as dense_image_shifts

from .descriptor import as_jax

__all__ = ["NeighborList", "NeighborSpec", "allocate", "descriptor_inputs", "image_shifts",
           "needs_rebuild", "update"]


@dataclasses.dataclass(frozen=True)
class NeighborSpec:
    """Static part of a neighbor list (hashable: a ``jax.jit`` static argument).

    shifts: integer image offsets, ``(0, 0, 0)`` first, in deepmd-kit's order, so the
    extended system is image-major: ``coord_ext[s * nloc + i] = x_i + shifts[s] @ box``.
    Changing any field recompiles.
    """

    rcut: float
    nsel: int
    skin: float
    capacity: int
    shifts: tuple[tuple[int, int, int], ...]

    @property
    def cutoff(self) -> float:
        """Candidate cutoff ``rcut + skin``."""
        return self.rcut + self.skin


class NeighborList(NamedTuple):
    """Dynamic part (a pytree of arrays).

    idx: (nloc, capacity) int candidate indices into the extended system, -1 padded,
    sorted by distance at build time; reference: (nloc, 3) positions at the last
    build; offset: (nloc, 3) wrapping offset fixed between builds (keeps ghosts
    continuous when atoms cross the cell boundary); box: (3, 3) rows = lattice vectors
    (zeros without PBC); did_overflow: () bool, sticky; max_count: () int, the largest
    candidate count seen at a build (what a new capacity must hold).
    """

    idx: Array
    reference: Array
    offset: Array
    box: Array
    did_overflow: Array
    max_count: Array


def image_shifts(box: np.ndarray | None, cutoff: float) -> tuple[tuple[int, int, int], ...]:
    """Integer image offsets covering ``cutoff`` around the cell (spec §3.2), ``(0,0,0)``
    first then stably sorted by length: the core's dense builder's shifts. Without a
    box: only ``(0, 0, 0)``. A degenerate or nearly flat box raises naming ``box``."""
    if box is None:
        return ((0, 0, 0),)
    cell = np.asarray(box, dtype=np.float64).reshape(1, 3, 3)
    periodic = (True, True, True)
    check_cell(cell[0], periodic, 0)
    check_images(cell, periodic, cutoff)
    return tuple(tuple(row) for row in dense_image_shifts(cell, periodic, cutoff).tolist())


def _fold_offset(coord: Array, box: Array, periodic: bool) -> Array:
    """The offset that folds coord (nloc, 3) into the cell
    (:func:`dpa2_core.neighbors.cells.fold_into_cell`); fixed between builds."""
    if not periodic:
        return jnp.zeros_like(coord)
    return fold_into_cell(jnp, coord[None], box[None], (True, True, True))[0] - coord


def _extended(spec: NeighborSpec, coord: Array, offset: Array, box: Array) -> Array:
    """(nall, 3) image-major extended positions; differentiable in ``coord``."""
    images = jnp.asarray(spec.shifts, dtype=coord.dtype) @ box  # (ns, 3)
    return jnp.reshape((coord + offset)[None, :, :] + images[:, None, :], (-1, 3))


def _pair_mask(spec: NeighborSpec, coord, atype, offset, box) -> tuple[Array, Array]:
    """Candidate mask (nloc, nall) and squared distances, no gradient (the core's rule,
    :func:`dpa2_core.neighbors.reference.candidates`, at the candidate cutoff)."""
    coord = jax.lax.stop_gradient(coord)
    nloc = coord.shape[0]
    ext = _extended(spec, coord, offset, box)
    atype_ext = jnp.tile(atype, len(spec.shifts))
    ok, d2 = candidates(jnp, ext[None], atype_ext[None], nloc, spec.cutoff)
    return ok[0], d2[0]


def _build(spec: NeighborSpec, coord, atype, box, did_overflow) -> NeighborList:
    periodic = len(spec.shifts) > 1 or spec.shifts[0] != (0, 0, 0)
    offset = _fold_offset(jax.lax.stop_gradient(coord), box, periodic)
    ok, d2 = _pair_mask(spec, coord, atype, offset, box)
    count = jnp.max(jnp.sum(ok, axis=1), initial=0)
    k = min(spec.capacity, ok.shape[1])
    key, idx = jax.lax.top_k(jnp.where(ok, -d2, -jnp.inf), k)
    # candidates in extended-index order: a stable sort by distance then breaks ties by
    # index, the core's sort rule
    idx = jnp.sort(jnp.where(key > -jnp.inf, idx, ok.shape[1]), axis=1)
    idx = jnp.where(idx < ok.shape[1], idx, -1)
    if k < spec.capacity:
        idx = jnp.pad(idx, ((0, 0), (0, spec.capacity - k)), constant_values=-1)
    overflow = did_overflow | (count > spec.capacity)
    return NeighborList(idx, jax.lax.stop_gradient(coord), offset, box, overflow, count)


def allocate(coord, atype, rcut: float, nsel: int, box=None, *, skin: float = 0.5,
             capacity_multiplier: float = 1.25, capacity: int | None = None
             ) -> tuple[NeighborSpec, NeighborList]:
    """Spec and first list of one frame: coord (nloc, 3), atype (nloc,), box (3, 3)/None.

    ``rcut``/``nsel`` are the model's (``config.rcut``, ``config.nsel``). The capacity is
    ``ceil(capacity_multiplier * max candidates)`` unless given. Host-side: do not jit.
    """
    if skin < 0:
        raise ValueError(f"skin={skin!r}: must be >= 0")
    coord = as_jax(coord, "coord")
    atype = as_jax(atype, "atype")
    box_np = None if box is None else np.asarray(box, dtype=np.float64).reshape(3, 3)
    shifts = image_shifts(box_np, rcut + skin)
    box_j = jnp.zeros((3, 3), coord.dtype) if box is None else as_jax(box, "box").reshape(3, 3)
    probe = NeighborSpec(float(rcut), int(nsel), float(skin), 1, shifts)
    if capacity is None:
        offset = _fold_offset(coord, box_j, box is not None)
        ok, _ = _pair_mask(probe, coord, atype, offset, box_j)
        most = int(jnp.max(jnp.sum(ok, axis=1), initial=0))
        capacity = max(1, math.ceil(capacity_multiplier * most))
    spec = dataclasses.replace(probe, capacity=int(capacity))
    return spec, _jit_build(spec, coord, atype, box_j, jnp.asarray(False))


_jit_build = jax.jit(_build, static_argnums=0)


def needs_rebuild(spec: NeighborSpec, nbrs: NeighborList, coord: Array) -> Array:
    """() bool: some atom moved more than ``skin / 2`` since the last build."""
    d = jax.lax.stop_gradient(coord) - nbrs.reference
    return jnp.max(jnp.sum(d * d, axis=-1), initial=0.0) > (0.5 * spec.skin) ** 2


def update(spec: NeighborSpec, nbrs: NeighborList, coord: Array, atype: Array,
           force: bool = False) -> NeighborList:
    """Rebuild when needed (or ``force``); jit-compatible, ``spec`` static."""
    if force:
        return _build(spec, coord, atype, nbrs.box, nbrs.did_overflow)
    return jax.lax.cond(
        needs_rebuild(spec, nbrs, coord),
        lambda: _build(spec, coord, atype, nbrs.box, nbrs.did_overflow),
        lambda: nbrs,
    )


def descriptor_inputs(spec: NeighborSpec, nbrs: NeighborList, coord: Array, atype: Array
                      ) -> tuple[Array, Array, Array, Array]:
    """Descriptor inputs of one frame: coord_ext (nall, 3), atype_ext (nall,),
    mapping (nall,), nlist (nloc, nsel) sorted by current distance, -1 beyond rcut.

    coord_ext is differentiable in ``coord`` (every periodic image moves with its atom);
    the list follows the core's cutoff and sort rules
    (:func:`dpa2_core.neighbors.reference.sorted_list`) over the candidates.
    """
    nloc = coord.shape[0]
    ns = len(spec.shifts)
    coord_ext = _extended(spec, coord, nbrs.offset, nbrs.box)
    idx = jnp.where(nbrs.idx >= 0, nbrs.idx, 0)
    fixed = jax.lax.stop_gradient(coord_ext)
    d = fixed[idx] - fixed[:nloc, None, :]
    d2 = jnp.sum(d * d, axis=-1)
    valid = (nbrs.idx >= 0) & within_cutoff(jnp, d2, spec.rcut)
    slot = sorted_list(jnp, valid[None], d2[None], spec.nsel)[0]  # (nloc, nsel) candidate slot
    picked = jnp.take_along_axis(nbrs.idx, jnp.where(slot >= 0, slot, 0), axis=1)
    nlist = jnp.where(slot >= 0, picked, -1)
    mapping = jnp.tile(jnp.arange(nloc, dtype=nlist.dtype), ns)
    return coord_ext, jnp.tile(atype, ns), mapping, nlist
