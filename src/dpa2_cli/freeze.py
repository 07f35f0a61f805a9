"""``dpa2 freeze CHECKPOINT -o model.dp``: a trained model as a deepmd-kit whole-model file.

Reads a ``dpa2 train`` checkpoint of either backend (torch ``.pt``, jax ``.npz``; a
deepmd-kit ``.pt`` checkpoint too, with ``--head``) and writes it through the writer its
output suffix names in :data:`WRITERS`: ``.dp``/``.yaml``/``.json`` are deepmd-kit 3.2.0
whole models (:func:`dpa2_core.io.save_deepmd_model`: descriptor, fitting net,
``out_bias``/``out_std``, type_map) that ``deepmd.infer.DeepPot`` reads and
``dp convert-backend model.dp model.pth`` turns into what LAMMPS loads.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dpa2_core.io import save_deepmd_model
from dpa2_core.io.deepmd_model import DeepmdModel

__all__ = ["WRITERS", "add_parser", "freeze", "read_trained_model", "run"]

#: output suffix -> writer(model: DeepmdModel, path: Path) -> Path
WRITERS: dict[str, Callable[..., Path]] = {
    ".dp": save_deepmd_model,
    ".yaml": save_deepmd_model,
    ".json": save_deepmd_model,
}


def read_trained_model(path: str | os.PathLike, head: str | None = None) -> DeepmdModel:
    """The whole model of a checkpoint as numpy pytrees, whichever backend wrote it.

    (At merge this becomes ``dpa2_core.io.load_model``, the one loader.)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint={str(path)!r}: no such file")
    if path.suffix == ".npz":  # a dpa2 train --backend jax checkpoint
        import jax

        jax.config.update("jax_enable_x64", True)  # a command-line process: float64 models
        from dpa2_jax.model import to_deepmd_model
        from dpa2_jax.training.checkpoint import load_model

        return to_deepmd_model(*load_model(path))
    from dpa2_torch.training.checkpoint import load_model as load_torch

    return load_torch(path, head).to_deepmd_model()


def freeze(checkpoint: str | os.PathLike, output: str | os.PathLike,
           head: str | None = None, **options: Any) -> Path:
    """Write the model of ``checkpoint`` to ``output`` with the writer of its suffix."""
    output = Path(output)
    writer = WRITERS.get(output.suffix.lower())
    if writer is None:
        raise ValueError(f"-o {str(output)!r}: unknown suffix {output.suffix!r} (one of "
                         f"{sorted(WRITERS)})")
    return writer(read_trained_model(checkpoint, head), output, **options)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("freeze", help="write a trained model as a deepmd-kit model "
                              "file (.dp/.yaml/.json)")
    p.add_argument("checkpoint", help="dpa2 train checkpoint (torch .pt or jax .npz) or a "
                   "deepmd-kit .pt checkpoint")
    p.add_argument("-o", "--output", default="model.dp",
                   help=f"output file; its suffix picks the format ({', '.join(WRITERS)})")
    p.add_argument("--head", default=None, help="head of a multi-task deepmd-kit checkpoint")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    out = freeze(args.checkpoint, args.output, args.head)
    print(f"dpa2 freeze: {args.checkpoint} -> {out}")
    if out.suffix == ".dp":
        print(f"  LAMMPS / i-PI: dp convert-backend {out} {out.with_suffix('.pth')}")
    return 0
