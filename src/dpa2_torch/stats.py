"""Statistics before training: per-type energy bias and the descriptor's davg/dstd.

The energy bias solves ``counts_per_type @ bias = energies`` in the least-squares sense
(minimum-norm solution, as deepmd-kit). The descriptor statistics are the core's
``dpa2_core.compute_input_stats`` when that function exists; without it the initial
statistics (davg = 0, dstd = 1) stay and :func:`descriptor_stats` says so.
"""

from __future__ import annotations

import numpy as np
import torch

import dpa2_core as dc
from dpa2_core.data import Frames

from .descriptor import DescrptDPA2

BLOCKS = ("repinit", "three_body", "repformer")


def energy_bias(frames: list[Frames], ntypes: int) -> np.ndarray:
    """(ntypes,) per-type energies fitting the total energies of ``frames`` best."""
    counts = np.concatenate([np.stack([np.bincount(a[a >= 0], minlength=ntypes)
                                       for a in f.atype]) for f in frames]).astype(np.float64)
    energy = np.concatenate([f.energy for f in frames]).astype(np.float64)
    bias, *_ = np.linalg.lstsq(counts, energy, rcond=None)
    return bias


def stat_systems(frames: list[Frames], nframes: int) -> list[dict]:
    """The core's statistics input: one dict (coord, atype[, box]) per system, at most
    ``nframes`` frames each (deepmd samples ``data_stat_nbatch`` batches)."""
    out = []
    for f in frames:
        d = {"coord": f.coord[:nframes].astype(np.float64), "atype": f.atype[:nframes]}
        if f.box is not None:
            d["box"] = f.box[:nframes].reshape(-1, 9).astype(np.float64)
        out.append(d)
    return out


def descriptor_stats(module: DescrptDPA2, systems: list[dict]) -> str:
    """Set the buffers davg/dstd of ``module`` from ``systems``; return a one-line note."""
    fn = getattr(dc, "compute_input_stats", None)
    if fn is None:
        return ("descriptor statistics: dpa2_core.compute_input_stats is not available; "
                "keeping davg = 0, dstd = 1")
    result = fn(module.numpy_params(), module.config, systems)
    with torch.no_grad():
        for block in BLOCKS:
            if block in result and hasattr(module, block):
                for key in ("davg", "dstd"):
                    buf = getattr(getattr(module, block), key)
                    buf.copy_(torch.as_tensor(np.asarray(result[block][key])).to(buf))
    return f"descriptor statistics: dpa2_core.compute_input_stats on {len(systems)} system(s)"
