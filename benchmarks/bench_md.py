"""ASE MD with dpa2's calculators against deepmd-kit's ``deepmd.calculator.DP``, one run.

On the shared 192-atom water frame with the shared model (float64, CPU), from the same
Maxwell-Boltzmann velocities (300 K, seed 0):

* step time: velocity Verlet at 0.5 fs with ``dpa2_torch.Calculator``,
  ``dpa2_jax.Calculator`` and DP on deepmd-kit's own PyTorch file (``convert-backend``),
  interleaved in rounds (the machine is shared: ratios, not absolute times, are the
  result). One step = one energy+forces evaluation (+ the amortised neighbor list).
* NVE drift: ``--nve-steps`` steps of 0.5 fs with our torch calculator and with DP; the
  total-energy change per atom and its largest excursion. They are the numbers
  tests/test_md.py bounds and docs/guides/md.md records.

    python benchmarks/bench_md.py [--rounds 3] [--steps 3] [--nve-steps 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT.parent / "shared" / "models" / "water_dpa2_small.dp"

__all__ = ["main"]


def water():
    from ase import Atoms

    from dpa2_core.presets import water_frame

    coord, atype, box, symbols = water_frame()
    return Atoms([symbols[t] for t in atype], positions=coord, cell=box, pbc=True)


def start(calc):
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    from dpa2_cli.md import thermalize

    atoms = water()
    thermalize(atoms, 300.0, np.random.default_rng(0))
    atoms.calc = calc
    return atoms, VelocityVerlet(atoms, timestep=0.5 * fs)


def deepmd_dp(tmp: Path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _deepmd_pt

    _deepmd_pt.install_stubs()
    from deepmd.calculator import DP
    from deepmd.main import main as dp_main

    pth = tmp / "water.pth"
    dp_main(["convert-backend", str(MODEL), str(pth)])
    return DP(str(pth))


def nve(calc, steps: int) -> np.ndarray:
    atoms, dyn = start(calc)
    total = [atoms.get_total_energy()]
    for _ in range(steps):
        dyn.run(1)
        total.append(atoms.get_total_energy())
    return np.asarray(total)


def evaluation_times(runs: dict, n: int) -> dict[str, float]:
    """Seconds per energy+forces evaluation of each calculator at its current positions,
    interleaved like the steps: what an MD step costs at least."""
    spent = dict.fromkeys(runs, 0.0)
    for _ in range(n):
        for name, (atoms, _) in runs.items():
            tic = time.perf_counter()
            atoms.calc.calculate(atoms, ["energy", "forces"], ["positions"])
            spent[name] += time.perf_counter() - tic
    return {name: s / n for name, s in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--nve-steps", type=int, default=100)
    parser.add_argument("--no-timing", action="store_true", help="only the NVE drift")
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    import torch

    from dpa2_jax.calculator import Calculator as JaxCalculator
    from dpa2_torch.calculator import Calculator as TorchCalculator

    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), jax {jax.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        calcs = {"dpa2_torch": TorchCalculator(MODEL), "dpa2_jax": JaxCalculator(MODEL),
                 "deepmd DP": deepmd_dp(Path(tmp))}
        runs = {} if args.no_timing else {name: start(calc) for name, calc in calcs.items()}
        for _, dyn in runs.values():  # warm-up: jit compile, first list, torch allocator
            dyn.run(2)
        spent = dict.fromkeys(calcs, 0.0)
        for _ in range(args.rounds):
            for name, (_, dyn) in runs.items():
                tic = time.perf_counter()
                dyn.run(args.steps)
                spent[name] += time.perf_counter() - tic
        n = args.rounds * args.steps
        if runs:
            ref = spent["deepmd DP"] / n
            print(f"\nMD step time, 192-atom water, float64 ({n} steps each, interleaved):")
            for name, s in spent.items():
                print(f"  {name:<11} {1e3 * s / n:8.1f} ms/step   ratio to DP {s / n / ref:5.2f}")
            builds = {k: c.nbuilds for k, c in calcs.items() if hasattr(c, "nbuilds")}
            print(f"  neighbor-list builds over {n + 2} steps: {builds}")
            evals = evaluation_times(runs, n)
            print("  one energy+forces evaluation at fixed positions (no list build), and the "
                  "step's cost over it:")
            for name, s in evals.items():
                print(f"  {name:<11} {1e3 * s:8.1f} ms/eval   step/eval "
                      f"{spent[name] / n / s:5.2f}")
        if args.nve_steps:
            print(f"\nNVE, velocity Verlet 0.5 fs, {args.nve_steps} steps, 300 K start:")
            for name in ("dpa2_torch", "deepmd DP"):
                total = nve(calcs[name], args.nve_steps)
                natoms = 192
                print(f"  {name:<11} Etot drift {(total[-1] - total[0]) / natoms:+.3e} eV/atom;"
                      f" max |Etot - Etot0| {np.abs(total - total[0]).max() / natoms:.3e} "
                      f"eV/atom")


if __name__ == "__main__":
    main()
