"""Structure -> descriptor inputs: wrapped coordinates, ghosts, mapping and a sorted list.

``build_neighbor_list(coord, atype, config, box)`` returns ``(coord_ext, atype_ext,
mapping, nlist)`` with deepmd-kit's conventions (§3 of the spec); pass them on as
``descriptor(params, config, coord_ext, atype_ext, nlist, mapping)``.

Two engines give the same neighbors (the ghost sets differ, the descriptor does not):

* ``"vesin"``: O(N) time and memory. Ghosts are only the images that are neighbors.
* ``"reference"``: the dense O(N²) pure array-API builder (``_nlist_reference``), ghosts
  are all images within the cutoff's reach. Runs on the caller's array backend.

``"auto"`` uses vesin when it is installed and falls back to the reference otherwise.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._compat import Array, device, namespace, to_numpy
from .cells import Structure, check_images, check_structure
from .reference import image_shifts, reference_neighbor_list
from .vesin_engine import INSTALL_HINT, FrameList, frame_list, import_vesin

__all__ = ["build_neighbor_list", "DENSE_LIMIT_BYTES", "ENGINES"]

ENGINES = ("auto", "vesin", "reference")
# The dense fallback refuses systems whose distance arrays would exceed this.
DENSE_LIMIT_BYTES = 2 * 1024**3


def _pad_frame(f: FrameList, nall: int, rcut: float) -> FrameList:
    """Append virtual atoms up to ``nall``: type -1, mapping -1, far from every atom."""
    extra = nall - f.atype_ext.shape[0]
    if extra == 0:
        return f
    far = (float(np.max(f.coord_ext)) if f.coord_ext.size else 0.0) + 2.0 * rcut
    coord = np.concatenate([f.coord_ext, np.full((extra, 3), far, dtype=f.coord_ext.dtype)])
    minus = np.full(extra, -1, dtype=np.int64)
    return FrameList(coord, np.concatenate([f.atype_ext, minus]),
                     np.concatenate([f.mapping, minus]), f.nlist, f.count)


def _vesin_batch(s: Structure, rcut: float, nsel: int) -> tuple:
    frames = [frame_list(s.coord[k], s.atype[k], None if s.cell is None else s.cell[k],
                         s.periodic, rcut, nsel, s.dtype) for k in range(s.atype.shape[0])]
    nall = max((f.atype_ext.shape[0] for f in frames), default=s.atype.shape[1])
    frames = [_pad_frame(f, nall, rcut) for f in frames]
    if not frames:  # an empty batch
        nloc = s.atype.shape[1]
        return (s.coord.astype(s.dtype), s.atype, s.atype.copy(),
                np.zeros((0, nloc, nsel), np.int64), np.zeros((0, nloc), np.int64))
    return tuple(np.stack([f[k] for f in frames]) for k in range(5))


def _dense_bytes(s: Structure, rcut: float) -> int:
    ns = image_shifts(s.cell, s.periodic, rcut).shape[0]
    nf, nloc = s.atype.shape
    return 8 * 8 * nf * nloc * nloc * ns


def _reference_batch(s: Structure, rcut: float, nsel: int, coord: Array,
                     fallback: bool) -> tuple:
    """Run the dense builder in the namespace and on the device of ``coord``."""
    if _dense_bytes(s, rcut) > DENSE_LIMIT_BYTES:
        why = (f"{s.atype.size} atoms are too many for the dense O(N²) builder (over "
               f"{DENSE_LIMIT_BYTES / 2**30:.0f} GiB of distances)")
        if fallback:
            raise ImportError(f"{why}; the O(N) engine needs vesin: {INSTALL_HINT}")
        raise ValueError(f"engine='reference': {why}; use engine='vesin'")
    like = np.asarray(coord) if isinstance(coord, list | tuple) else coord
    xp, dev = namespace(like), device(like)

    def put(x: np.ndarray | None) -> Array:
        return None if x is None else xp.asarray(x, device=dev)

    cell = None if s.cell is None else s.cell.astype(s.dtype)
    return reference_neighbor_list(xp, put(s.coord.astype(s.dtype)), put(s.atype), put(cell),
                                   s.periodic, rcut, nsel)


def _warn_overflow(count: np.ndarray, nsel: int, rcut: float) -> None:
    dropped = np.maximum(count - nsel, 0)
    if dropped.any():
        warnings.warn(
            f"nsel={nsel} is smaller than the densest environment ({int(count.max())} "
            f"neighbors within rcut={rcut}): {int(dropped.sum())} neighbors of "
            f"{int(np.count_nonzero(dropped))} atoms were dropped (the closest {nsel} were "
            "kept); increase repinit.nsel", UserWarning, stacklevel=3)


def _to_caller(arrays: tuple, coord: Array) -> tuple:
    """numpy results back into the namespace and onto the device of ``coord``."""
    if isinstance(coord, np.ndarray | list | tuple) or all(
            not isinstance(a, np.ndarray) for a in arrays):
        return arrays
    xp = namespace(coord)
    return tuple(xp.asarray(a, device=device(coord)) for a in arrays)


def _cutoffs(config: Any, rcut: float | None, nsel: int | None) -> tuple[float, int]:
    rcut = float(config.rcut if rcut is None else rcut)
    nsel = int(config.nsel if nsel is None else nsel)
    if not rcut > 0:
        raise ValueError(f"rcut={rcut!r}: must be positive")
    if nsel < 1:
        raise ValueError(f"nsel={nsel!r}: must be positive")
    return rcut, nsel


def _engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r}: must be one of {ENGINES}")
    if engine != "auto":
        return engine
    try:
        import_vesin()
    except ImportError:
        return "reference"
    return "vesin"


def build_neighbor_list(
    coord: Array,
    atype: Array,
    config: Any,
    box: Array | None = None,
    *,
    pbc: Any = None,
    rcut: float | None = None,
    nsel: int | None = None,
    engine: str = "auto",
) -> tuple[Array, Array, Array, Array]:
    """Descriptor inputs ``(coord_ext, atype_ext, mapping, nlist)`` of a structure.

    coord: (nf, nloc, 3) or (nloc, 3), Å; atype: (nf, nloc) or (nloc,) int, < 0 = virtual;
    box: (nf, 3, 3), (nf, 9), (3, 3) or None (open boundary), rows = lattice vectors,
    any handedness, any size (several image shells when shorter than the cutoff).
    pbc: periodic axes with a box (default all three; non-periodic axes get no images).
    config: a DPA2Config (its ``rcut``/``nsel``, i.e. repinit's; ``rcut``/``nsel``
    override them, e.g. to add a skin). engine: "auto" (vesin if installed, else the
    dense reference), "vesin" or "reference".

    Returns, always batched (nf = 1 for a single frame), in coord's namespace:
    coord_ext (nf, nall, 3) in coord's dtype, local atoms first and wrapped into the
    cell, then ghosts; atype_ext, mapping (nf, nall) int64, mapping = local index of each
    extended atom; nlist (nf, nloc, nsel) int64: every real neighbor with r <= rcut,
    sorted by distance (ties by extended index), -1 padded. Virtual atoms are never
    neighbors and have all -1 rows. Frames needing fewer ghosts than the largest are
    padded with virtual atoms (type -1, mapping -1, placed far away), which the
    descriptor ignores. Warns when ``nsel`` is too small (the closest are kept).
    """
    rcut, nsel = _cutoffs(config, rcut, nsel)
    chosen = _engine(engine)
    s = check_structure(coord, atype, box, pbc, getattr(config, "ntypes", None))
    check_images(s.cell, s.periodic, rcut)
    if chosen == "vesin" or s.atype.shape[0] == 0:
        *out, count = _vesin_batch(s, rcut, nsel)
        out = _to_caller(tuple(out), coord)
    else:
        *out, count = _reference_batch(s, rcut, nsel, coord, fallback=engine == "auto")
    _warn_overflow(to_numpy(count), nsel, rcut)
    return tuple(out)
