"""The one model loader: every model file, recognised by its content, as numpy pytrees.

:func:`model_kind` names what a file is from its bytes (HDF5 signature, zip member names,
the keys of a JSON/YAML tree, the ``format`` of our checkpoints), the extension only
breaking ties where the content has no signature (a ``.jaxexport``). :func:`load_model`
reads every kind that holds a whole energy model into a :class:`DeepmdModel`;
:func:`load_descriptor` also reads descriptor-only files; :func:`read_training_checkpoint`
gives a ``dpa2 train`` checkpoint of either backend with its step and sampler state (what
a restart of the other backend needs). Every failure is one ``ValueError`` line naming
the file, what it is and what would read it.
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
from ..model.config import DPA2Config
from ..model.fitting import FittingConfig, fitting_spec
from ..model.params import param_spec, tree_map
from .deepmd_checkpoint import descriptor_from_state, is_deepmd_checkpoint, model_from_state
from .deepmd_files import _decode_yaml_arrays, _read_hdf5, load_deepmd
from .deepmd_model import DeepmdModel, bias_vector, load_deepmd_model
from .own_format import load

__all__ = ["JAX_CHECKPOINT_FORMAT", "KINDS", "TORCH_CHECKPOINT_FORMAT", "TrainingCheckpoint",
           "checkpoint_container", "describe_kind", "load_descriptor", "load_model",
           "model_kind", "read_training_checkpoint"]

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
_WHOLE = ("deepmd-dp", "deepmd-yaml", "deepmd-json", "deepmd-pt-checkpoint",
          "dpa2-torch-checkpoint", "dpa2-jax-checkpoint")
_HDF5 = b"\x89HDF\r\n\x1a\n"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_EXPECTED = ("expected a deepmd-kit .dp/.yaml/.json model, a deepmd-kit .pt checkpoint or a "
             "`dpa2 train` checkpoint")


class _Inspected(NamedTuple):
    kind: str
    payload: Any  # what was read to decide (a dict, the torch object, ...), or None


class TrainingCheckpoint(NamedTuple):
    """A ``dpa2 train`` checkpoint of either backend, backend-neutral.

    kind: "dpa2-torch-checkpoint" or "dpa2-jax-checkpoint"; step: steps done; model: the
    weights with their statistics; data: the batch sampler's state (or None); input: the
    training input the torch trainer stores (None for the jax one).
    """

    kind: str
    step: int
    model: DeepmdModel
    data: dict | None
    input: dict | None


# A YAML mapping's first key (``backend:``, ``model:``, ``'@class':``): the content of a
# YAML model whatever its suffix, while a structure or lcurve file never opens this way
# (and is not parsed as YAML at all, which for a large file would take seconds).
_YAML_KEY = re.compile(rb"""['"]?[@\w-]+['"]?:(\s|$)""")


def _where(path: Path) -> str:
    return str(path)


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


def _text_tree(path: Path, head: bytes) -> _Inspected:
    text = head.lstrip()
    if text.startswith(b"{"):
        try:
            tree = _decode_yaml_arrays(json.loads(path.read_text()))
        except (ValueError, UnicodeDecodeError):
            return _Inspected("unknown", None)
        return _Inspected(_classify_tree(tree, "deepmd-json"), tree)
    if path.suffix.lower() in (".yaml", ".yml") or _YAML_KEY.match(text):
        try:
            import yaml

            tree = _decode_yaml_arrays(yaml.safe_load(path.read_text()))
        except Exception:  # noqa: BLE001 - any YAML error: it is not a model file
            return _Inspected("unknown", None)
        return _Inspected(_classify_tree(tree, "deepmd-yaml"), tree)
    return _Inspected("unknown", None)


def _npz_kind(path: Path, names: list[str]) -> _Inspected:
    if "__meta__.npy" not in names:
        return _Inspected("dpa2-describe-output" if "descriptor.npy" in names else "npz", None)
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["__meta__"]))
    except (ValueError, OSError, KeyError):
        return _Inspected("npz", None)
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if checkpoint_container(fmt) == "jax":
        return _Inspected("dpa2-jax-checkpoint", meta)
    return _Inspected("dpa2-npz" if fmt == "dpa2" else "npz", meta)


