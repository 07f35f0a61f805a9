"""``dpa2 eval``: energy, per-atom energies, forces and stress of every frame of a file."""

from __future__ import annotations

import argparse
import time

import numpy as np

from dpa2_core.progress import progress_iter

from .inputs import output_path, read_structure
from .models import Predictor, open_model
from .output import atomic_file, save_npz

__all__ = ["EVAL_SUFFIXES", "cmd_eval", "evaluate_frames", "summary"]

EVAL_SUFFIXES = (".extxyz", ".xyz", ".npz")
_SHOWN = 10  # frames listed on screen (first and last half when there are more)


def evaluate_frames(predictor: Predictor, frames: list, progress: bool = False) -> list[dict]:
    """One dict per frame: energy () eV, atom_energy (nloc,) eV, force (nloc, 3) eV/Å,
    virial (3, 3) eV, and stress (3, 3) eV/Å³ = -virial / volume where there is a cell."""
    out = []
    for frame in progress_iter(frames, progress, desc="eval", unit="frame", total=len(frames)):
        r = predictor.predict(frame)
        if frame.box is not None:
            r["stress"] = -r["virial"] / abs(float(np.linalg.det(frame.box)))
        out.append(r)
    return out


def _write_extxyz(path, frames: list, results: list[dict], type_map: list[str]) -> None:
    import ase
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    images = []
    for f, r in zip(frames, results, strict=True):
        pbc = (False,) * 3 if f.box is None else (f.pbc or (True,) * 3)
        atoms = ase.Atoms([type_map[t] for t in f.atype], positions=f.coord,
                          cell=None if f.box is None else f.box, pbc=pbc)
        extra = {} if "stress" not in r else {"stress": r["stress"]}
        atoms.calc = SinglePointCalculator(atoms, energy=float(r["energy"]), forces=r["force"],
                                           energies=r["atom_energy"], **extra)
        images.append(atoms)
    with atomic_file(path, "w") as fh:
        ase.io.write(fh, images, format="extxyz")


def _write_npz(path, frames: list, results: list[dict], type_map: list[str]) -> None:
    same = len({len(f.atype) for f in frames}) == 1
    arrays: dict[str, np.ndarray] = {"type_map": np.asarray(type_map),
                                     "energy": np.asarray([r["energy"] for r in results])}
    per_atom = (("atom_energy", "atom_energy"), ("force", "force"))
    if same:
        arrays.update({k: np.stack([r[src] for r in results]) for k, src in per_atom})
        arrays["coord"] = np.stack([f.coord for f in frames])
        arrays["atype"] = np.stack([f.atype for f in frames])
    else:
        for n, (f, r) in enumerate(zip(frames, results, strict=True)):
            arrays.update({f"frame{n}/{k}": r[src] for k, src in per_atom})
            arrays[f"frame{n}/coord"], arrays[f"frame{n}/atype"] = f.coord, f.atype
    arrays["virial"] = np.stack([r["virial"] for r in results])
    if all("stress" in r for r in results):
        arrays["stress"] = np.stack([r["stress"] for r in results])
    save_npz(path, arrays)


def summary(results: list[dict], frames: list) -> list[str]:
    """Lines for the screen: one per frame (at most ``_SHOWN``) and the extremes."""
    rows = [f"  {'frame':>6} {'atoms':>6} {'energy (eV)':>16} {'eV/atom':>12} "
            f"{'max |F| (eV/Å)':>15}"]
    index = list(range(len(results)))
    if len(index) > _SHOWN:
        index = index[: _SHOWN // 2] + [-1] + index[-(_SHOWN // 2):]
    for k in index:
        if k < 0:
            rows.append(f"  {'...':>6}")
            continue
        r, n = results[k], len(frames[k].atype)
        fmax = float(np.max(np.linalg.norm(r["force"], axis=-1))) if n else 0.0
        rows.append(f"  {k:>6} {n:>6} {float(r['energy']):>16.6f} "
                    f"{float(r['energy']) / max(n, 1):>12.6f} {fmax:>15.4f}")
    return rows


def cmd_eval(args: argparse.Namespace) -> int:
    output = output_path(args.output, EVAL_SUFFIXES)
    predictor = open_model(args.model, args.head, args.backend, args.device)
    frames = read_structure(args.structure, predictor.type_map, args.frames,
                            f"--model {args.model}")
    start = time.perf_counter()
    results = evaluate_frames(predictor, frames, progress=not args.quiet)
    elapsed = time.perf_counter() - start
    writer = _write_npz if output.suffix.lower() == ".npz" else _write_extxyz
    writer(output, frames, results, predictor.type_map)
    print(f"dpa2 eval: model {args.model} ({predictor.backend}, {args.device}); structure "
          f"{args.structure} ({len(frames)} frame(s))")
    print("\n".join(summary(results, frames)))
    print(f"  time: {elapsed:.2f} s; energies, per-atom energies, forces"
          f"{', stress' if all('stress' in r for r in results) else ''} written to {output}")
    return 0
