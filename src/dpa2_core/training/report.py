"""What both trainers print, in one order: statistics, energy bias, progress bar, summary.

The torch and JAX trainers call these so their screens read the same line for line
(restart instead of statistics when resuming); per-step metrics go to ``lcurve.out`` and
into the bar's postfix, never as lines between bar updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["bar_postfix", "bias_line", "restart_line", "statistics_line", "summary_line"]


def statistics_line(nbatch: int, nsystems: int) -> str:
    return (f"statistics: descriptor davg/dstd from {nbatch} batch(es) of each of "
            f"{nsystems} system(s)")


def bias_line(bias: Sequence[float] | np.ndarray, type_map: Sequence[str]) -> str:
    """``energy bias per type (eV): O -93.573600, H -187.147200``."""
    values = np.asarray(bias, dtype=np.float64).reshape(-1)
    pairs = ", ".join(f"{t} {v:.6f}" for t, v in zip(type_map, values, strict=True))
    return f"energy bias per type (eV): {pairs}"


def restart_line(path: str | Path, step: int, note: str = "") -> str:
    return f"restarting from {path} at step {step}" + (f" ({note})" if note else "")


def bar_postfix(metrics: dict, lr: float) -> dict[str, str]:
    return {"rmse_e": f"{metrics['rmse_e']:.2e}",
            "rmse_f": f"{metrics.get('rmse_f', float('nan')):.2e}", "lr": f"{lr:.1e}"}


def summary_line(step_times: Sequence[float], output: str | Path) -> str:
    """``trained N steps in T s (first step F s, then M s/step); outputs in DIR``: the first
    step is apart because it compiles (jax, torch.compile)."""
    times = list(step_times)
    if not times:
        return f"trained 0 steps; outputs in {output}"
    rest = times[1:]
    after = f", then {np.mean(rest):.3f} s/step" if rest else ""
    return (f"trained {len(times)} steps in {sum(times):.1f} s (first step {times[0]:.2f} s"
            f"{after}); outputs in {output}")
