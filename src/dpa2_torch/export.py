"""Deployable torch artifacts of a whole energy model: ``.pte`` (torch.export) and ``.pt2``
(AOTInductor), loadable with torch alone.

The exported call is the lower interface of :mod:`dpa2_core.io.artifacts`:
``(coord_ext, atype_ext, nlist, mapping) -> {"energy", "atom_energy", "force_ext",
"virial"}``, nf, nall and nloc dynamic, nnei the model's. Forces are in the artifact: the
energy's backward is traced with ``make_fx`` (``torch.autograd.grad`` decomposed into aten
ops), and that graph is what ``torch.export`` exports, so a host needs no autograd.

Size-oblivious tracing (``backed_size_oblivious``) keeps the trace from specialising on
the sample's ``nall != nloc`` (a slice ``coord_ext[:, :nloc]`` is non-contiguous only then):
one program serves periodic systems and clusters without ghosts alike.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpa2_core.io.artifacts import (
    LoadedArtifact,
    build_metadata,
    check_export_precision,
    check_kind,
    kind_of_suffix,
    parse_metadata,
)
from dpa2_core.io.files import atomic_write
from dpa2_core.model.outputs import LOWER_OUTPUTS, lower_outputs

from .model import EnergyModel, load_model

__all__ = ["ExportedModel", "export_model", "load_exported", "lower_forward", "sample_inputs"]

_TORCH_KINDS = ("torch-export-pte", "torch-aoti-pt2")


# ------------------------------------------------------------------ the exported call
def lower_forward(model: EnergyModel, coord_ext: torch.Tensor, atype_ext: torch.Tensor,
                  nlist: torch.Tensor, mapping: torch.Tensor) -> dict[str, torch.Tensor]:
    """The eager call an artifact reproduces: energy (nf, 1), atom_energy (nf, nloc, 1),
    force_ext (nf, nall, 3) = -dE/dcoord_ext and virial (nf, 9) of an extended system
    (coord_ext (nf, nall, 3) Å, atype_ext/mapping (nf, nall), nlist (nf, nloc, nnei))."""
    with torch.enable_grad():
        x = coord_ext.detach().requires_grad_(True)
        atom_e = model.atom_energy_lower(x, atype_ext, nlist, mapping)
        (grad,) = torch.autograd.grad(atom_e.sum(), x)
    return lower_outputs(atom_e.detach(), grad, x.detach())


def sample_inputs(config: Any, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    """A two-frame periodic sample (nf = 2, nall > nloc > 1, every type present) for the
    trace; its sizes differ from each other and from nnei and 3, so that symbolic tracing
    gives each dynamic axis its own symbol."""
    from dpa2_core.neighbors.builder import build_neighbor_list

    rng = np.random.default_rng(7)
    for nloc in (7, 11, 13, 17):
        if nloc != config.nsel:
            break
    side = 4.0 + 0.5 * nloc ** (1 / 3)
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    coord = (grid[:nloc] + 0.1 * rng.uniform(-1, 1, (nloc, 3))) * (side / 3)
    coord = np.stack([coord, coord + 0.05 * rng.uniform(-1, 1, (nloc, 3))])
    atype = np.tile(np.arange(nloc) % config.ntypes, (2, 1))
    box = np.tile(np.eye(3) * side, (2, 1, 1))
    coord_ext, atype_ext, mapping, nlist = build_neighbor_list(coord, atype, config, box)
    sizes = {2, nloc, coord_ext.shape[1], 3, config.nsel}
    if len(sizes) != 5:  # pragma: no cover - depends on the cutoff only
        raise RuntimeError(f"export sample: sizes collide ({sorted(sizes)})")
    return (torch.as_tensor(coord_ext, dtype=dtype), torch.as_tensor(atype_ext),
            torch.as_tensor(nlist), torch.as_tensor(mapping))


def _prepare(model: EnergyModel, precision: str) -> EnergyModel:
    """A frozen CPU copy in ``precision`` (the caller's model is left untouched)."""
    frozen = copy.deepcopy(model).to(device="cpu", dtype=getattr(torch, precision)).eval()
    frozen.compile_forces(off=True)
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


def _trace(model: EnergyModel, sample: tuple[torch.Tensor, ...]):
    """make_fx (forward + traced backward) then torch.export with dynamic nf/nall/nloc."""
    from torch.export import Dim
    from torch.fx.experimental import _config as fx_config
    from torch.fx.experimental.proxy_tensor import make_fx

    def call(coord_ext, atype_ext, nlist, mapping):
        return lower_forward(model, coord_ext, atype_ext, nlist, mapping)

    nf, nall, nloc = Dim("nf", min=1), Dim("nall", min=1), Dim("nloc", min=1)
    shapes = ({0: nf, 1: nall}, {0: nf, 1: nall}, {0: nf, 1: nloc}, {0: nf, 1: nall})
    with fx_config.patch(backed_size_oblivious=True):
        graph = make_fx(call, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*sample)
        return torch.export.export(graph, sample, dynamic_shapes=shapes, strict=False,
                                   prefer_deferred_runtime_asserts_over_guards=True)


def _check_program(program: Any, model: EnergyModel, sample: tuple, what: str) -> None:
    """The exported program gives the eager numbers on the trace sample, to the rounding
    of the precision (relative to each output's largest entry: the traced and the eager
    path may sum in another order, which in float32 moves small entries by ~1e-7)."""
    ref = lower_forward(model, *sample)
    out = program(*sample)
    tol = 1e-10 if ref["energy"].dtype == torch.float64 else 1e-5
    for key in LOWER_OUTPUTS:
        diff, scale = (out[key] - ref[key]).abs().max(), ref[key].abs().max()
        if not float(diff) <= tol * max(float(scale), 1e-300):
            raise RuntimeError(f"export: the {what} program's {key} differs from the eager "
                               f"model on the trace sample (max |diff| {float(diff):.3g}, "
                               f"max |value| {float(scale):.3g})")


def export_model(model: Any, path: str | os.PathLike, dtype: Any = None, *,
                 head: str | None = None, inductor_configs: dict | None = None) -> dict:
    """Write a deployable artifact of a whole energy model; the suffix picks the kind.

    ``.pte``: ``torch.export.save`` of the program, metadata in
    ``extra_files["metadata.json"]``; load with ``torch.export.load(path,
    extra_files={"metadata.json": ""}).module()``. ``.pt2``: AOTInductor package
    (``torch._inductor.aoti_compile_and_package``; minutes of C++ compile), metadata key
    ``metadata.json``; load with ``torch._inductor.aoti_load_package(path)``.

    model: an :class:`EnergyModel`, a ``DeepmdModel`` or a model file (``head`` picks a
    multi-task head). dtype: ``"float64"``/``"float32"`` (default: the model's); the
    artifact takes coord_ext in it and int64 indices. Returns the metadata written
    (:func:`dpa2_core.io.artifacts.build_metadata`, plus ``export_seconds``).
    """
    kind = kind_of_suffix(path)
    if kind not in _TORCH_KINDS:
        raise ValueError(f"path={str(path)!r}: dpa2_torch writes .pte or .pt2 (a .jaxexport "
                         "comes from dpa2_jax.export_model)")
    energy_model = load_model(model, head)
    precision = check_export_precision(dtype, energy_model.config.dtype_name)
    meta = build_metadata(energy_model.config, kind, precision, "int64",
                          {"torch": torch.__version__})
    start = time.perf_counter()
    frozen = _prepare(energy_model, precision)
    sample = sample_inputs(frozen.config, getattr(torch, precision))
    program = _trace(frozen, sample)
    _check_program(program.module(), frozen, sample, "exported")
    text = json.dumps(meta, indent=1)
    if kind == "torch-export-pte":
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: torch.export.save wants .pt2 names
                torch.export.save(program, f, extra_files={"metadata.json": text})
    else:
        from torch._inductor import aoti_compile_and_package

        configs = {"aot_inductor.metadata": {"metadata.json": text},
                   **(inductor_configs or {})}

        def write(tmp: Path) -> None:
            aoti_compile_and_package(program, package_path=str(tmp), inductor_configs=configs)

    atomic_write(path, write)
    return {**meta, "export_seconds": time.perf_counter() - start}


# ------------------------------------------------------------------ loading
class ExportedModel(LoadedArtifact):
    """A loaded ``.pte``/``.pt2``: ``model(coord_ext, atype_ext, nlist, mapping)`` takes
    numpy or torch arrays and returns the four outputs as float64 numpy arrays (the
    calculators' ``_evaluate`` signature); ``metadata`` is the stored JSON.
    """

    def __init__(self, program: Any, metadata: dict, path: Path) -> None:
        super().__init__(metadata, path)
        self.program = program
        self.dtype = getattr(torch, metadata["precision"])

    def __call__(self, coord_ext: Any, atype_ext: Any, nlist: Any, mapping: Any
                 ) -> dict[str, np.ndarray]:
        nlist = torch.as_tensor(np.asarray(nlist)).to(torch.int64)
        self.check_nlist(tuple(nlist.shape))
        args = (torch.as_tensor(np.asarray(coord_ext)).to(self.dtype).contiguous(),
                torch.as_tensor(np.asarray(atype_ext)).to(torch.int64).contiguous(),
                nlist.contiguous(), torch.as_tensor(np.asarray(mapping)).to(torch.int64))
        out = self.program(*args)
        return {k: out[k].detach().cpu().double().numpy() for k in LOWER_OUTPUTS}


def _pte_metadata(path: Path) -> bytes | None:
    """The ``extra/metadata.json`` member of a ``torch.export.save`` archive, if any."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith("/extra/metadata.json")]
        return z.read(names[0]) if names else None


def load_exported(path: str | os.PathLike) -> ExportedModel:
    """Load a ``.pte`` or ``.pt2`` written by :func:`export_model` (kind read from the
    content); a file of another kind or format version raises naming it."""
    path = Path(path)
    kind = kind_of_suffix(path)
    if kind not in _TORCH_KINDS:
        raise ValueError(f"{path}: a {kind!r} artifact is read by dpa2_jax.load_exported")
    check_kind(path, kind)
    if kind == "torch-export-pte":
        # the metadata first (a cheap zip read), so a wrong version fails before the
        # seconds-long deserialization of the program
        parse_metadata(_pte_metadata(path), path, kind)
        extra = {"metadata.json": ""}
        with open(path, "rb") as f:
            program = torch.export.load(f, extra_files=extra).module()
        meta = parse_metadata(extra["metadata.json"], path, kind)
    else:
        from torch._inductor import aoti_load_package

        program = aoti_load_package(str(path))
        meta = parse_metadata(program.get_metadata().get("metadata.json"), path, kind)
    return ExportedModel(program, meta, path)
