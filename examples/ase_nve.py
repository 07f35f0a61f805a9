"""NVE molecular dynamics of the 192-atom water box with ASE and a dpa2 calculator.

Velocity Verlet at 0.5 fs from 300 K Maxwell-Boltzmann velocities, with the shared water
model (deepmd-kit's DPA-2 "small" trained on its water example; the bundled copy of it
when ../shared is absent). Prints the total-energy drift per atom.

    python examples/ase_nve.py [--steps 10] [--backend torch|jax] [--model FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase.md.verlet import VelocityVerlet
from ase.units import fs

from dpa2_cli.md import make_calculator, read_structure, thermalize
from dpa2_core.presets import water_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models" / "water_dpa2_small.dp"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--backend", choices=("torch", "jax"), default="torch")
    parser.add_argument("--model", default=str(SHARED if SHARED.is_file() else water_model()))
    args = parser.parse_args()

    calc = make_calculator(args.model, args.backend, None, "float64")
    atoms = read_structure(None, calc.type_map)  # the bundled water frame
    thermalize(atoms, 300.0, np.random.default_rng(0))
    atoms.calc = calc
    dyn = VelocityVerlet(atoms, timestep=args.timestep * fs)
    total = [atoms.get_total_energy()]
    dyn.attach(lambda: total.append(atoms.get_total_energy()), interval=1)
    dyn.run(args.steps)
    total = np.asarray(total[1:])  # the observer also runs at step 0
    print(f"{len(atoms)} atoms, {args.steps} steps of {args.timestep} fs, T = "
          f"{atoms.get_temperature():.1f} K, neighbor-list builds: {calc.nbuilds}")
    print(f"total-energy drift {(total[-1] - total[0]) / len(atoms):+.3e} eV/atom, "
          f"max |E - E0| {np.abs(total - total[0]).max() / len(atoms):.3e} eV/atom")


if __name__ == "__main__":
    main()