def _zip_kind(path: Path, deep: bool) -> _Inspected:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return _Inspected("unknown", None)
    if any(n.endswith(".npy") for n in names) and all(n.endswith(".npy") for n in names):
        return _npz_kind(path, names)
    if "exported.bin" in names and "metadata.json" in names:  # dpa2_core.io.artifacts
        return _Inspected("jax-export", None)
    if any("aotinductor" in n for n in names):
        return _Inspected("torch-aoti-pt2", None)
    if any(n.endswith("serialized_exported_program.json") or n.endswith(".json")
           and "/models/" in n for n in names):
        return _Inspected("torch-export-pte", None)
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return _Inspected("deepmd-torchscript", None)
    if any(n.endswith("/data.pkl") for n in names):
        if not deep:
            return _Inspected("torch-pickle", None)
        try:
            obj = torch_load(path)
        except ValueError:
            return _Inspected("torch-pickle", None)
        if isinstance(obj, dict) and checkpoint_container(obj.get("format")) == "torch":
            return _Inspected("dpa2-torch-checkpoint", obj)
        if is_deepmd_checkpoint(obj):
            return _Inspected("deepmd-pt-checkpoint", obj)
        return _Inspected("torch-pickle", obj)
    return _Inspected("unknown", None)


def _hdf5_kind(path: Path) -> _Inspected:
    try:
        import h5py
    except ImportError:  # pragma: no cover - the io extra is missing: trust the signature
        return _Inspected("deepmd-dp", None)
    try:
        with h5py.File(path, "r") as f:
            if "json" not in f.attrs:
                return _Inspected("hdf5", None)
    except OSError:
        return _Inspected("damaged-hdf5", None)  # the signature, then garbage
    return _Inspected("deepmd-dp", None)


def _inspect(path: str | os.PathLike, deep: bool = True) -> _Inspected:
    path = Path(path)
    if path.is_dir():
        return _Inspected("directory", None)
    if not path.is_file():
        raise FileNotFoundError(f"{_where(path)}: no such file")
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(_HDF5):
        return _hdf5_kind(path)
    if head.startswith(_ZIP):
        return _zip_kind(path, deep)
    if head[4:8] == b"ET12" or (path.suffix == ".pte" and head[4:6] == b"ET"):
        return _Inspected("torch-export-pte", None)  # ExecuTorch flatbuffer identifier
    if path.suffix == ".jaxexport":
        return _Inspected("jax-export", None)  # a flatbuffer without a file identifier
    return _text_tree(path, head)


def model_kind(path: str | os.PathLike) -> str:
    """What the file at ``path`` is, from its content (one of :data:`KINDS`).

    ``FileNotFoundError`` when nothing is there. Reading a torch file's format needs torch;
    without it such a file is ``"torch-pickle"``.
    """
    try:
        return _inspect(path).kind
    except ImportError:
        return "torch-pickle"


def describe_kind(kind: str) -> str:
    """``"<what it is>; read by <what reads it>"`` for messages."""
    what, reader = KINDS.get(kind, KINDS["unknown"])
    return f"{what}; read by {reader}"


def _refuse(path: Path, kind: str, need: str) -> ValueError:
    what, reader = KINDS.get(kind, KINDS["unknown"])
    return ValueError(f"{_where(path)}: {what}, not {need} (read by {reader}; {_EXPECTED})")


def _configs(model: dict) -> tuple[DPA2Config, FittingConfig]:
    """Descriptor and fitting configs of a deepmd-kit input's ``model`` section."""
    desc = {k: v for k, v in model["descriptor"].items() if not str(k).startswith("_")}
    desc.setdefault("type_map", list(model["type_map"]))
    config = DPA2Config.from_dict(desc)
    fitting = FittingConfig.from_input(model.get("fitting_net", {}), config.ntypes,
                                       config.dim_out, precision=config.dtype_name)
    return config, fitting


def _fill(spec: dict, arrays: dict, key, where: str) -> dict:
    def leaf(path: tuple, spec_leaf: Any) -> np.ndarray:
        name = key(path)
        if name not in arrays:
            raise ValueError(f"{where}: {name} is missing (a damaged or foreign checkpoint)")
        a = np.asarray(arrays[name])
        if a.size != int(np.prod(spec_leaf.shape)):
            raise ValueError(f"{where}: {name} has shape {a.shape}, expected {spec_leaf.shape}")
        return a.reshape(spec_leaf.shape)

    return tree_map(leaf, spec)


def _torch_checkpoint(path: Path, obj: dict) -> TrainingCheckpoint:
    where = _where(path)
    try:
        config, fitting = _configs(obj["input"]["model"])
        state = obj["model"]
        params = _fill(param_spec(config), state, lambda p: "descriptor." + ".".join(
            map(str, p)), where)
        fparams = _fill(fitting_spec(fitting), state, lambda p: "fitting." + ".".join(
            map(str, p)), where)
        bias = bias_vector(state["out_bias"], config.ntypes)
    except KeyError as err:
        raise ValueError(f"{where}: a damaged dpa2 torch checkpoint (no {err})") from err
    model = DeepmdModel(config, params, fitting, fparams, bias)
    return TrainingCheckpoint("dpa2-torch-checkpoint", int(obj.get("step", 0)), model,
                              obj.get("data"), obj.get("input"))


def _keystr(path: tuple) -> str:
    """jax.tree_util.keystr of a dict/list path (how the jax checkpoint names leaves)."""
    return "".join(f"[{p!r}]" for p in path)


