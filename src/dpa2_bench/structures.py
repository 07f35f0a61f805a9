"""Benchmark cases: configurations and water boxes (the 192-atom frame and replicas)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from dpa2_core import DPA2Config, init_params
from dpa2_core.neighbors.extension import Extension, extension
from dpa2_core.presets import preset, water_frame

__all__ = ["Inputs", "config_for", "inputs_for", "params_for", "water_box"]


class Inputs(NamedTuple):
    """One structure as every runner needs it (numpy, float64 coordinates).

    coord: (1, nloc, 3) Å; ext: the ghost extension (``coord_ext = coord[mapping] + shift``);
    coord_ext: (1, nall, 3) Å.
    """

    coord: np.ndarray
    ext: Extension
    coord_ext: np.ndarray


def water_box(natoms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 192-atom water frame replicated ``k x k x k`` times (natoms = 192 k**3).

    Returns coord (natoms, 3), atype (natoms,), box (3, 3), Å.
    """
    coord, atype, box, _ = water_frame()
    k = round((natoms / coord.shape[0]) ** (1 / 3))
    if coord.shape[0] * k**3 != natoms:
        raise ValueError(f"natoms={natoms}: must be 192 * k**3 (192, 1536, 12288, ...)")
    shifts = np.stack(np.meshgrid(*(np.arange(k),) * 3, indexing="ij"), -1).reshape(-1, 3)
    images = (shifts @ box)[:, None, :] + coord[None]
    return images.reshape(-1, 3), np.tile(atype, k**3), box * k


def config_for(name: str, dtype: str) -> DPA2Config:
    """Preset ``name`` ("small", "medium") in precision ``dtype``."""
    return dataclasses.replace(preset(name), precision=dtype)


def params_for(config: DPA2Config, seed: int = 1) -> dict:
    """Seeded numpy parameters with the statistics training gives them: ``dstd`` > 0 and
    ``davg = (mu_r, 0, 0, 0)`` per type (the standard form, as computed from data), or
    ``davg = 0`` in the blocks whose ``set_davg_zero`` is set (deepmd-kit's statistics
    leave it zero there, as in the shared trained model); so the padding residual of §5.5
    is exercised where a trained model has one."""
    params = init_params(config, seed)
    rng = np.random.default_rng(seed)
    zero = {"repinit": config.repinit.set_davg_zero, "three_body": config.repinit.set_davg_zero,
            "repformer": config.repformer.set_davg_zero}
    for block in ("repinit", "three_body", "repformer"):
        if block in params:
            davg, dstd = params[block]["davg"], params[block]["dstd"]
            radial = np.zeros(davg.shape)
            if not zero[block]:
                radial[..., 0] = 0.1 + 0.05 * rng.random(davg.shape[0])[:, None]
            params[block]["davg"] = radial.astype(davg.dtype)
            params[block]["dstd"] = (1.0 + 0.1 * rng.random(dstd.shape)).astype(dstd.dtype)
    return params


def inputs_for(config: DPA2Config, natoms: int) -> Inputs:
    """Neighbor list and ghost extension of the water box of ``natoms`` atoms."""
    coord, atype, box = water_box(natoms)
    ext = extension(coord[None], atype[None], config, box[None])
    safe = np.maximum(ext.mapping, 0)
    coord_ext = np.take_along_axis(coord[None], safe[..., None], axis=1) + ext.shift
    return Inputs(coord[None], ext, coord_ext)
