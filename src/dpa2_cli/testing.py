"""``dpa2 test``: energy and force errors of a model on deepmd-format systems.

Both backends run through :class:`dpa2_cli.models.Predictor`; the metrics are
:mod:`dpa2_core.training.metrics`. ``-d PREFIX`` writes deepmd-kit's ``dp test -d`` detail
files: ``PREFIX.e.out`` (data_e pred_e), ``PREFIX.e_peratom.out`` (per atom) and
``PREFIX.f.out`` (data_fx data_fy data_fz pred_fx pred_fy pred_fz), one ``# system``
header per system.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from dpa2_core.io.npy_data import DeepmdSystem
from dpa2_core.io.structures import Frame
from dpa2_core.progress import progress_bar
from dpa2_core.training.metrics import energy_force_errors, weighted_errors

from .inputs import find_systems
from .models import Predictor, open_model
from .output import write_text

__all__ = ["cmd_test", "report", "evaluate_systems"]


def _labels(path: Path, predictor: Predictor, numb_test: int | None):
    try:
        f = DeepmdSystem(path, predictor.type_map).frames()
    except ValueError as err:
        raise ValueError(f"{err}; the model is {predictor.source} with type_map "
                         f"{predictor.type_map}") from err
    if f.energy is None:
        raise ValueError(f"{path}: no energy.npy in its sets, nothing to compare against")
    n = f.coord.shape[0] if numb_test is None else min(numb_test, f.coord.shape[0])
    return f, n


def evaluate_systems(predictor: Predictor, systems: list[Path], numb_test: int | None = None,
                 progress: bool = False) -> list[dict]:
    """Per system: metrics (:func:`energy_force_errors`) plus the predictions and labels."""
    loaded = [(s, *_labels(s, predictor, numb_test)) for s in systems]
    bar = progress_bar(progress, total=sum(n for *_, n in loaded), desc="test", unit="frame")
    out = []
    for path, f, n in loaded:
        pe, pf = [], []
        for k in range(n):
            r = predictor.predict(Frame(f.coord[k], f.atype[k],
                                        None if f.box is None else f.box[k]))
            pe.append(r["energy"])
            pf.append(r["force"])
            if bar is not None:
                bar.update(1)
        natoms = f.coord.shape[1]
        energy, force = np.asarray(pe), np.stack(pf)
        ref_f = None if f.force is None else f.force[:n]
        m = energy_force_errors(energy, f.energy[:n], natoms, force, ref_f)
        out.append({"system": str(path), "metrics": m, "energy": energy,
                    "energy_ref": f.energy[:n], "force": force, "force_ref": ref_f})
    if bar is not None:
        bar.close()
    return out


def report(results: list[dict]) -> str:
    lines = []
    for r in results:
        m = r["metrics"]
        lines += [f"# system: {r['system']} ({int(m['nframes'])} frames, "
                  f"{int(m['natoms'])} atoms)",
                  f"Energy MAE         : {m['mae_e']:e} eV",
                  f"Energy RMSE        : {m['rmse_e']:e} eV",
                  f"Energy MAE/Natoms  : {m['mae_ea']:e} eV",
                  f"Energy RMSE/Natoms : {m['rmse_ea']:e} eV",
                  f"Force  MAE         : {m['mae_f']:e} eV/Å",
                  f"Force  RMSE        : {m['rmse_f']:e} eV/Å"]
    if len(results) > 1:
        w = weighted_errors([r["metrics"] for r in results])
        lines += [f"# weighted average over {len(results)} systems",
                  f"Energy MAE/Natoms  : {w['mae_ea']:e} eV",
                  f"Energy RMSE/Natoms : {w['rmse_ea']:e} eV",
                  f"Force  MAE         : {w['mae_f']:e} eV/Å",
                  f"Force  RMSE        : {w['rmse_f']:e} eV/Å"]
    return "\n".join(lines)


def _table(header: str, blocks: list[tuple[str, np.ndarray]]) -> str:
    buf = io.StringIO()
    for system, rows in blocks:
        np.savetxt(buf, rows, header=f"{system}: {header}")
    return buf.getvalue()


def write_details(prefix: str, results: list[dict]) -> list[Path]:
    """deepmd-kit's ``dp test -d PREFIX`` files; returns their paths."""
    p = Path(prefix)
    if not p.parent.exists():
        raise FileNotFoundError(f"-d {prefix}: folder {p.parent} does not exist")
    energy = [(r["system"], np.column_stack([r["energy_ref"], r["energy"]])) for r in results]
    n = [r["metrics"]["natoms"] for r in results]
    per_atom = [(s, e / k) for (s, e), k in zip(energy, n, strict=True)]
    paths = [write_text(f"{prefix}.e.out", _table("data_e pred_e", energy)),
             write_text(f"{prefix}.e_peratom.out", _table("data_e pred_e", per_atom))]
    forces = [(r["system"], np.column_stack([r["force_ref"].reshape(-1, 3),
                                             r["force"].reshape(-1, 3)]))
              for r in results if r["force_ref"] is not None]
    if forces:
        paths.append(write_text(f"{prefix}.f.out", _table(
            "data_fx data_fy data_fz pred_fx pred_fy pred_fz", forces)))
    return paths


def cmd_test(args: argparse.Namespace) -> int:
    if args.numb_test is not None and args.numb_test <= 0:
        raise ValueError(f"--numb-test {args.numb_test}: must be a positive number of frames")
    systems = find_systems(args.system)
    predictor = open_model(args.model, args.head, args.backend, args.device)
    results = evaluate_systems(predictor, systems, args.numb_test, progress=not args.quiet)
    print(report(results))
    if args.detail_file:
        paths = write_details(args.detail_file, results)
        print(f"# details written to {', '.join(map(str, paths))}")
    return 0
