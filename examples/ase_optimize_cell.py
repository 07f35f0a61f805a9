"""Relax the 192-atom water box, atoms and cell together, with FIRE through a cell filter.

``ase.filters.FrechetCellFilter`` exposes the cell's deformation to the optimizer next to
the positions, so forces and the stress (``dpa2_*.Calculator`` computes both) drive
the relaxation; the shared water model (the bundled copy when ../shared is absent).

    python examples/ase_optimize_cell.py [--steps 5] [--fmax 0.05] [--backend torch|jax]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE

from dpa2_cli.md import make_calculator, read_structure
from dpa2_core.presets import water_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models" / "water_dpa2_small.dp"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--fmax", type=float, default=0.05, help="eV/Å")
    parser.add_argument("--backend", choices=("torch", "jax"), default="torch")
    parser.add_argument("--model", default=str(SHARED if SHARED.is_file() else water_model()))
    args = parser.parse_args()

    calc = make_calculator(args.model, args.backend, None, "float64")
    atoms = read_structure(None, calc.type_map)
    atoms.calc = calc
    e0, v0 = atoms.get_potential_energy(), atoms.get_volume()
    stress0 = np.abs(atoms.get_stress()).max()
    opt = FIRE(FrechetCellFilter(atoms), logfile="-")
    opt.run(fmax=args.fmax, steps=args.steps)
    print(f"E {e0:.4f} -> {atoms.get_potential_energy():.4f} eV; volume {v0:.1f} -> "
          f"{atoms.get_volume():.1f} Å^3; max |stress| {stress0:.2e} -> "
          f"{np.abs(atoms.get_stress()).max():.2e} eV/Å^3")


if __name__ == "__main__":
    main()
