"""``dpa2 freeze MODEL -o OUT``: write a model in a deployable form, chosen by OUT's suffix.

``WRITERS`` maps an output suffix to ``writer(record, path, dtype) -> str`` (a one-line
summary); ``.pte``/``.pt2`` (torch.export / AOTInductor) and ``.jaxexport`` (jax.export)
are the exported artifacts of :mod:`dpa2_core.io.artifacts`. MODEL is anything
:func:`dpa2_core.io.load_model` reads (``--head`` for a multi-task checkpoint).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from dpa2_core.io.deepmd_model import DeepmdModel

from .models import backend_module

__all__ = ["WRITERS", "cmd_freeze", "freeze"]

Writer = Callable[[DeepmdModel, Path, "str | None"], str]


def _summary(meta: dict, path: Path) -> str:
    return (f"{meta['kind']} {path} ({meta['precision']}, type_map {meta['type_map']}, "
            f"rcut {meta['rcut']} Å, nnei {meta['nnei']}; {meta['export_seconds']:.1f} s)")


def _torch_artifact(record: DeepmdModel, path: Path, dtype: str | None) -> str:
    shim = backend_module("torch")
    return _summary(shim.export_model(record, path, dtype=dtype), path)


def _jax_artifact(record: DeepmdModel, path: Path, dtype: str | None) -> str:
    shim = backend_module("jax")
    import jax

    with jax.enable_x64(True):  # a float64 export needs it; float32 exports are unaffected
        return _summary(shim.export_model(record, path, dtype=dtype), path)


WRITERS: dict[str, Writer] = {
    ".pte": _torch_artifact,
    ".pt2": _torch_artifact,
    ".jaxexport": _jax_artifact,
}


def _load(model: str, head: str | None) -> DeepmdModel:
    """The one place the command reads MODEL (:func:`dpa2_core.io.load_model`)."""
    from dpa2_core.io.loader import load_model

    return load_model(model, head=head)


def freeze(model: str, output: str, head: str | None = None, dtype: str | None = None) -> str:
    """Read ``model`` and write ``output`` with the writer of its suffix; returns the summary."""
    path = Path(output)
    writer = WRITERS.get(path.suffix)
    if writer is None:
        raise ValueError(f"-o {output}: unknown output suffix {path.suffix!r}; one of "
                         f"{sorted(WRITERS)}")
    return writer(_load(model, head), path, dtype)


def cmd_freeze(args: argparse.Namespace) -> int:
    print(f"dpa2 freeze: {freeze(args.model, args.output, args.head, args.dtype)}")
    return 0
