"""Input statistics over a stream of frames (§12), and the energy bias before training.

:func:`compute_input_stats` streams frames through the neighbor-list builder, adds the
per-batch sums of :func:`dpa2_core.model.statistics.env_stat_sums` up in float64 numpy
and finalises them exactly as deepmd-kit's ``DescrptDPA2.compute_input_stats`` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .._compat import Array, to_numpy
from ..io.npy_data import DeepmdSystem
from ..model.config import DPA2Config
from ..model.statistics import env_stat_sums, stat_blocks, with_stats
from ..neighbors.builder import build_neighbor_list
from ..neighbors.cells import check_cell
from ..progress import progress_bar

__all__ = [
    "accumulate", "compute_input_stats", "energy_bias", "frame_count", "iter_batches",
    "training_statistics",
]

NeighborList = Callable[..., tuple[Array, Array, Array, Array]]


def _field(item: Any, key: str) -> Any:
    if isinstance(item, dict):
        return item.get(key)
    return getattr(item, key, None)


def _system(item: Any, config: DPA2Config, name: str) -> dict:
    """One frames item as float64/int64 numpy: coord (nf, nloc, 3), atype, box or None."""
    if isinstance(item, str | os.PathLike):
        tm = list(config.type_map) if config.type_map is not None else None
        item = DeepmdSystem(item, tm).frames()
    if not isinstance(item, dict) and not hasattr(item, "coord"):
        raise ValueError(f"{name}: expected a dict with 'coord' and 'atype', a system path "
                         f"or frames, got {type(item).__name__}")
    coord, atype, box = (_field(item, k) for k in ("coord", "atype", "box"))
    if coord is None or atype is None:
        raise ValueError(f"{name}: needs both 'coord' and 'atype'")
    return _check_system(to_numpy(coord), to_numpy(atype),
                         None if box is None else to_numpy(box), config, name)


def _check_system(coord, atype, box, config: DPA2Config, name: str) -> dict:
    if atype.ndim != 2 or not np.issubdtype(atype.dtype, np.integer):
        raise ValueError(f"{name}.atype: expected an integer array (nf, nloc), got "
                         f"{atype.dtype} {atype.shape}")
    nf, nloc = atype.shape
    if not np.issubdtype(coord.dtype, np.floating):
        raise ValueError(f"{name}.coord: must be a floating array, got dtype {coord.dtype}")
    if coord.size != nf * nloc * 3 or coord.shape[0] != nf:
        raise ValueError(f"{name}.coord: expected shape ({nf}, {nloc}, 3) or ({nf}, "
                         f"{nloc * 3}), got {coord.shape}")
    coord = coord.astype(np.float64).reshape(nf, nloc, 3)
    if not np.isfinite(coord).all():
        raise ValueError(f"{name}.coord: contains NaN or inf")
    if atype.size and atype.max() >= config.ntypes:
        raise ValueError(f"{name}.atype: types must be < ntypes={config.ntypes}, got "
                         f"{atype.max()}")
    if box is not None:
        if box.size != nf * 9 or box.shape[0] != nf:
            raise ValueError(f"{name}.box: expected shape ({nf}, 3, 3) or ({nf}, 9), got "
                             f"{box.shape}")
        box = box.astype(np.float64).reshape(nf, 3, 3)
        if not np.isfinite(box).all():
            raise ValueError(f"{name}.box: contains NaN or inf")
        for f, cell in enumerate(box):
            check_cell(cell, (True, True, True), f, what=f"{name}.box")
    return {"coord": coord, "atype": atype.astype(np.int64), "box": box}


def iter_batches(frames: Any, config: DPA2Config, batch_size: int) -> Iterator[dict]:
    """Normalised batches of at most ``batch_size`` frames, one system at a time."""
    if isinstance(frames, dict | str | os.PathLike) or hasattr(frames, "coord"):
        frames = [frames]
    if not isinstance(frames, Iterable):
        raise ValueError(f"frames: expected an iterable of dicts or system paths, got "
                         f"{type(frames).__name__}")
    for k, item in enumerate(frames):
        system = _system(item, config, f"frames[{k}]")
        nf = system["atype"].shape[0]
        for start in range(0, nf, batch_size):
            cut = slice(start, start + batch_size)
            yield {key: None if v is None else v[cut] for key, v in system.items()}


def frame_count(frames: Any) -> int | None:
    """Number of frames in ``frames`` when it is known without reading files (the
    statistics bar's total), else None."""
    items = [frames] if isinstance(frames, dict | str | os.PathLike) or hasattr(
        frames, "coord") else frames
    if not isinstance(items, list | tuple):
        return None
    total = 0
    for item in items:
        atype = item.get("atype") if isinstance(item, dict) else getattr(item, "atype", None)
        if atype is None or np.ndim(atype) != 2:  # (nf, nloc) only: no guessing
            return None
        total += int(np.shape(atype)[0])
    return total


def accumulate(
    config: DPA2Config,
    frames: Any,
    progress: bool = False,
    *,
    batch_size: int = 16,
    neighbor_list: NeighborList | None = None,
) -> dict[str, np.ndarray]:
    """Stream ``frames`` and return the summed :func:`env_stat_sums` as float64 numpy."""
    if not (isinstance(batch_size, int) and batch_size > 0):
        raise ValueError(f"batch_size={batch_size!r}: must be a positive int")
    build = neighbor_list if neighbor_list is not None else build_neighbor_list
    totals = {k: np.zeros((config.ntypes, 2, 3)) for k in stat_blocks(config)}
    bar = progress_bar(progress, required=True, unit="frame", desc="input statistics",
                       total=frame_count(frames))
    try:
        for batch in iter_batches(frames, config, batch_size):
            coord_ext, atype_ext, mapping, nlist = build(batch["coord"], batch["atype"],
                                                         config, batch["box"])
            sums = env_stat_sums(config, coord_ext, atype_ext, nlist, mapping)
            totals = {k: totals[k] + to_numpy(sums[k]).astype(np.float64) for k in totals}
            if bar is not None:
                bar.update(batch["atype"].shape[0])
    finally:
        if bar is not None:
            bar.close()
    return totals


def compute_input_stats(
    params: dict,
    config: DPA2Config,
    frames: Any,
    progress: bool = False,
    *,
    batch_size: int = 16,
    neighbor_list: NeighborList | None = None,
) -> dict:
    """New params whose ``davg``/``dstd`` are the statistics of ``frames`` (§12).

    Identical to deepmd-kit's ``DescrptDPA2.compute_input_stats`` for float64 data.
    ``frames``: one or an iterable of systems, each a dict (or object) with ``coord``
    (nf, nloc, 3) or (nf, nloc*3), ``atype`` (nf, nloc) and optional ``box`` (nf, 3, 3)
    or (nf, 9) (rows = lattice vectors; no box = no periodicity), or a deepmd-format
    system directory (read with ``DeepmdSystem(path, config.type_map)``). Frames are
    processed ``batch_size`` at a time and only the sums are kept. Coordinates are
    used in float64. ``dstd`` is always replaced; ``davg`` only where the block's
    ``set_davg_zero`` is false (repinit's flag covers the three-body block).
    ``neighbor_list(coord, atype, config, box) -> (coord_ext, atype_ext, mapping,
    nlist)`` defaults to :func:`dpa2_core.build_neighbor_list`. ``params`` is not
    modified; the new statistics have the dtype and device of the old ones.
    """
    totals = accumulate(config, frames, progress, batch_size=batch_size,
                        neighbor_list=neighbor_list)
    return with_stats(params, config, totals)


def energy_bias(energies: np.ndarray, atype: Any, ntypes: int,
                rcond: float | None = None) -> np.ndarray:
    """Per-type energies (ntypes,) that fit the frame energies best (least squares on the
    type counts; minimum norm when the compositions do not separate the types, as
    deepmd-kit). energies: (nf,) eV; atype: (nf, nloc), or a list of such arrays (one per
    system, frames in the order of ``energies``); < 0 = virtual (not counted)."""
    parts = atype if isinstance(atype, list | tuple) else [atype]
    counts = np.concatenate([np.stack([(np.asarray(a) == t).sum(axis=-1)
                                       for t in range(ntypes)], axis=-1) for a in parts])
    bias, *_ = np.linalg.lstsq(counts.astype(np.float64),
                               np.asarray(energies, dtype=np.float64).reshape(-1), rcond=rcond)
    return bias


def training_statistics(params: dict, config: DPA2Config, systems: Sequence[Any],
                        sizes: Sequence[int], nbatch: int, rcond: float | None = None,
                        progress: bool = False) -> tuple[dict, np.ndarray]:
    """deepmd-kit's statistics before training, from the first ``nbatch`` batches of every
    system (``nbatch * size`` frames; deepmd's ``data_stat_nbatch``): ``(params`` with the
    descriptor's davg/dstd, ``out_bias`` (ntypes,) from :func:`energy_bias`).

    systems: :class:`dpa2_core.io.npy_data.Frames` with energies, one per system; sizes: their
    batch sizes.
    """
    take = [min(nbatch * b, f.coord.shape[0]) for f, b in zip(systems, sizes, strict=True)]
    stat = [{"coord": f.coord[:n].astype(np.float64), "atype": f.atype[:n],
             "box": None if f.box is None else f.box[:n].astype(np.float64)}
            for f, n in zip(systems, take, strict=True)]
    new = compute_input_stats(params, config, stat, progress)
    energies = np.concatenate([f.energy[:n] for f, n in zip(systems, take, strict=True)])
    return new, energy_bias(energies, [x["atype"] for x in stat], config.ntypes, rcond)
