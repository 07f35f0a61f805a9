"""Train a small DPA-2 energy model on the shared water data with optax (dpa2_jax).

The pieces spelled out: deepmd-format frames -> host-built ghost extension (once per
system) -> energy = fitting(descriptor), forces = -grad(energy) -> one ``jax.jit``
optax step (the loss gradient differentiates through the force). For deepmd-kit input
files use ``dpa2 train input.json --backend jax`` (:func:`dpa2_jax.training.cli_train`).

    python examples/jax_train.py [--steps 100] [--data ../shared/data/water]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

jax.config.update("jax_enable_x64", True)

import dpa2_core as dc  # noqa: E402
from dpa2_core.training.loss import ener_loss  # noqa: E402
from dpa2_core.training.sampling import BatchSampler  # noqa: E402
from dpa2_jax import ModelConfig, energy, energy_and_forces, init_model  # noqa: E402
from dpa2_jax.training.data import System  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "water"
DESCRIPTOR = {
    "repinit": {"rcut": 6.0, "rcut_smth": 0.5, "nsel": 120, "neuron": [16, 32],
                "axis_neuron": 8, "tebd_dim": 8},
    "repformer": {"rcut": 4.0, "rcut_smth": 3.5, "nsel": 48, "nlayers": 2, "g1_dim": 64,
                  "g2_dim": 16, "axis_neuron": 4, "attn1_hidden": 16, "attn2_hidden": 16,
                  "update_style": "res_residual", "update_residual": 0.01},
    "type_map": ["O", "H"],
}


def loss_fn(params, config, batch, pref_e, pref_f):
    """deepmd-kit's energy loss: pref_e * mse(E) / natoms + pref_f * mse(F)."""
    energy, force = energy_and_forces(params, config, batch.coord, batch.ext)
    loss, m = ener_loss(energy, batch.energy, force, batch.force, batch.coord.shape[1],
                        pref_e, pref_f)
    return loss, (m["rmse_e"], m["rmse_f"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--disp", type=int, default=20)
    args = parser.parse_args()

    desc = dc.DPA2Config.from_dict(DESCRIPTOR)
    config = ModelConfig.build(desc, {"neuron": [64, 64]})
    systems = [System(args.data / f"data_{i}", desc.type_map, desc, "float64") for i in (0, 1, 2)]
    valid = System(args.data / "data_3", desc.type_map, desc, "float64")
    params = init_model(config, seed=1)
    # per-type energy shift (kept fixed): least squares of what the untrained net misses
    stat = [s.batch(np.arange(0, s.nframes, 8)) for s in systems]
    total = jax.jit(lambda p, b: energy(p, config, b.coord, b.ext))
    residual = [b.energy - np.asarray(total(params, jax.tree.map(jnp.asarray, b)))
                for b in stat]
    bias = dc.training.statistics.energy_bias(np.concatenate(residual),
                                [s.frames.atype[::8] for s in systems], desc.ntypes)
    params["out_bias"] = jnp.asarray(bias)

    schedule = optax.exponential_decay(1e-3, transition_steps=max(args.steps // 10, 1),
                                       decay_rate=0.1**0.2, staircase=True)  # -> 1e-5
    frozen = jax.tree_util.tree_map_with_path(  # statistics and the energy biases stay fixed
        lambda p, _: any(k in str(p) for k in ("davg", "dstd", "bias_atom_e", "out_bias")),
        params)
    opt = optax.chain(optax.clip_by_global_norm(5.0),
                      optax.masked(optax.adam(schedule), jax.tree.map(lambda f: not f, frozen)),
                      optax.masked(optax.set_to_zero(), frozen))
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, batch, pref_e, pref_f):
        (loss, rmse), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, config, batch, pref_e, pref_f)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, rmse

    sampler = BatchSampler([s.nframes for s in systems], [args.batch] * len(systems), seed=0)
    tic = time.perf_counter()
    for i in range(args.steps):
        ratio = schedule(i) / 1e-3  # deepmd-kit's prefactor schedule: start -> limit
        pref_e, pref_f = 1.0 + (0.02 - 1.0) * ratio, 1.0 + (1000.0 - 1.0) * ratio
        k, idx = sampler.next()
        batch = jax.tree.map(jnp.asarray, systems[k].batch(np.asarray(idx)))
        params, opt_state, loss, (rmse_e, rmse_f) = step(params, opt_state, batch, pref_e,
                                                         pref_f)
        if i == 0:
            print(f"first step (compile + run): {time.perf_counter() - tic:.1f} s")
        if (i + 1) % args.disp == 0 or i == 0:
            print(f"step {i + 1:5d}  loss {float(loss):.3e}  rmse_e {float(rmse_e):.2e} "
                  f"eV/atom  rmse_f {float(rmse_f):.3f} eV/Å  lr {float(schedule(i)):.1e}")
    evaluate = jax.jit(lambda p, b: loss_fn(p, config, b, 1.0, 1.0)[1])
    errs = np.asarray([evaluate(params, jax.tree.map(jnp.asarray, valid.batch(np.array([k]))))
                       for k in range(0, valid.nframes, 10)])
    print(f"validation (data_3, {len(errs)} frames): rmse_e {errs[:, 0].mean():.2e} eV/atom, "
          f"rmse_f {np.sqrt((errs[:, 1] ** 2).mean()):.3f} eV/Å; "
          f"{args.steps} steps in {time.perf_counter() - tic:.0f} s")


if __name__ == "__main__":
    main()
