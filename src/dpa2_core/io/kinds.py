"""What a file is, from its content: every kind of model file dpa2 meets, named.

:func:`model_kind` reads the bytes (HDF5 signature, zip member names, the keys of a
JSON/YAML tree, the ``format`` of our checkpoints), the extension only breaking ties where
the content has no signature (a ``.jaxexport``); :data:`KINDS` says what each kind is and
what reads it. :mod:`.loader` reads the kinds that hold a model.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._compat import torch_load
from .deepmd_checkpoint import is_deepmd_checkpoint
from .deepmd_files import _decode_yaml_arrays

__all__ = ["JAX_CHECKPOINT_FORMAT", "KINDS", "TORCH_CHECKPOINT_FORMAT", "Inspected",
           "checkpoint_container", "describe_kind", "inspect_file", "model_kind"]

# the ``format`` tags the two trainers write into their checkpoints: the file format (a
# dpa2 training checkpoint in a torch or a numpy container), read by checkpoint_container
TORCH_CHECKPOINT_FORMAT = "dpa2-torch-checkpoint"
JAX_CHECKPOINT_FORMAT = "dpa2-jax-checkpoint"


def checkpoint_container(tag: object) -> str | None:
    """``"torch"`` or ``"jax"`` for a trainer checkpoint's ``format`` tag, None otherwise.

    0.1.0 spelled the tags with an underscore after ``dpa2`` (and the torch one without the
    ``-checkpoint`` suffix); those files are read alike.
    """
    if not isinstance(tag, str):
        return None
    words = tag.replace("_", "-").split("-")
    if words[0] != "dpa2" or len(words) not in (2, 3) or words[2:] not in ([], ["checkpoint"]):
        return None
    return words[1] if words[1] in ("torch", "jax") else None


# kind -> (what it is, what reads it); the second part ends every refusal
KINDS: dict[str, tuple[str, str]] = {
    "deepmd-dp": ("a deepmd-kit model file (HDF5)", "any --model"),
    "deepmd-yaml": ("a deepmd-kit model file (YAML)", "any --model"),
    "deepmd-json": ("a deepmd-kit model file (JSON)", "any --model"),
    "deepmd-descriptor": ("a deepmd-kit DPA-2 descriptor (no fitting net)",
                          "`dpa2 describe --model`"),
    "deepmd-input": ("a deepmd-kit training input",
                     "`dpa2 train` (or `dpa2 describe --config` for an untrained model)"),
    "deepmd-pt-checkpoint": ("a deepmd-kit PyTorch training checkpoint", "any --model"),
    "deepmd-torchscript": ("a frozen deepmd-kit TorchScript model (.pth)",
                           "deepmd-kit; convert it with `dp convert-backend FILE.pth FILE.dp` "
                           "and pass the .dp"),
    "dpa2-torch-checkpoint": ("a `dpa2 train --backend torch` checkpoint", "any --model"),
    "dpa2-jax-checkpoint": ("a `dpa2 train --backend jax` checkpoint", "any --model"),
    "dpa2-npz": ("a dpa2 descriptor file (dpa2_core.save; no fitting net)",
                 "`dpa2 describe --model` and dpa2_core.load"),
    "dpa2-describe-output": ("the output of `dpa2 describe` (descriptors, not a model)",
                             "numpy.load"),
    "torch-export-pte": ("an exported torch program (.pte)",
                         "`dpa2 eval`/`dpa2 test --model`, "
                         "the torch shim's Calculator and load_exported, or torch.export.load"),
    "torch-aoti-pt2": ("an AOTInductor package (.pt2)",
                       "`dpa2 eval`/`dpa2 test --model`, "
                       "the torch shim's Calculator and load_exported, or "
                       "torch._inductor.aoti_load_package"),
    "jax-export": ("an exported JAX program (.jaxexport)",
                   "`dpa2 eval`/`dpa2 test --model`, "
                   "the JAX shim's Calculator and load_exported, or jax.export.deserialize"),
    "npz": ("a numpy .npz archive that is no dpa2 file", "numpy.load"),
    "hdf5": ("an HDF5 file that is no deepmd-kit model", "h5py"),
    "damaged-hdf5": ("a damaged HDF5 file (the signature of a deepmd-kit .dp, then "
                     "unreadable)", "nothing: re-create or re-download it"),
    "torch-pickle": ("a torch.save file that is not a deepmd-kit PyTorch training checkpoint "
                     "nor a `dpa2 train` one", "torch.load"),
    "directory": ("a directory", "`dpa2 test --system` / `dpa2 describe` (as a structure)"),
    "unknown": ("not a model file of any kind dpa2 reads", "nothing in dpa2"),
}
_HDF5 = b"\x89HDF\r\n\x1a\n"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")


class Inspected(NamedTuple):
    """What :func:`inspect_file` found: the kind and what was read to decide it."""

    kind: str
    payload: Any  # what was read to decide (a dict, the torch object, ...), or None


# A YAML mapping's first key (``backend:``, ``model:``, ``'@class':``): the content of a
# YAML model whatever its suffix, while a structure or lcurve file never opens this way
# (and is not parsed as YAML at all, which for a large file would take seconds).
_YAML_KEY = re.compile(rb"""['"]?[@\w-]+['"]?:(\s|$)""")


