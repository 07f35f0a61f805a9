"""``lcurve.out`` in deepmd-kit's column layout, and a PNG plot of it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .checkpoints import atomic_write

__all__ = ["header", "KEYS", "Lcurve", "plot", "read", "row"]

KEYS = ("rmse", "rmse_e", "rmse_f")


def header(keys: tuple[str, ...], validation: bool) -> str:
    """deepmd-kit's two header lines."""
    line = "# {:5s}".format("step")
    for k in keys:
        line += f"   {k + '_val':>11s} {k + '_trn':>11s}" if validation else f"   {k + '_trn':>11s}"
    line += "   {:8s}\n".format("lr")
    return line + "# If there is no available reference data, rmse_*_{val,trn} will print nan\n"


def row(step: int, lr: float, train: dict, valid: dict | None, keys=KEYS) -> str:
    """One line: step, (validation,) training metrics per key, learning rate."""
    line = f"{step:7d}"
    for k in keys:
        t = float(train.get(k, float("nan")))
        line += f"   {float(valid.get(k, float('nan'))):11.2e} {t:11.2e}" if valid is not None \
            else f"   {t:11.2e}"
    return line + f"   {lr:8.1e}\n"


class Lcurve:
    """Appends rows to ``path``; a fresh file (not a restart) starts with the header."""

    def __init__(self, path: str | os.PathLike, validation: bool, append: bool) -> None:
        self.path, self.validation = Path(path), validation
        if not (append and self.path.is_file()):
            self.path.write_text(header(KEYS, validation))

    def write(self, step: int, lr: float, train: dict, valid: dict | None) -> None:
        with open(self.path, "a") as f:
            f.write(row(step, lr, train, valid if self.validation else None))


def read(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """(column names, data (nrows, ncols)) of a deepmd-style lcurve file."""
    lines = Path(path).read_text().splitlines()
    names = lines[0].lstrip("#").split()
    rows = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    return names, np.asarray(rows, dtype=float).reshape(len(rows), len(names))


def plot(path: str | os.PathLike, out: str | os.PathLike, reference: str | None = None,
         labels: tuple[str, str] = ("dpa2", "deepmd-kit"), required: bool = True) -> bool:
    """Plot rmse_e and rmse_f (train and validation) against step; optionally overlay a
    second lcurve (e.g. deepmd-kit's) with dashed lines. Without matplotlib: ImportError,
    or, with ``required=False`` (trainers), no plot and False."""
    try:
        import matplotlib
    except ImportError as err:
        if required:
            raise ImportError("the learning-curve plot needs matplotlib: "
                              "pip install 'dpa2[plot]'") from err
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    curves = [(path, "-", labels[0])] + ([(reference, "--", labels[1])] if reference else [])
    for src, style, label in curves:
        names, data = read(src)
        for ax, key in zip(axes, KEYS, strict=True):
            for suffix in ("trn", "val"):
                name = f"{key}_{suffix}"
                if name in names and len(data):
                    ax.semilogy(data[:, 0], data[:, names.index(name)], style, marker=".",
                                label=f"{label} {suffix}")
    for ax, key in zip(axes, KEYS, strict=True):
        ax.set_xlabel("step")
        ax.set_title({"rmse": "loss (sqrt)", "rmse_e": "energy RMSE / atom (eV)",
                      "rmse_f": "force RMSE (eV/Å)"}[key])
        ax.legend(fontsize=7)
    fig.tight_layout()
    fmt = Path(out).suffix.lstrip(".") or "png"  # the temporary name has no image suffix
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=110, format=fmt))
    plt.close(fig)
    return True
