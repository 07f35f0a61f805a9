"""Deployable artifacts: the metadata contract and the container rules shared by both shims.

An exported model (``dpa2_torch.export_model`` -> ``.pte`` / ``.pt2``,
``dpa2_jax.export_model`` -> ``.jaxexport``) is the whole energy model's *lower* call,
loadable with the framework alone (no dpa2): inputs coord_ext (nf, nall, 3) Å,
atype_ext (nf, nall) int (-1 = padding), nlist (nf, nloc, nnei) int (-1 padded, sorted by
distance, r <= rcut), mapping (nf, nall) int (extended -> local index); outputs energy
(nf, 1) eV, atom_energy (nf, nloc, 1) eV, force_ext (nf, nall, 3) = -dE/dcoord_ext eV/Å
(a host sums ghost rows onto their local atom through ``mapping``), virial (nf, 9) eV =
-sum_a dE/dx_a (x) x_a over extended atoms, row-major 3x3 (deepmd-kit's).

The metadata (:func:`build_metadata`) is JSON stored beside the program: in a ``.pte`` as
``extra_files["metadata.json"]`` of ``torch.export.save``, in a ``.pt2`` as the AOTInductor
package metadata key ``metadata.json``, and in a ``.jaxexport`` (a zip archive) as the member
``metadata.json`` beside ``exported.bin`` (``jax.export.Exported.serialize()``).
Pure Python: no torch or jax here.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from .files import atomic_write

__all__ = [
    "ARTIFACT_KINDS", "LoadedArtifact", "artifact_kind", "build_metadata",
    "check_export_precision", "check_kind",
    "EXPORT_PRECISIONS", "FORMAT", "FORMAT_VERSION", "INPUTS", "kind_of_suffix",
    "OUTPUTS", "parse_metadata", "read_jaxexport", "write_jaxexport",
]

FORMAT = "dpa2-export"
FORMAT_VERSION = 1
# output suffix -> kind (the names of dpa2_core.io.model_kind)
ARTIFACT_KINDS = {".pte": "torch-export-pte", ".pt2": "torch-aoti-pt2",
                  ".jaxexport": "jax-export"}
_READERS = {"torch-export-pte": "the torch shim's load_exported (or torch.export.load)",
            "torch-aoti-pt2": "the torch shim's load_exported (or "
                              "torch._inductor.aoti_load_package)",
            "jax-export": "the JAX shim's load_exported (or jax.export.deserialize)"}
EXPORT_PRECISIONS = ("float64", "float32")
# (name, symbolic shape, dtype class, meaning): the positional order of the exported call
INPUTS = (
    ("coord_ext", ("nf", "nall", 3), "float", "extended coordinates, Å, local atoms first"),
    ("atype_ext", ("nf", "nall"), "int", "type index of each extended atom, -1 = padding"),
    ("nlist", ("nf", "nloc", "nnei"), "int",
     "neighbor indices into the extended atoms, r <= rcut, sorted by distance, -1 padded"),
    ("mapping", ("nf", "nall"), "int", "local index of each extended atom"),
)
OUTPUTS = (
    ("energy", ("nf", 1), "total energy, eV"),
    ("atom_energy", ("nf", "nloc", 1), "per-atom energy, eV"),
    ("force_ext", ("nf", "nall", 3), "-dE/dcoord_ext, eV/Å; sum ghost rows onto mapping"),
    ("virial", ("nf", 9), "-sum_a dE/dx_a (x) x_a over extended atoms, eV, row-major 3x3"),
)
_JAX_PROGRAM, _JAX_METADATA = "exported.bin", "metadata.json"


def kind_of_suffix(path: str | os.PathLike) -> str:
    """The artifact kind an output path asks for (``.pte``/``.pt2``/``.jaxexport``)."""
    suffix = Path(path).suffix
    if suffix not in ARTIFACT_KINDS:
        raise ValueError(f"path={str(path)!r}: unknown artifact suffix {suffix!r}; use one of "
                         f"{sorted(ARTIFACT_KINDS)}")
    return ARTIFACT_KINDS[suffix]


def check_export_precision(dtype: Any, model_precision: str) -> str:
    """The precision of an export: ``dtype`` (``"float64"``/``"float32"``, a numpy, torch
    or jax dtype, or None for the model's own) checked against what an artifact carries."""
    if dtype is None:
        name, what = model_precision, "precision"
    else:
        name, what = str(getattr(dtype, "name", dtype)).removeprefix("torch."), "dtype"
    if name not in EXPORT_PRECISIONS:
        raise ValueError(f"{what}={name!r}: an exported model carries float64 or float32 only; "
                         "pass dtype='float32' or dtype='float64'")
    return name


def build_metadata(config: Any, kind: str, precision: str, int_dtype: str,
                   framework: dict[str, str]) -> dict:
    """The metadata dict of an artifact of ``config`` (a :class:`DPA2Config`).

    Keys: format, version, kind, type_map, ntypes, rcut, nnei (= sel, the last axis of
    nlist), sel, precision (dtype of coord_ext and of every output), int_dtype (of
    atype_ext, nlist, mapping), inputs, outputs (the call contract, positional order),
    nlist (how a host must build it), framework (versions that wrote it), dpa2_version.
    """
    from .. import __version__

    if kind not in _READERS:
        raise ValueError(f"kind={kind!r}: one of {sorted(_READERS)}")
    if config.type_map is None:
        raise ValueError("type_map=None: an exported model must name its types (hosts map "
                         "elements through it); set the descriptor's type_map")
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "kind": kind,
        "type_map": list(config.type_map), "ntypes": int(config.ntypes),
        "rcut": float(config.rcut), "nnei": int(config.nsel), "sel": [int(config.nsel)],
        "mixed_types": True, "precision": precision, "int_dtype": int_dtype,
        "inputs": [{"name": n, "shape": list(s), "dtype": precision if c == "float"
                    else int_dtype, "doc": d} for n, s, c, d in INPUTS],
        "outputs": [{"name": n, "shape": list(s), "dtype": precision, "doc": d}
                    for n, s, d in OUTPUTS],
        "output_form": "dict" if kind != "jax-export" else "dict (jax pytree)",
        "nlist": {"cutoff": float(config.rcut), "nnei": int(config.nsel), "sorted": True,
                  "padding": -1, "mixed_types": True, "self_excluded": True},
        "dynamic": ["nf", "nall", "nloc"],
        "units": {"length": "angstrom", "energy": "eV", "force": "eV/angstrom"},
        "framework": dict(framework), "dpa2_version": __version__,
    }


