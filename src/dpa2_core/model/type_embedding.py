"""Type-embedding table: one-hot (or electron-configuration) input through one linear layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._compat import Array, device
from .econf import econf_table
from .layers import embedding_net

__all__ = ["type_embedding_input", "type_embedding_table"]


def type_embedding_input(config: Any) -> np.ndarray:
    """(ntypes, ntypes) identity or (ntypes, 118) econf rows, float64 (cast by the caller)."""
    if config.use_econf_tebd:
        return econf_table(config.type_map)
    return np.eye(config.ntypes, dtype=np.float64)


def type_embedding_table(xp: Any, params: list[dict], config: Any) -> Array:
    """(ntypes + 1, tebd) table; the last row is the zero padding row of virtual atoms."""
    w = params[0]["w"]
    inputs = xp.asarray(type_embedding_input(config), dtype=w.dtype, device=device(w))
    table = embedding_net(xp, params, inputs, "linear")
    pad = xp.zeros((1, table.shape[1]), dtype=table.dtype, device=device(table))
    return xp.concat([table, pad], axis=0)
