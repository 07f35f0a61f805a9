"""Deployable jax artifact of a whole energy model: ``.jaxexport`` (``jax.export``,
serialized StableHLO), loadable with jax alone.

The exported call is the lower interface of :mod:`dpa2_core.io.artifacts`:
``(coord_ext, atype_ext, nlist, mapping) -> {"energy", "atom_energy", "force_ext",
"virial"}``; nf, nall and nloc are symbolic dimensions (``nall >= nloc``), nnei is the
model's. The force is ``jax.grad`` inside the exported function, so the artifact carries
forward and backward. A ``.jaxexport`` is a zip archive: ``exported.bin``
(``jax.export.Exported.serialize()``) and ``metadata.json``.

Index dtype: int64 for a float64 artifact (which needs ``jax_enable_x64`` to run), int32
for a float32 one (which then runs without x64).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dpa2_core.io.artifacts import (
    EXPORT_PRECISIONS,
    LoadedArtifact,
    build_metadata,
    check_export_precision,
    kind_of_suffix,
    read_jaxexport,
    write_jaxexport,
)
from dpa2_core.model.outputs import LOWER_OUTPUTS, lower_outputs

from .descriptor import as_jax
from .model import ModelConfig, atom_energy, load_model
from .params import X64_HINT, to_jax, x64_enabled

__all__ = ["ExportedModel", "export_model", "load_exported", "lower_forward"]


def lower_forward(params: dict, config: ModelConfig, coord_ext, atype_ext, nlist, mapping
                  ) -> dict[str, jax.Array]:
    """The call an artifact reproduces (jit-able, ``config`` static): energy (nf, 1),
    atom_energy (nf, nloc, 1), force_ext (nf, nall, 3) = -dE/dcoord_ext, virial (nf, 9)."""

    coord_ext, atype_ext = as_jax(coord_ext, "coord_ext"), as_jax(atype_ext, "atype_ext")
    nlist, mapping = as_jax(nlist, "nlist"), as_jax(mapping, "mapping")

    def total(c):
        e = atom_energy(params, config, c, atype_ext, nlist, mapping)
        return jnp.sum(e), e

    grad, atom_e = jax.grad(total, has_aux=True)(coord_ext)
    return lower_outputs(atom_e, grad, coord_ext)


def _in_precision(config: ModelConfig, params: dict, precision: str
                  ) -> tuple[ModelConfig, dict]:
    import dataclasses

    new = ModelConfig(dataclasses.replace(config.descriptor, precision=precision),
                      dataclasses.replace(config.fitting, precision=precision))
    return new, to_jax(params, dtype=precision)


def _check_x64(precision: str | None) -> None:
    if precision == "float64" and not x64_enabled():
        raise ValueError(f"dtype='float64': a float64 export needs jax_enable_x64, which is "
                         f"off: {X64_HINT}")


def export_model(model: Any, path: str | os.PathLike, dtype: Any = None, *,
                 head: str | None = None) -> dict:
    """Write a ``.jaxexport`` of a whole energy model (``(ModelConfig, params)``, a
    ``DeepmdModel`` or a model file; ``head`` picks a multi-task head).

    dtype: ``"float64"`` (needs ``jax_enable_x64``) or ``"float32"`` (default: the model's).
    Load with ``jax.export.deserialize(zip["exported.bin"]).call(coord_ext, atype_ext,
    nlist, mapping)``. Returns the metadata written (plus ``export_seconds``).
    """
    kind = kind_of_suffix(path)
    if kind != "jax-export":
        raise ValueError(f"path={str(path)!r}: dpa2_jax writes .jaxexport (.pte/.pt2 come "
                         "from dpa2_torch.export_model)")
    name = None if dtype is None else str(getattr(dtype, "name", dtype))
    _check_x64(name)  # before a cast to float64 that would fail less clearly
    config, params = load_model(model, head, name if name in EXPORT_PRECISIONS else None)
    precision = check_export_precision(dtype, config.descriptor.dtype_name)
    _check_x64(precision)
    int_dtype = "int64" if precision == "float64" else "int32"
    meta = build_metadata(config.descriptor, kind, precision, int_dtype,
                          {"jax": jax.__version__})
    start = time.perf_counter()
    config, params = _in_precision(config, params, precision)
    nf, nall, nloc = jax.export.symbolic_shape("nf, nall, nloc", constraints=["nall >= nloc"])
    fdt, idt = jnp.dtype(precision), jnp.dtype(int_dtype)
    specs = (jax.ShapeDtypeStruct((nf, nall, 3), fdt), jax.ShapeDtypeStruct((nf, nall), idt),
             jax.ShapeDtypeStruct((nf, nloc, config.descriptor.nsel), idt),
             jax.ShapeDtypeStruct((nf, nall), idt))

    def call(coord_ext, atype_ext, nlist, mapping):
        return lower_forward(params, config, coord_ext, atype_ext, nlist, mapping)

    exported = jax.export.export(jax.jit(call))(*specs)
    write_jaxexport(path, exported.serialize(), meta)
    return {**meta, "export_seconds": time.perf_counter() - start}


class ExportedModel(LoadedArtifact):
    """A loaded ``.jaxexport``: ``model(coord_ext, atype_ext, nlist, mapping)`` takes numpy
    or jax arrays and returns the four outputs as float64 numpy arrays (the calculators'
    ``_evaluate`` signature); ``exported`` is the ``jax.export.Exported``."""

    def __init__(self, exported: Any, metadata: dict, path: Path) -> None:
        super().__init__(metadata, path)
        self.exported = exported
        self._call = jax.jit(exported.call)

    def __call__(self, coord_ext: Any, atype_ext: Any, nlist: Any, mapping: Any
                 ) -> dict[str, np.ndarray]:
        fdt, idt = self.metadata["precision"], self.metadata["int_dtype"]
        nlist = np.asarray(nlist)
        self.check_nlist(nlist.shape)
        out = self._call(np.asarray(coord_ext, dtype=fdt), np.asarray(atype_ext, dtype=idt),
                         nlist.astype(idt), np.asarray(mapping, dtype=idt))
        return {k: np.asarray(out[k], dtype=np.float64) for k in LOWER_OUTPUTS}


def load_exported(path: str | os.PathLike) -> ExportedModel:
    """Load a ``.jaxexport`` written by :func:`export_model`; a file of another kind or
    format version raises naming it, a float64 one without x64 says how to enable it."""
    path = Path(path)
    kind = kind_of_suffix(path)
    if kind != "jax-export":
        raise ValueError(f"{path}: a {kind!r} artifact is read by dpa2_torch.load_exported")
    blob, meta = read_jaxexport(path)
    if meta["int_dtype"] == "int64" and not x64_enabled():
        raise ValueError(f"{path}: a {meta['precision']} artifact with int64 indices needs "
                         f"jax_enable_x64, which is off: {X64_HINT}")
    return ExportedModel(jax.export.deserialize(bytearray(blob)), meta, path)
