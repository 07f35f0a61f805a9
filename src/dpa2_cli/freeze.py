"""``dpa2 freeze MODEL -o OUT``: a model in the form OUT's suffix names.

MODEL is anything :func:`dpa2_core.io.load_model` reads: a ``dpa2 train`` checkpoint of
either backend (torch ``.pt``, jax ``.npz``), a deepmd-kit ``.dp``/``.yaml``/``.json``
model or a deepmd-kit ``.pt`` checkpoint (``--head`` for a multi-task one).
:data:`WRITERS` maps the output suffix to ``writer(record, path, dtype) -> str`` (a
one-line summary):

- ``.dp``/``.yaml``/``.json``: a deepmd-kit 3.2.0 whole model
  (:func:`dpa2_core.io.save_deepmd_model`) that ``deepmd.infer.DeepPot`` reads and
  ``dp convert-backend model.dp model.pth`` turns into what LAMMPS loads;
- ``.pte``/``.pt2`` (torch.export / AOTInductor) and ``.jaxexport`` (jax.export): the
  exported artifacts of :mod:`dpa2_core.io.artifacts`, each loaded by its framework alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dpa2_core.io import save_deepmd_model
from dpa2_core.io.deepmd_model import DeepmdModel
from dpa2_core.io.loader import load_model

from .models import backend_module

__all__ = ["WRITERS", "add_parser", "cmd_freeze", "freeze"]

Writer = Callable[[DeepmdModel, Path, "str | None"], str]


def _summary(meta: dict, path: Path) -> str:
    return (f"{meta['kind']} {path} ({meta['precision']}, type_map {meta['type_map']}, "
            f"rcut {meta['rcut']} Å, nnei {meta['nnei']}; {meta['export_seconds']:.1f} s)")


def _deepmd_file(record: DeepmdModel, path: Path, dtype: str | None) -> str:
    if dtype is not None:
        raise ValueError(f"--dtype {dtype}: a deepmd-kit model file keeps the model's "
                         "precision (pick the precision when deepmd-kit converts or loads it)")
    out = save_deepmd_model(record, path)
    line = f"deepmd-kit model {out} (type_map {list(record.config.type_map)})"
    if out.suffix == ".dp":
        line += f"\n  LAMMPS / i-PI: dp convert-backend {out} {out.with_suffix('.pth')}"
    return line


def _torch_artifact(record: DeepmdModel, path: Path, dtype: str | None) -> str:
    shim = backend_module("torch")
    return _summary(shim.export_model(record, path, dtype=dtype), path)


def _jax_artifact(record: DeepmdModel, path: Path, dtype: str | None) -> str:
    shim = backend_module("jax")
    import jax

    with jax.enable_x64(True):  # a float64 export needs it; float32 exports are unaffected
        return _summary(shim.export_model(record, path, dtype=dtype), path)


WRITERS: dict[str, Writer] = {
    ".dp": _deepmd_file,
    ".yaml": _deepmd_file,
    ".json": _deepmd_file,
    ".pte": _torch_artifact,
    ".pt2": _torch_artifact,
    ".jaxexport": _jax_artifact,
}


def freeze(model: str, output: str, head: str | None = None, dtype: str | None = None) -> str:
    """Read ``model`` and write ``output`` with the writer of its suffix; returns the summary."""
    path = Path(output)
    writer = WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ValueError(f"-o {output}: unknown output suffix {path.suffix!r}; one of "
                         f"{sorted(WRITERS)}")
    return writer(load_model(model, head=head), path, dtype)


def add_parser(subparsers: Any, **common: Any) -> argparse.ArgumentParser:
    """The ``freeze`` sub-command (``common``: the parser's shared formatter/epilog)."""
    p = subparsers.add_parser(
        "freeze", help="write a model as a deepmd-kit file or a deployable artifact",
        description="Write MODEL in the form OUTPUT's suffix names: .dp/.yaml/.json "
        "(deepmd-kit whole model: DeepPot, dp convert-backend, LAMMPS), .pte "
        "(torch.export), .pt2 (AOTInductor; minutes of C++ compile), .jaxexport "
        "(jax.export); each artifact loads with its framework alone.", **common)
    p.add_argument("model", help="a dpa2 train checkpoint (torch .pt, jax .npz), a "
                   "deepmd-kit .dp/.yaml/.json model or .pt checkpoint")
    p.add_argument("-o", "--output", default="model.dp",
                   help=f"output file; its suffix picks the format ({', '.join(WRITERS)})")
    p.add_argument("--dtype", choices=("float64", "float32"), default=None,
                   help="precision of an exported artifact (default: the model's)")
    p.add_argument("--head", default=None,
                   help="head of a multi-task deepmd-kit .pt checkpoint (default: the first)")
    p.set_defaults(func=cmd_freeze)
    return p


def cmd_freeze(args: argparse.Namespace) -> int:
    print(f"dpa2 freeze: {freeze(args.model, args.output, args.head, args.dtype)}")
    return 0