def _classify_tree(tree: Any, text_kind: str) -> str:
    """The kind of a parsed JSON/YAML tree."""
    if not isinstance(tree, dict):
        return "unknown"
    if tree.get("type") == "dpa2" and "repinit_args" in tree:
        return "deepmd-descriptor"
    model = tree.get("model")
    if isinstance(model, dict) and "@variables" in model and "descriptor" in model:
        return text_kind if "fitting" in model else "deepmd-descriptor"
    if "training" in tree or (isinstance(model, dict) and "descriptor" in model):
        return "deepmd-input"
    if "descriptor" in tree and "fitting" in tree and "@variables" in tree:
        return text_kind
    return "unknown"


def _text_tree(path: Path, head: bytes) -> Inspected:
    text = head.lstrip()
    if text.startswith(b"{"):
        try:
            tree = _decode_yaml_arrays(json.loads(path.read_text()))
        except (ValueError, UnicodeDecodeError):
            return Inspected("unknown", None)
        return Inspected(_classify_tree(tree, "deepmd-json"), tree)
    if path.suffix.lower() in (".yaml", ".yml") or _YAML_KEY.match(text):
        try:
            import yaml

            tree = _decode_yaml_arrays(yaml.safe_load(path.read_text()))
        except Exception:  # noqa: BLE001 - any YAML error: it is not a model file
            return Inspected("unknown", None)
        return Inspected(_classify_tree(tree, "deepmd-yaml"), tree)
    return Inspected("unknown", None)


def _npz_kind(path: Path, names: list[str]) -> Inspected:
    if "__meta__.npy" not in names:
        return Inspected("dpa2-describe-output" if "descriptor.npy" in names else "npz", None)
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["__meta__"]))
    except (ValueError, OSError, KeyError):
        return Inspected("npz", None)
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if checkpoint_container(fmt) == "jax":
        return Inspected("dpa2-jax-checkpoint", meta)
    return Inspected("dpa2-npz" if fmt == "dpa2" else "npz", meta)


def _zip_kind(path: Path, deep: bool) -> Inspected:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return Inspected("unknown", None)
    if any(n.endswith(".npy") for n in names) and all(n.endswith(".npy") for n in names):
        return _npz_kind(path, names)
    if "exported.bin" in names and "metadata.json" in names:  # dpa2_core.io.artifacts
        return Inspected("jax-export", None)
    if any("aotinductor" in n for n in names):
        return Inspected("torch-aoti-pt2", None)
    if any(n.endswith("serialized_exported_program.json") or n.endswith(".json")
           and "/models/" in n for n in names):
        return Inspected("torch-export-pte", None)
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return Inspected("deepmd-torchscript", None)
    if any(n.endswith("/data.pkl") for n in names):
        if not deep:
            return Inspected("torch-pickle", None)
        try:
            obj = torch_load(path)
        except ValueError:
            return Inspected("torch-pickle", None)
        if isinstance(obj, dict) and checkpoint_container(obj.get("format")) == "torch":
            return Inspected("dpa2-torch-checkpoint", obj)
        if is_deepmd_checkpoint(obj):
            return Inspected("deepmd-pt-checkpoint", obj)
        return Inspected("torch-pickle", obj)
    return Inspected("unknown", None)


def _hdf5_kind(path: Path) -> Inspected:
    try:
        import h5py
    except ImportError:  # pragma: no cover - the io extra is missing: trust the signature
        return Inspected("deepmd-dp", None)
    try:
        with h5py.File(path, "r") as f:
            if "json" not in f.attrs:
                return Inspected("hdf5", None)
    except OSError:
        return Inspected("damaged-hdf5", None)  # the signature, then garbage
    return Inspected("deepmd-dp", None)


def inspect_file(path: str | os.PathLike, deep: bool = True) -> Inspected:
    """The kind of the file at ``path`` and the tree or object read to tell it (None when
    only signatures were read). ``deep=False`` leaves torch pickles unopened."""
    path = Path(path)
    if path.is_dir():
        return Inspected("directory", None)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(_HDF5):
        return _hdf5_kind(path)
    if head.startswith(_ZIP):
        return _zip_kind(path, deep)
    if head[4:8] == b"ET12" or (path.suffix == ".pte" and head[4:6] == b"ET"):
        return Inspected("torch-export-pte", None)  # ExecuTorch flatbuffer identifier
    if path.suffix == ".jaxexport":
        return Inspected("jax-export", None)  # a flatbuffer without a file identifier
    return _text_tree(path, head)


def model_kind(path: str | os.PathLike) -> str:
    """What the file at ``path`` is, from its content (one of :data:`KINDS`).

    ``FileNotFoundError`` when nothing is there. Reading a torch file's format needs torch;
    without it such a file is ``"torch-pickle"``.
    """
    try:
        return inspect_file(path).kind
    except ImportError:
        return "torch-pickle"


def describe_kind(kind: str) -> str:
    """``"<what it is>; read by <what reads it>"`` for messages."""
    what, reader = KINDS.get(kind, KINDS["unknown"])
    return f"{what}; read by {reader}"
