"""Which frames go into each training batch: deepmd-kit's batch sizes and system sampling.

Host-side bookkeeping shared by the torch and JAX trainers: a batch holds frames of one
system (same atom count). Systems are drawn with probability proportional to their
number of batches (``prob_sys_size``, deepmd's default) or uniformly (``prob_uniform``);
the frames of a system are visited in a fresh random order every epoch. The sampler's
state is a JSON-able dict, so a restart resumes the exact sequence of batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["AUTO_PROBS", "batch_sizes", "BatchSampler"]

AUTO_PROBS = ("prob_sys_size", "prob_uniform")


def batch_sizes(spec: Any, nlocs: Sequence[int]) -> list[int]:
    """deepmd's ``batch_size``: an int, one int per system, or ``"auto[:N]"`` (N = 32): the
    smallest size with ``size * nloc >= N``."""
    if isinstance(spec, str):
        head, _, n = spec.partition(":")
        if head != "auto" or (n and not n.isdigit()):
            raise ValueError(f"batch_size={spec!r}: use an int, a list or 'auto[:N]'")
        target = int(n) if n else 32
        return [max(1, math.ceil(target / nloc)) for nloc in nlocs]
    if isinstance(spec, list | tuple):
        if len(spec) != len(nlocs):
            raise ValueError(f"batch_size={spec!r}: needs one entry per system ({len(nlocs)})")
        sizes = [int(b) for b in spec]
    else:
        sizes = [int(spec)] * len(nlocs)
    if any(b <= 0 for b in sizes):
        raise ValueError(f"batch_size={spec!r}: must be positive")
    return sizes


class BatchSampler:
    """``next() -> (system index, frame indices)`` over systems of ``nframes`` frames."""

    def __init__(self, nframes: Sequence[int], sizes: Sequence[int],
                 auto_prob: str = "prob_sys_size", seed: int | None = None) -> None:
        if auto_prob not in AUTO_PROBS:
            raise ValueError(f"auto_prob={auto_prob!r}: use one of {AUTO_PROBS}")
        if not nframes or min(nframes) <= 0:
            raise ValueError(f"nframes={list(nframes)}: every system needs frames")
        self.nframes, self.sizes = [int(n) for n in nframes], [int(b) for b in sizes]
        weights = np.asarray([max(1, n // b) for n, b in zip(self.nframes, self.sizes,
                                                              strict=True)], dtype=float)
        if auto_prob == "prob_uniform":
            weights = np.ones_like(weights)
        self.probs = weights / weights.sum()
        self.rng = np.random.default_rng(seed)
        self._orders: list[list[int]] = [[] for _ in self.nframes]

    def next(self) -> tuple[int, list[int]]:
        k = int(self.rng.choice(len(self.nframes), p=self.probs))
        out: list[int] = []
        while len(out) < min(self.sizes[k], self.nframes[k]):
            if not self._orders[k]:
                self._orders[k] = [int(i) for i in self.rng.permutation(self.nframes[k])]
            out.append(self._orders[k].pop())
        return k, out

    def state(self) -> dict:
        """RNG and epoch orders (JSON-able) for an exact restart."""
        return {"rng": self.rng.bit_generator.state, "orders": [list(o) for o in self._orders]}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        if len(state["orders"]) != len(self._orders):
            raise ValueError(f"sampler state: {len(state['orders'])} systems, expected "
                             f"{len(self._orders)}")
        self._orders = [[int(i) for i in o] for o in state["orders"]]
