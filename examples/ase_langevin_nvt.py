"""Langevin NVT of the 192-atom water box at 330 K with ASE and a dpa2 calculator.

Writes an ASE trajectory (``nvt.traj``) and prints the temperature as the thermostat
takes the box from 300 K towards 330 K (the shared water model; the bundled copy when
../shared is absent).

    python examples/ase_langevin_nvt.py [--steps 10] [--backend torch|jax] [-o nvt.traj]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase.io.trajectory import Trajectory
from ase.md.langevin import Langevin
from ase.units import fs

from dpa2_cli.md import make_calculator, read_structure, thermalize
from dpa2_core.presets import water_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models" / "water_dpa2_small.dp"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=330.0, help="K")
    parser.add_argument("--backend", choices=("torch", "jax"), default="torch")
    parser.add_argument("--model", default=str(SHARED if SHARED.is_file() else water_model()))
    parser.add_argument("-o", "--output", default="nvt.traj")
    args = parser.parse_args()

    calc = make_calculator(args.model, args.backend, None, "float64")
    atoms = read_structure(None, calc.type_map)
    rng = np.random.default_rng(0)
    thermalize(atoms, 300.0, rng)
    atoms.calc = calc
    dyn = Langevin(atoms, timestep=0.5 * fs, temperature_K=args.temperature,
                   friction=0.02 / fs, rng=rng, fixcm=False)
    with Trajectory(args.output, "w", atoms) as traj:
        dyn.attach(traj.write, interval=1)
        dyn.attach(lambda: print(f"step {dyn.nsteps:4d}  T {atoms.get_temperature():7.1f} K  "
                                 f"Epot {atoms.get_potential_energy():.4f} eV"), interval=5)
        dyn.run(args.steps)
    print(f"wrote {args.output} ({args.steps + 1} frames)")


if __name__ == "__main__":
    main()
