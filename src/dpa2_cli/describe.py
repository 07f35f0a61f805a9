"""``dpa2 describe``: the descriptor of every atom (the numpy core, or torch on a GPU)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from dpa2_core.io.loader import load_descriptor
from dpa2_core.io.structures import Frame
from dpa2_core.model.config import DPA2Config
from dpa2_core.model.params import init_params
from dpa2_core.progress import progress_iter

from .inputs import element_hint, output_path, read_structure
from .models import backend_module
from .output import save_npz

__all__ = ["OUTPUT_FIELDS", "cmd_describe", "load_descriptor_model"]

OUTPUT_FIELDS = ("descriptor", "rot_mat", "g2", "h2", "sw")
UNTRAINED = "untrained: random parameters, the numbers carry no physics"


def _config_file(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    try:
        d = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"--config {path}: not JSON ({err})") from err
    if not isinstance(d, dict):
        raise ValueError(f"--config {path}: expected a JSON object")
    return d


def load_descriptor_model(args: argparse.Namespace) -> tuple[DPA2Config, dict, str]:
    """(config, params, description) from --model, --config or the medium preset."""
    from dpa2_core.presets import preset

    if args.model:
        config, params = load_descriptor(args.model, getattr(args, "head", None))
        return config, params, f"model {args.model}"
    if args.config:
        d = _config_file(Path(args.config))
        model = d.get("model", d)
        desc = {k: v for k, v in dict(model.get("descriptor", model)).items()
                if not str(k).startswith("_")}
        if "type_map" in model and "type_map" not in desc:
            desc["type_map"] = model["type_map"]
        try:
            config = DPA2Config.from_dict(desc)
        except ValueError as err:
            raise ValueError(f"--config {args.config}: {err}") from err
        return config, init_params(config, args.seed), \
            f"config {args.config} ({UNTRAINED}, seed {args.seed})"
    config = preset("medium")
    return config, init_params(config, args.seed), \
        f"default medium preset, type_map {list(config.type_map)} ({UNTRAINED}, seed {args.seed})"


def _frames(args: argparse.Namespace, config: DPA2Config, source: str) -> tuple[list, str]:
    """([Frame, ...], description) of STRUCTURE, or the bundled water frame."""
    if args.structure is None:
        from dpa2_core.presets import water_frame

        if args.frames is not None:
            raise ValueError(f"--frames={args.frames!r}: needs a STRUCTURE (the bundled "
                             "default is one frame)")
        coord, atype, box, symbols = water_frame()
        if config.type_map is not None:
            missing = [s for s in symbols if s not in config.type_map]
            if missing:
                raise ValueError(f"bundled water frame: elements {missing} are not in the "
                                 f"model's type_map; "
                                 f"{element_hint(missing, config.type_map, source)}")
            atype = np.asarray([config.type_map.index(symbols[t]) for t in atype])
        return [Frame(coord, atype, box)], "bundled water frame (192 atoms, periodic)"
    if config.type_map is None:
        raise ValueError(f"{source}: the model has no type_map, so element symbols cannot be "
                         "mapped to types; pass a --config with model.type_map")
    frames = read_structure(args.structure, list(config.type_map), args.frames, source)
    return frames, f"{args.structure} ({len(frames)} frame(s))"


def _on_device(device: str) -> Any:
    """numpy arrays -> the array type the descriptor runs on (numpy on cpu, torch on cuda)."""
    if device == "cpu":
        return np.asarray
    torch = backend_module("torch", "torch")
    if not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device (use --device cpu)")
    return lambda x: torch.as_tensor(np.asarray(x), device="cuda")


def _describe_frame(config, params, frame, put) -> tuple[dict, int, int]:
    from dpa2_core.array_api import to_numpy
    from dpa2_core.model.dpa2 import descriptor
    from dpa2_core.model.env_mat import geometry, pad_nlist, sub_list
    from dpa2_core.model.params import tree_map
    from dpa2_core.neighbors.builder import build_neighbor_list

    coord_ext, atype_ext, mapping, nlist = build_neighbor_list(
        frame.coord[None], frame.atype[None], config,
        None if frame.box is None else frame.box[None], pbc=frame.pbc)
    p = params if put is np.asarray else tree_map(lambda _, x: put(x), params)
    out = descriptor(p, config, *(put(x) for x in (coord_ext, atype_ext, nlist, mapping)))
    result = {k: to_numpy(v)[0] for k, v in zip(OUTPUT_FIELDS, out, strict=True)}
    # every g2/h2/sw slot names its neighbor: the repformer's list (the core's rule:
    # sub_list of the sorted repinit list), its index into the extended atoms and the local
    # atom that ghost is an image of (-1: empty slot)
    padded = pad_nlist(np, np.asarray(nlist), config.nsel)
    geo = geometry(np, np.asarray(coord_ext, dtype=np.float64), padded)
    rf = config.repformer
    rf_list = sub_list(np, padded, geo.r2, rf.rcut, rf.nsel)[0]
    mapping = np.asarray(mapping)[0]
    result["nlist"] = padded[0]
    result["nlist_repformer"] = rf_list
    result["mapping"] = mapping
    result["neighbor"] = np.where(rf_list >= 0, mapping[np.maximum(rf_list, 0)], -1)
    nlist = padded[0]
    n_rep = int((result["sw"] > 0).sum())
    return result, int((nlist >= 0).sum()), n_rep


def _pad(arrays: list[np.ndarray], value: int) -> np.ndarray:
    """Stack 1-d arrays of different lengths (mapping: nall varies per frame), padded."""
    n = max(a.shape[0] for a in arrays)
    return np.stack([np.pad(a, (0, n - a.shape[0]), constant_values=value) for a in arrays])


def _stack(results: list[dict], inputs: list, type_map) -> dict:
    """One array per field when every frame has the same atom count, else per-frame keys."""
    same = len({len(f[1]) for f in inputs}) == 1
    out: dict[str, Any] = {}
    if type_map is not None:
        out["type_map"] = np.asarray(list(type_map))
    fields = [("coord", 0), ("atype", 1), ("box", 2), ("pbc", 3)]
    keys = (*OUTPUT_FIELDS, "nlist", "nlist_repformer", "neighbor")
    if same:
        out.update({k: np.stack([r[k] for r in results]) for k in keys})
        out["mapping"] = _pad([r["mapping"] for r in results], -1)
        out.update({k: np.stack([f[i] for f in inputs]) for k, i in fields
                    if all(f[i] is not None for f in inputs)})
        return out
    for n, (r, f) in enumerate(zip(results, inputs, strict=True)):
        out.update({f"frame{n}/{k}": v for k, v in r.items()})
        out.update({f"frame{n}/{k}": f[i] for k, i in fields if f[i] is not None})
    return out


def cmd_describe(args: argparse.Namespace) -> int:
    output = output_path(args.output, (".npz",))
    config, params, source = load_descriptor_model(args)
    frames, what = _frames(args, config, args.model or args.config or "the default model")
    put = _on_device(args.device)
    start = time.perf_counter()
    results, n_full, n_rep, n_atoms = [], 0, 0, 0
    for frame in progress_iter(frames, len(frames) > 1 and not args.quiet, desc="frames",
                               unit="frame"):
        r, nf, nr = _describe_frame(config, params, frame, put)
        results.append(r)
        n_full, n_rep, n_atoms = n_full + nf, n_rep + nr, n_atoms + len(frame.atype)
    elapsed = time.perf_counter() - start
    data = _stack(results, frames, config.type_map)
    save_npz(output, data)
    print(f"dpa2 describe: {source}; structure: {what}")
    print(f"  atoms: {n_atoms} in {len(frames)} frame(s); neighbors per atom: "
          f"{n_full / max(n_atoms, 1):.1f} within {config.rcut} Å (repinit), "
          f"{n_rep / max(n_atoms, 1):.1f} within {config.repformer.rcut} Å (repformer)")
    for k in (*OUTPUT_FIELDS, "nlist", "nlist_repformer", "neighbor", "mapping"):
        shape = data[k].shape if k in data else "per frame"
        print(f"  {k:<15} {shape}")
    print(f"  time: {elapsed:.2f} s; written to {output}")
    return 0