def parse_metadata(text: str | bytes | None, path: str | os.PathLike, kind: str) -> dict:
    """Decode and check an artifact's metadata: right format, version and kind, else a
    one-line ``ValueError`` naming the file."""
    where = f"{os.fspath(path)!s}"
    if not text:
        raise ValueError(f"{where}: no metadata.json; not an artifact written by dpa2 "
                         f"(expected a {kind} from dpa2 freeze)")
    try:
        meta = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: metadata.json is not JSON ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{where}: metadata format {got!r} is not {FORMAT!r}; not an "
                         "artifact written by dpa2")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{where}: dpa2 export format version {meta.get('version')!r}; this "
                         f"dpa2 reads version {FORMAT_VERSION} (re-export it with dpa2 freeze)")
    if meta.get("kind") != kind:
        raise ValueError(f"{where}: a {meta.get('kind')!r} artifact, not {kind!r}; read it "
                         f"with {_READERS.get(meta.get('kind'), 'its own loader')}")
    return meta


def artifact_kind(path: str | os.PathLike) -> str | None:
    """``"torch-export-pte"``, ``"torch-aoti-pt2"`` or ``"jax-export"`` from the file's
    content (zip member names), or None for anything else."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if _JAX_PROGRAM in names and _JAX_METADATA in names:
        return "jax-export"
    if any("/data/aotinductor/" in n for n in names):
        return "torch-aoti-pt2"
    if any(n.endswith("/models/model.json") for n in names):
        return "torch-export-pte"
    return None


def check_kind(path: str | os.PathLike, kind: str) -> None:
    """Raise naming the file when it is not an artifact of ``kind`` (missing, another
    artifact kind, or not an artifact at all)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    found = artifact_kind(p)
    if found == kind:
        return
    if found is not None:
        raise ValueError(f"{p}: a {found!r} artifact, not {kind!r}; read it with "
                         f"{_READERS[found]}")
    with open(p, "rb") as f:
        head = f.read(8)
    what = "an HDF5 file (a deepmd-kit .dp model?)" if head.startswith(b"\x89HDF") else \
        "a zip archive of another kind (a torch checkpoint or .npz?)" \
        if head.startswith(b"PK") else "not a zip archive"
    raise ValueError(f"{p}: not a {kind!r} artifact ({what}); whole-model files are read "
                     "by load_model, artifacts are written by dpa2 freeze")


def write_jaxexport(path: str | os.PathLike, program: bytes, metadata: dict) -> Path:
    """A ``.jaxexport``: a zip of ``exported.bin`` (serialized program) + ``metadata.json``."""

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr(_JAX_METADATA, json.dumps(metadata, indent=1))
            z.writestr(_JAX_PROGRAM, bytes(program))

    return atomic_write(path, write)


def read_jaxexport(path: str | os.PathLike) -> tuple[bytes, dict]:
    """(serialized program, checked metadata) of a ``.jaxexport``."""
    check_kind(path, "jax-export")
    with zipfile.ZipFile(path) as z:
        meta = parse_metadata(z.read(_JAX_METADATA), path, "jax-export")
        return z.read(_JAX_PROGRAM), meta


class LoadedArtifact:
    """What every loaded artifact shares, whichever framework runs it: the stored
    ``metadata`` (the JSON of :func:`build_metadata`), its ``path``, the fields a host
    needs to build inputs, and the input check that names the file.
    """

    def __init__(self, metadata: dict, path: str | os.PathLike) -> None:
        self.metadata = metadata
        self.path = Path(path)

    @property
    def type_map(self) -> list[str]:
        return list(self.metadata["type_map"])

    @property
    def rcut(self) -> float:
        return float(self.metadata["rcut"])

    @property
    def nnei(self) -> int:
        return int(self.metadata["nnei"])

    @property
    def precision(self) -> str:
        return str(self.metadata["precision"])

    def check_nlist(self, shape: tuple[int, ...]) -> None:
        """``nlist`` must be (nf, nloc, nnei) with the model's nnei."""
        if len(shape) != 3 or shape[-1] != self.nnei:
            raise ValueError(f"nlist: shape {tuple(shape)}; {self.path.name} takes "
                             f"(nf, nloc, {self.nnei}) (nnei of the model)")
