"""Changing a model's type map (§13): reorder, drop and add atom types.

Mirrors deepmd-kit's ``DescrptDPA2.change_type_map``. New one-hot type-embedding
rows are drawn from ``numpy.random.default_rng(seed).random`` (uniform [0, 1)),
where deepmd draws the same distribution unseeded; everything else is deterministic.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._compat import Array, device, namespace, to_numpy
from .config import DPA2Config
from .statistics import stat_blocks

__all__ = ["change_type_map", "remap_exclude_types", "remap_index"]


def remap_index(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[list[int], bool]:
    """For each new type its old index, or ``i - len(new)`` if it is new; and whether any is."""
    index = [old.index(t) if t in old else i - len(new) for i, t in enumerate(new)]
    return index, any(i < 0 for i in index)


def remap_exclude_types(pairs, remap: list[int]) -> tuple[tuple[int, int], ...]:
    """Exclusion pairs in the new indices; pairs with a type that was dropped disappear."""
    return tuple((remap.index(a), remap.index(b)) for a, b in pairs
                 if a in remap and b in remap)


def _check_type_map(new_type_map: Any, config: DPA2Config) -> tuple[str, ...]:
    if config.type_map is None:
        raise ValueError("config.type_map: is None; a type map is needed to change it")
    if isinstance(new_type_map, str) or not all(isinstance(t, str) for t in new_type_map):
        raise ValueError(f"new_type_map={new_type_map!r}: must be a list of type names")
    new = tuple(new_type_map)
    if not new:
        raise ValueError("new_type_map=[]: must name at least one type")
    if len(set(new)) != len(new):
        raise ValueError(f"new_type_map={list(new)!r}: has duplicate entries")
    return new


def _take(xp: Any, x: Array, index: list[int]) -> Array:
    return xp.take(x, xp.asarray(index, dtype=xp.int64, device=device(x)), axis=0)


def _skip(xp: Any, ntypes: int, like: Array) -> Array | None:
    """The one-hot skip of a type-embedding layer of width ``like.shape[1]`` (§6.1)."""
    width = like.shape[1]
    eye = xp.eye(ntypes, dtype=like.dtype, device=device(like))
    if width == ntypes:
        return eye
    if width == 2 * ntypes:
        return xp.concat([eye, eye], axis=1)
    return None


def _type_embedding(layer: dict, remap: list[int], has_new: bool, seed) -> dict:
    """First (only) type-embedding layer for the new one-hot types; the bias is unchanged.

    The identity skip is folded into the weights before reordering and unfolded after,
    so the embedding of every kept type is unchanged (§13.2).
    """
    w = layer["w"]  # (ntypes_old, tebd)
    xp = namespace(w)
    n_old, n_new = w.shape[0], len(remap)
    skip = _skip(xp, n_old, w)
    if skip is not None:
        w = w + skip
    if has_new:
        rows = np.random.default_rng(seed).random((n_new, w.shape[1]))
        w = xp.concat([w, xp.asarray(rows, dtype=w.dtype, device=device(w))], axis=0)
    w = _take(xp, w, [i if i >= 0 else n_old + n_new + i for i in remap])
    skip = _skip(xp, n_new, w)
    if skip is not None:
        w = w - skip
    return {**layer, "w": w}


def _new_type_stats(block: str, new: tuple[str, ...], remap, nsel: int, like: dict,
                    stats_from) -> tuple[Array, Array]:
    """(len(new), nsel, 4) davg/dstd rows for the new types (only rows of new types matter)."""
    xp = namespace(like["davg"])
    shape = (len(new), nsel, 4)
    davg = xp.zeros(shape, dtype=like["davg"].dtype, device=device(like["davg"]))
    dstd = xp.ones(shape, dtype=like["dstd"].dtype, device=device(like["dstd"]))
    if stats_from is None:
        return davg, dstd
    cfg, params = stats_from
    if block not in params:
        raise ValueError(f"stats_from: has no {block} statistics")
    rows = []
    for i, t in enumerate(new):
        if remap[i] >= 0:
            rows.append(0)  # placeholder: selected for old types never
        elif cfg.type_map is not None:
            if t not in cfg.type_map:
                raise ValueError(f"stats_from: type {t!r} is not in its type_map "
                                 f"{list(cfg.type_map)}")
            rows.append(cfg.type_map.index(t))
        elif cfg.ntypes == len(new):
            rows.append(i)
        else:
            raise ValueError("stats_from: needs a type_map, or ntypes == len(new_type_map)")
    src = params[block]
    if tuple(src["davg"].shape[1:]) != (nsel, 4):
        raise ValueError(f"stats_from: {block}/davg has shape {tuple(src['davg'].shape)}, "
                         f"expected (ntypes, {nsel}, 4)")
    def convert(x: Array, like: Array) -> Array:  # stats_from may live in another namespace
        picked = to_numpy(x)[np.asarray(rows)]
        return xp.asarray(picked, dtype=like.dtype, device=device(like))

    return convert(src["davg"], davg), convert(src["dstd"], dstd)


def _stats(block: str, params: dict, new, remap, has_new, nsel: int, stats_from) -> dict:
    old = params[block]
    xp = namespace(old["davg"])
    n_old = old["davg"].shape[0]
    davg, dstd = old["davg"], old["dstd"]
    if has_new:
        extra_avg, extra_std = _new_type_stats(block, new, remap, nsel, old, stats_from)
        davg = xp.concat([davg, extra_avg], axis=0)
        dstd = xp.concat([dstd, extra_std], axis=0)
    index = [i if i >= 0 else n_old + len(new) + i for i in remap]
    return {**old, "davg": _take(xp, davg, index), "dstd": _take(xp, dstd, index)}


def change_type_map(
    params: dict,
    config: DPA2Config,
    new_type_map: list[str] | tuple[str, ...],
    stats_from: tuple[DPA2Config, dict] | None = None,
    seed: int | None = None,
) -> tuple[DPA2Config, dict]:
    """(new_config, new_params) of the same model over ``new_type_map`` (§13).

    Types keep their parameters under their new index; dropped types disappear;
    ``exclude_types`` is remapped (pairs with a dropped type are removed). For a type
    that is new:

    * statistics (``davg``/``dstd`` of every block) come from ``stats_from = (config,
      params)`` of a model that has statistics for it (looked up by name in its
      ``type_map``), else ``davg = 0`` and ``dstd = 1``;
    * one-hot type embedding: a new row of the first layer drawn from
      ``numpy.random.default_rng(seed)`` uniform [0, 1) (deepmd draws it unseeded), after
      folding the identity skip (``tebd == ntypes`` or ``2 * ntypes``) into the weights;
    * econf type embedding (``use_econf_tebd``): weights unchanged; the econf input
      table follows ``type_map``, so a new element gets its physical embedding.

    ``params`` is not modified; arrays keep their namespace, dtype and device.
    """
    new = _check_type_map(new_type_map, config)
    if stats_from is not None and (len(stats_from) != 2
                                   or not isinstance(stats_from[0], DPA2Config)):
        raise ValueError("stats_from: must be a (DPA2Config, params) pair")
    remap, has_new = remap_index(config.type_map, new)
    new_config = dataclasses.replace(
        config, ntypes=len(new), type_map=new,
        exclude_types=remap_exclude_types(config.exclude_types, remap))
    out = dict(params)
    if not config.use_econf_tebd:
        out["type_embedding"] = [_type_embedding(params["type_embedding"][0], remap, has_new,
                                                 seed), *params["type_embedding"][1:]]
    for block, (_, _, nsel, _) in stat_blocks(config).items():
        out[block] = _stats(block, params, new, remap, has_new, nsel, stats_from)
    return new_config, out
