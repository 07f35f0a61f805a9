"""NVE molecular dynamics of the 192-atom water box, jax-md style, with dpa2_jax.

Velocity Verlet in chunks of ``--chunk`` steps, each chunk one ``jax.jit`` call
(``lax.scan``). The neighbor list is the fixed-capacity one of :mod:`dpa2_jax.neighbor`:
it is refreshed inside the loop when an atom has moved more than ``skin / 2``, and its
overflow flag is checked between chunks, outside jit (on overflow: reallocate, redo
the chunk). By default the model is a small untrained one, so the dynamics mean nothing
physically; the total-energy drift shows the integrator, forces and list are consistent.
``--model`` runs a whole deepmd-kit energy model instead (descriptor, fitting net and
``out_bias``), e.g. the shared water model trained by deepmd-kit.

    python examples/jax_md_nve.py [--steps 40] [--dt 0.25]
                                  [--model ../shared/models/water_dpa2_small.dp]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import dpa2_core as dc  # noqa: E402
from dpa2_core.presets import water_frame  # noqa: E402
from dpa2_jax import (  # noqa: E402
    ModelConfig,
    atom_energy,
    init_model,
    load_deepmd_model,
    neighbor,
)

TIME_UNIT_FS = 10.180505  # sqrt(amu * Å^2 / eV) in fs
KB = 8.617333262e-5  # eV / K
MASS = {"O": 15.999, "H": 1.008}
SMALL = {  # a fast descriptor for the demo; --model loads a real one
    "repinit": {"rcut": 6.0, "rcut_smth": 0.5, "nsel": 120, "neuron": [8, 16],
                "axis_neuron": 4, "tebd_dim": 8},
    "repformer": {"rcut": 4.0, "rcut_smth": 3.5, "nsel": 48, "nlayers": 2, "g1_dim": 32,
                  "g2_dim": 8, "axis_neuron": 4, "attn1_hidden": 8, "attn2_hidden": 8},
    "type_map": ["O", "H"],
}


def build_model(path: str | None) -> tuple[ModelConfig, dict]:
    """A whole deepmd-kit energy model (``--model``), or a small fresh one."""
    if path is not None:
        return load_deepmd_model(path)
    config = ModelConfig.build(dc.DPA2Config.from_dict(SMALL), {"neuron": [32, 32]})
    return config, init_model(config, seed=0)


def make_chunk(config: ModelConfig, spec: neighbor.NeighborSpec, atype, mass, dt: float,
               nsteps: int):
    """jit: (params, state) -> (state, per-step [potential, kinetic], rebuilds)."""

    def potential(params, coord, nbrs):
        ce, ae, mp, nl = neighbor.descriptor_inputs(spec, nbrs, coord, atype)
        return jnp.sum(atom_energy(params, config, ce, ae, nl, mp))

    energy_and_grad = jax.value_and_grad(potential, argnums=1)

    def step(params, carry, _):
        coord, vel, force, nbrs, rebuilds = carry
        vel = vel + 0.5 * dt * force / mass
        coord = coord + dt * vel
        rebuilds = rebuilds + neighbor.needs_rebuild(spec, nbrs, coord)
        nbrs = neighbor.update(spec, nbrs, coord, atype)
        epot, grad = energy_and_grad(params, coord, nbrs)
        force = -grad
        vel = vel + 0.5 * dt * force / mass
        ekin = 0.5 * jnp.sum(mass * vel * vel)
        return (coord, vel, force, nbrs, rebuilds), jnp.stack([epot, ekin])

    @jax.jit
    def chunk(params, carry):
        return jax.lax.scan(lambda c, x: step(params, c, x), carry, None, length=nsteps)

    @jax.jit
    def initial_force(params, coord, nbrs):
        epot, grad = energy_and_grad(params, coord, nbrs)
        return epot, -grad

    return chunk, initial_force


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--chunk", type=int, default=20)
    parser.add_argument("--dt", type=float, default=0.25, help="time step, fs")
    parser.add_argument("--temperature", type=float, default=300.0, help="initial T, K")
    parser.add_argument("--skin", type=float, default=0.5, help="neighbor skin, Å")
    parser.add_argument("--model", default=None,
                        help="a whole deepmd-kit energy model (.dp/.yaml/.json)")
    args = parser.parse_args()

    config, params = build_model(args.model)
    coord, atype, box, symbols = water_frame()
    type_map = config.descriptor.type_map
    atype = np.asarray([type_map.index(symbols[t]) for t in atype])
    mass = np.asarray([MASS[type_map[t]] for t in atype])[:, None]
    rng = np.random.default_rng(0)
    vel = rng.normal(size=coord.shape) * np.sqrt(KB * args.temperature / mass)
    vel -= (mass * vel).sum(0) / mass.sum()  # no centre-of-mass drift
    cfg = config.descriptor
    spec, nbrs = neighbor.allocate(coord, atype, cfg.rcut, cfg.nsel, box, skin=args.skin)
    print(f"{len(atype)} atoms, {len(spec.shifts)} periodic images, capacity "
          f"{spec.capacity} candidates/atom, skin {args.skin} Å")
    dt = args.dt / TIME_UNIT_FS
    chunk, initial_force = make_chunk(config, spec, jnp.asarray(atype), jnp.asarray(mass), dt,
                                      args.chunk)
    epot0, force = initial_force(params, coord, nbrs)
    ekin0 = 0.5 * float(np.sum(mass * vel * vel))
    carry = (jnp.asarray(coord), jnp.asarray(vel), force, nbrs, jnp.asarray(0))
    energies, done, tic = [[float(epot0), ekin0]], 0, time.perf_counter()
    while done < args.steps:
        new, e = chunk(params, carry)
        if bool(new[3].did_overflow):  # outside jit: grow the list, redo this chunk
            spec, nbrs = neighbor.allocate(np.asarray(carry[0]), atype, cfg.rcut, cfg.nsel,
                                           box, skin=args.skin, capacity_multiplier=1.5)
            print(f"neighbor list overflow: capacity -> {spec.capacity}, chunk redone")
            chunk, _ = make_chunk(config, spec, jnp.asarray(atype), jnp.asarray(mass), dt,
                                  args.chunk)
            carry = (carry[0], carry[1], carry[2], nbrs, carry[4])
            continue
        carry, done = new, done + args.chunk
        energies.extend(np.asarray(e).tolist())
        if done == args.chunk:
            print(f"first chunk (compile + run): {time.perf_counter() - tic:.1f} s")
            tic = time.perf_counter()
    wall = time.perf_counter() - tic
    report(np.asarray(energies), len(atype), int(carry[4]), wall, done - args.chunk)


def report(energies: np.ndarray, natoms: int, rebuilds: int, wall: float, timed: int) -> None:
    total = energies.sum(axis=1)
    temp = 2.0 * energies[:, 1] / (3 * natoms * KB)
    drift = (total[-1] - total[0]) / natoms
    print(f"steps: {len(total) - 1}; neighbor rebuilds inside jit: {rebuilds}")
    print(f"E_pot {energies[0, 0]:.6f} -> {energies[-1, 0]:.6f} eV; "
          f"T {temp[0]:.1f} -> {temp[-1]:.1f} K")
    print(f"total-energy drift: {drift:+.3e} eV/atom; max |E - E0|: "
          f"{np.abs(total - total[0]).max() / natoms:.3e} eV/atom")
    if timed > 0:
        print(f"steady state: {1e3 * wall / timed:.1f} ms/step")


if __name__ == "__main__":
    main()
