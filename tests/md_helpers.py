"""ASE structures and deepmd-kit's PyTorch backend for the calculator and MD tests.

deepmd-kit's ``deepmd.calculator.DP`` is the oracle. On a bare ``.dp`` file it runs
deepmd's numpy backend, which has no forces (NaN stress), so the oracle is its PyTorch
backend on the ``.pth`` that deepmd-kit's own ``convert-backend`` makes; that backend
imports beside torch 2.13 only with the stand-ins of ``benchmarks/_deepmd_pt.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from oracle import MODEL_DP, water_frames

ROOT = Path(__file__).resolve().parents[1]


def install_deepmd_pt() -> None:
    """Make ``deepmd.pt`` importable (idempotent): the stand-ins of benchmarks/_deepmd_pt.py."""
    spec = importlib.util.spec_from_file_location("_deepmd_pt", ROOT / "benchmarks" /
                                                  "_deepmd_pt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install_stubs()


def convert_backend(src: Path, dst: Path) -> Path:
    """deepmd-kit's own ``dp convert-backend src dst`` (in process)."""
    install_deepmd_pt()
    from deepmd.main import main

    main(["convert-backend", str(src), str(dst)])
    if not dst.is_file():
        raise RuntimeError(f"convert-backend {src} {dst}: no output")
    return dst


def deepmd_calculator(path: Path):
    install_deepmd_pt()
    from deepmd.calculator import DP

    return DP(str(path))


def water():
    """The shared 192-atom water frame, periodic (ase.Atoms)."""
    from ase import Atoms

    coord, atype, box = (x[0] for x in water_frames(0, (0,)))
    return Atoms([("O", "H")[t] for t in atype], positions=coord, cell=box, pbc=True)


def slab(vacuum: float = 10.0):
    """The water frame with ``vacuum`` Å added along z and pbc=(T, T, F): a slab. With more
    vacuum than the cutoff, deepmd's fully periodic view of the same cell is the same slab."""
    atoms = water()
    atoms.wrap()
    cell = atoms.cell.array.copy()
    cell[2] *= 1.0 + vacuum / np.linalg.norm(cell[2])
    atoms.set_cell(cell, scale_atoms=False)
    atoms.pbc = (True, True, False)
    return atoms


def cluster(radius: float = 5.0):
    """Whole water molecules within ``radius`` Å of the box centre, open boundaries."""
    from ase import Atoms

    atoms = water()
    atoms.wrap()
    pos, sym = atoms.positions, atoms.get_chemical_symbols()
    centre = atoms.cell.array.sum(0) / 2
    keep = []
    for o in [i for i, s in enumerate(sym) if s == "O"]:
        if np.linalg.norm(pos[o] - centre) < radius:
            d = atoms.get_distances(o, range(len(sym)), mic=True, vector=True)
            hs = [j for j in range(len(sym)) if sym[j] == "H" and np.linalg.norm(d[j]) < 1.2]
            keep.append((o, pos[o]))
            keep += [(h, pos[o] + d[h]) for h in hs]  # unwrapped onto their oxygen
    return Atoms([sym[i] for i, _ in keep], positions=[p for _, p in keep], pbc=False)


def small_triclinic():
    """12 atoms (water's density) in a triclinic cell shorter than the 6 Å cutoff (several
    image shells), so the 120 neighbors of the model are never all taken."""
    from ase import Atoms

    cell = np.array([[5.3, 0.0, 0.0], [1.1, 5.0, 0.0], [0.6, -0.8, 5.4]])
    rng = np.random.default_rng(3)
    pts: list[np.ndarray] = []
    while len(pts) < 12:
        p = rng.uniform(0, 1, 3) @ cell
        others = np.asarray(pts).reshape(-1, 3)
        if all(np.linalg.norm((p - q) - np.round((p - q) @ np.linalg.inv(cell)) @ cell) > 1.3
               for q in others):
            pts.append(p)
    return Atoms(["O", "H", "H"] * 4, positions=pts, cell=cell, pbc=True)


STRUCTURES = {"water": water, "slab": slab, "cluster": cluster}
__all__ = ["MODEL_DP", "STRUCTURES", "cluster", "convert_backend", "deepmd_calculator", "rel",
           "install_deepmd_pt", "slab", "small_triclinic", "water"]


def rel(a, b) -> float:
    """max |a - b| relative to max |b| (float64)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))
