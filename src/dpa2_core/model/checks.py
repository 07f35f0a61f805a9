"""Checks of descriptor inputs: shapes and dtypes always, values when arrays are concrete."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._compat import Array, device, gather_rows, is_traced, namespace, to_numpy

__all__ = ["check_shapes", "check_values", "validate"]


def _shape_error(name: str, x: Array, want: str) -> ValueError:
    return ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")


def check_shapes(xp: Any, coord_ext, atype_ext, nlist, mapping) -> tuple[Array, Array]:
    """Validate ranks, shapes and dtypes; return coord_ext as (nf, nall, 3) and mapping.

    A missing mapping is only allowed without ghosts (nall == nloc): it is then arange.
    """
    if not xp.isdtype(coord_ext.dtype, "real floating"):
        raise ValueError(f"coord_ext: must be a floating array, got dtype {coord_ext.dtype}")
    for name, x in (("atype_ext", atype_ext), ("nlist", nlist), ("mapping", mapping)):
        if x is not None and not xp.isdtype(x.dtype, "integral"):
            raise ValueError(f"{name}: must be an integer array, got dtype {x.dtype}")
    if atype_ext.ndim != 2:
        raise _shape_error("atype_ext", atype_ext, "(nf, nall)")
    nf, nall = atype_ext.shape
    if coord_ext.ndim == 2 and coord_ext.shape == (nf, nall * 3):
        coord_ext = xp.reshape(coord_ext, (nf, nall, 3))
    if tuple(coord_ext.shape) != (nf, nall, 3):
        raise _shape_error("coord_ext", coord_ext, f"({nf}, {nall}, 3) or ({nf}, {nall * 3})")
    if nlist.ndim != 3 or nlist.shape[0] != nf or nlist.shape[1] > nall:
        raise _shape_error("nlist", nlist, f"({nf}, nloc <= {nall}, nnei)")
    nloc = nlist.shape[1]
    if nf == 0 or nloc == 0:
        raise ValueError(f"nlist: needs at least one frame and one local atom, got shape "
                         f"{tuple(nlist.shape)} (an empty structure has an empty descriptor: "
                         "skip the call)")
    if mapping is None:
        if nall != nloc:
            raise ValueError(f"mapping: required when there are ghost atoms (nall={nall} > "
                             f"nloc={nloc})")
        mapping = xp.arange(nall, dtype=nlist.dtype, device=device(nlist))
        mapping = xp.broadcast_to(mapping[None, :], (nf, nall))
    if tuple(mapping.shape) != (nf, nall):
        raise _shape_error("mapping", mapping, f"({nf}, {nall})")
    return coord_ext, mapping


def check_values(xp: Any, ntypes: int, coord_ext, atype_ext, nlist, mapping,
                 env_protection: float | None = None) -> None:
    """Value checks of concrete (eager) inputs; skipped under jit/compile tracing.

    With ``env_protection == 0`` a listed neighbor on top of its centre is an error:
    its environment-matrix row would be infinite (``1/r`` at ``r = 0``).
    """
    if any(is_traced(x) for x in (coord_ext, atype_ext, nlist, mapping)):
        return
    nall, nloc = atype_ext.shape[1], nlist.shape[1]
    if nall == 0 or nloc == 0:
        return
    if not bool(xp.all(xp.isfinite(coord_ext))):
        raise ValueError("coord_ext: contains NaN or inf")
    if int(xp.max(atype_ext)) >= ntypes:
        raise ValueError(f"atype_ext: types must be < ntypes={ntypes}, got "
                         f"{int(xp.max(atype_ext))}")
    if nlist.shape[2] > 0:
        lo, hi = int(xp.min(nlist)), int(xp.max(nlist))
        if lo < -1 or hi >= nall:
            raise ValueError(f"nlist: entries must lie in [-1, nall={nall}), got [{lo}, {hi}]")
    lo, hi = int(xp.min(mapping)), int(xp.max(mapping))
    if lo < -1 or hi >= nloc:
        raise ValueError(f"mapping: entries must lie in [-1, nloc={nloc}) (-1: no atom), got "
                         f"[{lo}, {hi}]")
    local = mapping[:, :nloc] - xp.arange(nloc, dtype=mapping.dtype, device=device(mapping))
    if bool(xp.any(local != 0)):
        raise ValueError("mapping: local atoms must map to themselves (mapping[:, i] == i)")
    if nlist.shape[2] > 0:
        _check_pairs(xp, coord_ext, nlist, env_protection)


def _first(mask: np.ndarray) -> tuple[int, ...]:
    """Index of the first true entry of a host mask (C order)."""
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(mask)), mask.shape))


def _check_pairs(xp: Any, coord_ext, nlist, env_protection: float | None) -> None:
    """No atom lists itself; no listed neighbor coincides with its centre when p == 0."""
    nloc = nlist.shape[1]
    centre = xp.arange(nloc, dtype=nlist.dtype, device=device(nlist))[None, :, None]
    if bool(xp.any(nlist == centre)):
        f, i, _ = _first(to_numpy(nlist == centre))
        raise ValueError(f"nlist: atom {i} of frame {f} lists itself as a neighbor")
    if env_protection is None or env_protection > 0:
        return
    idx = xp.where(nlist >= 0, nlist, xp.zeros_like(nlist))
    d = gather_rows(xp, coord_ext, idx) - coord_ext[:, :nloc, None, :]
    same = (nlist >= 0) & (xp.sum(d * d, axis=-1) == 0)
    if bool(xp.any(same)):
        f, i, j = _first(to_numpy(same))
        a = int(to_numpy(nlist)[f, i, j])
        raise ValueError(
            f"coord_ext: atom {i} and its neighbor {a} (frame {f}) coincide (distance 0); "
            "with env_protection=0 the environment matrix would be infinite. Remove the "
            "duplicate atom or set env_protection > 0")


def validate(config: Any, coord_ext, atype_ext, nlist, mapping=None) -> None:
    """Every check :func:`dpa2_core.descriptor` runs with ``validate=True``, on their own
    (batched inputs; for shims that call the descriptor where values cannot be read)."""
    xp = namespace(coord_ext, atype_ext, nlist)
    coord_ext, mapping = check_shapes(xp, coord_ext, atype_ext, nlist, mapping)
    check_values(xp, config.ntypes, coord_ext, atype_ext, nlist, mapping,
                 env_protection=config.env_protection)
