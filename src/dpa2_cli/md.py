"""``dpa2 md``: molecular dynamics with ASE and a dpa2 calculator (torch or jax).

``dpa2 md STRUCTURE --model FILE [--steps N] [--timestep FS] [--temperature K]
[--ensemble nve|nvt] [-o traj.traj]`` runs velocity Verlet (NVE) or Langevin (NVT) and
writes an ASE trajectory, a log (step, time, T, Epot, Ekin, Etot; the log is a stream,
written line by line so it can be followed), and a PNG of the energies against time,
behind a progress bar. Without arguments: a short NVT run of the bundled water frame
with the bundled water model (:func:`dpa2_core.presets.water_model`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from dpa2_core.io.files import atomic_write
from dpa2_core.presets import water_frame, water_model
from dpa2_core.progress import progress_bar

from . import inputs

__all__ = ["add_parser", "energy_plot", "make_calculator", "read_structure", "run", "run_md",
           "thermalize"]

LOG_HEADER = "# step  time[fs]  T[K]  Epot[eV]  Ekin[eV]  Etot[eV]"


def read_structure(path: str | None, type_map: tuple[str, ...], model: str = "the model"
                   ) -> Any:
    """``ase.Atoms`` of the first frame of ``path`` (any file ASE reads, or a deepmd-format
    system directory), or the bundled periodic water frame (192 atoms) when ``path`` is
    None. Damaged files and unknown elements are one-line errors naming the file (the
    rules of every command, :func:`dpa2_cli.inputs.read_structure`)."""
    from ase import Atoms

    if path is None:
        coord, atype, box, symbols = water_frame()
        return Atoms([symbols[t] for t in atype], positions=coord, cell=box, pbc=True)
    frame = inputs.read_structure(path, type_map, "0", model)[0]
    pbc = frame.pbc if frame.pbc is not None else frame.box is not None
    return Atoms([type_map[t] for t in frame.atype], positions=frame.coord, cell=frame.box,
                 pbc=pbc)


def make_calculator(model: str, backend: str, device: str | None, dtype: str | None,
                    head: str | None = None) -> Any:
    """The torch or jax ASE calculator on ``model`` (``dtype`` None: float64, or an
    exported artifact's own precision)."""
    if backend == "jax":
        import jax

        if dtype != "float32":  # a command-line process; int64 indices of float64 artifacts
            jax.config.update("jax_enable_x64", True)  # a command-line process
        from dpa2_jax.calculator import Calculator as JaxCalculator

        return JaxCalculator(model, head=head, device=device, dtype=dtype)
    from dpa2_torch.calculator import Calculator as TorchCalculator

    return TorchCalculator(model, head=head, device=device or "cpu", dtype=dtype)


def thermalize(atoms: Any, temperature: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta at ``temperature`` K, no centre-of-mass motion (ASE's
    ``thermalize_momenta`` from 3.29, its older ``MaxwellBoltzmannDistribution`` before)."""
    from ase.md import velocitydistribution as vd

    if hasattr(vd, "thermalize_momenta"):
        vd.thermalize_momenta(atoms, temperature, rng=rng)
    else:  # ase < 3.29
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    vd.Stationary(atoms)


def energy_plot(table: np.ndarray, path: Path, title: str) -> Path:
    """PNG of Epot, Ekin and Etot (minus their first value) against time, fs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for col, name in ((3, "E_pot"), (4, "E_kin"), (5, "E_tot")):
        ax.plot(table[:, 1], table[:, col] - table[0, col], label=f"{name} - {name}(0)")
    ax.set_xlabel("time [fs]")
    ax.set_ylabel("energy [eV]")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path


def _integrator(atoms: Any, ensemble: str, timestep: float, temperature: float,
                friction: float, rng: np.random.Generator) -> Any:
    """ASE's velocity Verlet (nve) or Langevin (nvt, ``friction`` 1/fs) at ``timestep`` fs."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.verlet import VelocityVerlet

    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep=timestep * units.fs)
    return Langevin(atoms, timestep=timestep * units.fs, temperature_K=temperature,
                    friction=friction / units.fs, rng=rng, fixcm=False)


def run_md(atoms: Any, calc: Any, *, steps: int, timestep: float, temperature: float,
           ensemble: str = "nvt", friction: float = 0.02, seed: int = 0,
           trajectory: Path | None = None, log: Path | None = None, interval: int = 1,
           progress: bool = True) -> np.ndarray:
    """Run ``steps`` MD steps of ``timestep`` fs from Maxwell-Boltzmann velocities at
    ``temperature`` K; NVT is Langevin with ``friction`` 1/fs. Returns the table
    (steps + 1, 6): step, time [fs], T [K], Epot, Ekin, Etot [eV]."""
    from ase.io.trajectory import Trajectory

    if steps < 0 or timestep <= 0 or temperature < 0 or interval < 1:
        raise ValueError(f"steps={steps}, timestep={timestep} fs, temperature={temperature} K, "
                         f"interval={interval}: need steps >= 0, timestep > 0, T >= 0, "
                         "interval >= 1")
    if ensemble not in ("nve", "nvt"):
        raise ValueError(f"ensemble={ensemble!r}: must be 'nve' or 'nvt'")
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    thermalize(atoms, temperature, rng)
    dyn = _integrator(atoms, ensemble, timestep, temperature, friction, rng)
    rows: list[list[float]] = []
    log_file = None if log is None else open(log, "w")  # noqa: SIM115 - a stream
    bar = progress_bar(progress, total=steps, desc=f"md {ensemble}", unit="step")

    def record() -> None:
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        step = dyn.nsteps
        row = [step, step * timestep, atoms.get_temperature(), epot, ekin, epot + ekin]
        rows.append(row)
        if log_file is not None:
            log_file.write(f"{step:6d} {row[1]:10.3f} {row[2]:9.2f} {epot:16.6f} "
                           f"{ekin:12.6f} {epot + ekin:16.6f}\n")
            log_file.flush()
        if bar is not None and step:
            bar.update(1)
            bar.set_postfix(T=f"{row[2]:.0f} K", Etot=f"{row[5]:.4f}")

    traj = None
    try:
        if log_file is not None:
            log_file.write(LOG_HEADER + "\n")
        if trajectory is not None:
            traj = Trajectory(str(trajectory), "w", atoms)
            dyn.attach(traj.write, interval=interval)
        dyn.attach(record, interval=1)
        dyn.run(steps)  # ASE calls the observers at step 0 too
    finally:
        if traj is not None:
            traj.close()
        if log_file is not None:
            log_file.close()
        if bar is not None:
            bar.close()
    return np.asarray(rows)


def add_parser(subparsers: Any, **common: Any) -> argparse.ArgumentParser:
    """The ``md`` sub-command (``common``: the parser's shared formatter/epilog)."""
    p = subparsers.add_parser("md", help="molecular dynamics (ASE) with a dpa2 model",
                              **common)
    p.add_argument("structure", nargs="?", default=None, help="structure file (any ase.io "
                   "format; first frame); default: the bundled water frame (192 atoms)")
    p.add_argument("--model", default=None, help="model file (deepmd-kit .dp/.yaml/.json or "
                   "a .pt checkpoint, a dpa2 train checkpoint, an exported .pte/.pt2/.jaxexport); "
                   "default: the bundled water model")
    p.add_argument("--backend", choices=("torch", "jax"), default="torch",
                   help="which shim runs the model")
    p.add_argument("--steps", type=int, default=20, help="MD steps")
    p.add_argument("--timestep", type=float, default=0.5, help="time step, fs")
    p.add_argument("--temperature", type=float, default=300.0,
                   help="K, of the start and the thermostat")
    p.add_argument("--ensemble", choices=("nve", "nvt"), default="nvt",
                   help="velocity Verlet (nve) or Langevin (nvt)")
    p.add_argument("--friction", type=float, default=0.02, help="Langevin friction, 1/fs")
    p.add_argument("--seed", type=int, default=0, help="velocities and Langevin noise")
    p.add_argument("--interval", type=int, default=1, help="trajectory frame every N steps")
    p.add_argument("-o", "--output", default="md.traj", help="ASE trajectory; the log and "
                   "the plot go beside it (.log, .png)")
    p.add_argument("--head", default=None, help="head of a multi-task model file")
    p.add_argument("--device", default=None,
                   help="cpu, cuda, ... (torch: cpu; jax: its default device)")
    p.add_argument("--dtype", choices=("float64", "float32"), default=None,
                   help="precision the model runs in (default: float64; an exported "
                   "artifact's own)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    model = args.model if args.model is not None else str(water_model())
    calc = make_calculator(model, args.backend, args.device, args.dtype, args.head)
    atoms = read_structure(args.structure, calc.type_map, model)
    out = Path(args.output)
    log, png = out.with_suffix(".log"), out.with_suffix(".png")
    what = args.structure or "bundled water frame"
    print(f"dpa2 md: {what} ({len(atoms)} atoms), model {model}, {args.backend} "
          f"{calc.dtype_name}, "
          f"{args.ensemble.upper()} {args.steps} x {args.timestep} fs at {args.temperature} K")
    table = run_md(atoms, calc, steps=args.steps, timestep=args.timestep,
                   temperature=args.temperature, ensemble=args.ensemble,
                   friction=args.friction, seed=args.seed, trajectory=out, log=log,
                   interval=args.interval, progress=not args.quiet)
    energy_plot(table, png, f"{what}: {args.ensemble.upper()}, {args.timestep} fs")
    drift = (table[-1, 5] - table[0, 5]) / len(atoms)
    print(f"  T {table[0, 2]:.1f} -> {table[-1, 2]:.1f} K; Etot {table[0, 5]:.6f} -> "
          f"{table[-1, 5]:.6f} eV ({drift:+.2e} eV/atom); neighbor-list builds: "
          f"{calc.nbuilds}")
    print(f"  written: {out}, {log}, {png}")
    return 0