def _jax_checkpoint(path: Path, meta: dict) -> TrainingCheckpoint:
    where = _where(path)
    try:
        config = DPA2Config.from_dict(meta["descriptor"])
        fit = {**meta["fitting"], "neuron": tuple(meta["fitting"]["neuron"])}
        fitting = FittingConfig(**fit)
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if k.startswith("params")}
    except (KeyError, TypeError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{where}: a damaged dpa2 jax checkpoint ({type(err).__name__}: "
                         f"{err})") from err
    params = _fill(param_spec(config), arrays,
                   lambda p: "params" + _keystr(("descriptor", *p)), where)
    fparams = _fill(fitting_spec(fitting), arrays,
                    lambda p: "params" + _keystr(("fitting", *p)), where)
    bias = _fill({"b": np.zeros(config.ntypes)}, arrays, lambda p: "params['out_bias']", where)
    model = DeepmdModel(config, params, fitting, fparams, bias["b"].reshape(config.ntypes))
    return TrainingCheckpoint("dpa2-jax-checkpoint", int(meta.get("step", 0)), model,
                              meta.get("data"), None)


def read_training_checkpoint(path: str | os.PathLike) -> TrainingCheckpoint:
    """A ``dpa2 train`` checkpoint of either backend (torch ``.pt`` or jax ``.npz``)."""
    path = Path(path)
    kind, payload = _inspect(path)
    if kind == "dpa2-torch-checkpoint":
        return _torch_checkpoint(path, payload)
    if kind == "dpa2-jax-checkpoint":
        return _jax_checkpoint(path, payload)
    raise _refuse(path, kind, "a `dpa2 train` checkpoint")


def _deepmd_tree(path: Path, kind: str, payload: Any) -> dict:
    if kind != "deepmd-dp":
        return payload
    try:
        return _read_hdf5(path)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{_where(path)}: a damaged deepmd-kit .dp file ({type(err).__name__}:"
                         f" {str(err).splitlines()[0] if str(err) else ''})") from err


def _checked_head(path: Path, kind: str, head: str | None) -> None:
    if head is not None and kind != "deepmd-pt-checkpoint":
        raise ValueError(f"{_where(path)}: head={head!r}, but only deepmd-kit .pt "
                         "checkpoints have heads")


def _reading(path: Path, fn, *args) -> Any:
    """Call ``fn``; a ValueError/KeyError from inside names the file."""
    try:
        return fn(*args)
    except KeyError as err:
        raise ValueError(f"{_where(path)}: key {err} is missing (a damaged or foreign model "
                         "file)") from err
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{_where(path)}: {err}") from err


def load_model(path: str | os.PathLike, head: str | None = None) -> DeepmdModel:
    """The whole energy model stored at ``path``, whatever its kind (see :func:`model_kind`).

    Reads deepmd-kit ``.dp``/``.yaml``/``.json`` models, deepmd-kit ``.pt`` training
    checkpoints (``head`` picks a multi-task head, default the first) and ``dpa2 train``
    checkpoints of both backends. Any other file raises one ``ValueError`` line saying
    what the file is and what reads it (a descriptor-only file: ``dpa2 describe``; an
    exported program: the calculators).
    """
    path = Path(path)
    kind, payload = _inspect(path)
    _checked_head(path, kind, head)
    if kind in ("deepmd-dp", "deepmd-yaml", "deepmd-json"):
        return _reading(path, load_deepmd_model, _deepmd_tree(path, kind, payload))
    if kind == "deepmd-pt-checkpoint":
        return _reading(path, model_from_state, payload, head, path)
    if kind in ("dpa2-torch-checkpoint", "dpa2-jax-checkpoint"):
        return read_training_checkpoint(path).model
    raise _refuse(path, kind, "a whole energy model")


def load_descriptor(path: str | os.PathLike, head: str | None = None
                    ) -> tuple[DPA2Config, dict]:
    """(config, numpy params) of the DPA-2 descriptor in any file :func:`load_model` reads,
    and in descriptor-only files (``dpa2_core.save`` ``.npz``, a serialized deepmd-kit
    descriptor)."""
    path = Path(path)
    kind, payload = _inspect(path)
    _checked_head(path, kind, head)
    if kind == "dpa2-npz":
        return _reading(path, load, path)
    if kind in ("deepmd-dp", "deepmd-yaml", "deepmd-json", "deepmd-descriptor"):
        return _reading(path, load_deepmd, _deepmd_tree(path, kind, payload))
    if kind == "deepmd-pt-checkpoint":
        return _reading(path, descriptor_from_state, payload, head, path)
    if kind in _WHOLE:
        m = load_model(path, head)
        return m.config, m.params
    raise _refuse(path, kind, "a DPA-2 model")
