"""The ``dpa2`` command: ``describe`` (numpy core), ``train`` and ``test`` (backend shims),
``md`` (:mod:`dpa2_cli.md`) and ``freeze`` (:mod:`dpa2_cli.freeze`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dpa2_core.model.config import DPA2Config
from dpa2_core.model.params import init_params
from dpa2_core.progress import progress_iter

__all__ = ["build_parser", "cmd_describe", "cmd_test", "cmd_train", "main", "OUTPUT_FIELDS"]

OUTPUT_FIELDS = ("descriptor", "rot_mat", "g2", "h2", "sw")


def _load_model(args: argparse.Namespace) -> tuple[DPA2Config, dict, str]:
    """(config, params, description) from --model, --config or the medium preset."""
    from dpa2_core import load, load_deepmd
    from dpa2_core.presets import preset

    if args.model:
        path = Path(args.model)
        config, params = load(path) if path.suffix == ".npz" else load_deepmd(path)
        return config, params, f"model {path}"
    if args.config:
        d = json.loads(Path(args.config).read_text())
        model = d.get("model", d)
        desc = dict(model.get("descriptor", model))
        if "type_map" in model and "type_map" not in desc:
            desc["type_map"] = model["type_map"]
        config = DPA2Config.from_dict(desc)
        return config, init_params(config, args.seed), f"config {args.config} (seed {args.seed})"
    config = preset("medium")
    return config, init_params(config, args.seed), f"medium preset (seed {args.seed})"


def _frames(args: argparse.Namespace, config: DPA2Config) -> tuple[list, str]:
    """([Frame, ...], description) of STRUCTURE, or the bundled water frame."""
    from dpa2_core.io.structures import Frame, read_frames

    if args.structure is None:
        from dpa2_core.presets import water_frame

        if args.frames is not None:
            raise ValueError(f"--frames={args.frames!r}: needs a STRUCTURE (the bundled "
                             "default is one frame)")

        coord, atype, box, symbols = water_frame()
        if config.type_map is not None:
            missing = [s for s in symbols if s not in config.type_map]
            if missing:
                raise ValueError(f"type_map={list(config.type_map)}: lacks {missing} of the "
                                 "bundled water frame; pass a STRUCTURE")
            atype = np.asarray([config.type_map.index(symbols[t]) for t in atype])
        return [Frame(coord, atype, box)], "bundled water frame (192 atoms, periodic)"
    if config.type_map is None:
        raise SystemExit("error: the model has no type_map; cannot map element symbols")
    frames = read_frames(args.structure, list(config.type_map), args.frames)
    return frames, f"{args.structure} ({len(frames)} frame(s))"


def _describe_frame(config, params, frame) -> tuple[dict, int, int]:
    from dpa2_core.model.dpa2 import descriptor
    from dpa2_core.neighbors.builder import build_neighbor_list

    coord_ext, atype_ext, mapping, nlist = build_neighbor_list(
        frame.coord[None], frame.atype[None], config,
        None if frame.box is None else frame.box[None], pbc=frame.pbc)
    out = descriptor(params, config, coord_ext, atype_ext, nlist, mapping)
    result = {k: np.asarray(v)[0] for k, v in zip(OUTPUT_FIELDS, out, strict=True)}
    n_rep = int((np.asarray(out.sw)[0] > 0).sum())
    return result, int((nlist >= 0).sum()), n_rep


def _stack(results: list[dict], inputs: list) -> dict:
    """One array per field when every frame has the same atom count, else per-frame keys."""
    same = len({len(f[1]) for f in inputs}) == 1
    out: dict[str, Any] = {}
    fields = [("coord", 0), ("atype", 1), ("box", 2), ("pbc", 3)]
    if same:
        out.update({k: np.stack([r[k] for r in results]) for k in OUTPUT_FIELDS})
        out.update({k: np.stack([f[i] for f in inputs]) for k, i in fields
                    if all(f[i] is not None for f in inputs)})
        return out
    for n, (r, f) in enumerate(zip(results, inputs, strict=True)):
        out.update({f"frame{n}/{k}": v for k, v in r.items()})
        out.update({f"frame{n}/{k}": f[i] for k, i in fields if f[i] is not None})
    return out


def cmd_describe(args: argparse.Namespace) -> int:
    config, params, source = _load_model(args)
    frames, what = _frames(args, config)
    start = time.perf_counter()
    results, n_full, n_rep, n_atoms = [], 0, 0, 0
    for frame in progress_iter(frames, len(frames) > 1 and not args.quiet, desc="frames",
                               unit="frame"):
        r, nf, nr = _describe_frame(config, params, frame)
        results.append(r)
        n_full, n_rep, n_atoms = n_full + nf, n_rep + nr, n_atoms + len(frame.atype)
    elapsed = time.perf_counter() - start
    data = _stack(results, frames)
    np.savez(args.output, **data)
    print(f"dpa2 describe: {source}; structure: {what}")
    print(f"  atoms: {n_atoms} in {len(frames)} frame(s); neighbors per atom: "
          f"{n_full / max(n_atoms, 1):.1f} within {config.rcut} Å (repinit), "
          f"{n_rep / max(n_atoms, 1):.1f} within {config.repformer.rcut} Å (repformer)")
    for k in OUTPUT_FIELDS:
        shape = data[k].shape if k in data else "per frame"
        print(f"  {k:<10} {shape}")
    print(f"  time: {elapsed:.2f} s; written to {args.output}")
    return 0


def _backend(name: str):
    import importlib

    module = {"torch": "dpa2_torch.training.trainer", "jax": "dpa2_jax.training.trainer"}[name]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise SystemExit(f"error: backend {name!r} is not available ({err}); "
                         f"pip install 'dpa2[{name}]'") from err


def cmd_train(args: argparse.Namespace) -> int:
    return _backend(args.backend).cli_train(args) or 0


def cmd_test(args: argparse.Namespace) -> int:
    return _backend(args.backend).cli_test(args) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dpa2", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("describe", help="compute the descriptor of every atom")
    d.add_argument("structure", nargs="?", help="structure file (any ase.io format) or a "
                   "deepmd-format system directory; default: a bundled water frame")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--model", help="deepmd-kit model (.dp/.yaml/.json) or a dpa2 .npz")
    src.add_argument("--config", help="JSON: a deepmd-kit input or its descriptor section")
    d.add_argument("--frames", help="frame selection, python slice syntax (e.g. 0:10:2)")
    d.add_argument("--seed", type=int, default=0, help="parameter seed without --model")
    d.add_argument("-o", "--output", default="descriptor.npz", help="output .npz")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_describe)
    t = sub.add_parser("train", help="train an energy model from a deepmd-kit input file")
    t.add_argument("input", help="deepmd-kit training input (JSON)")
    t.add_argument("--backend", choices=("torch", "jax"), default="torch")
    t.add_argument("--output", default=".", help="directory for checkpoints and lcurve.out")
    t.add_argument("--steps", type=int, default=None, help="override training.numb_steps")
    t.add_argument("--restart", default=None, help="checkpoint to resume from")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("test", help="energy/force RMSE of a trained model on data systems")
    e.add_argument("--model", required=True, help="checkpoint or model file")
    e.add_argument("--system", nargs="+", required=True, help="deepmd-format system(s)")
    e.add_argument("--numb-test", dest="numb_test", type=int, default=None)
    e.add_argument("--backend", choices=("torch",), default="torch")
    e.set_defaults(func=cmd_test)
    from . import freeze, md  # one module per command beyond these: add_parser + run

    md.add_parser(sub)
    freeze.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

