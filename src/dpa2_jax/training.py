"""Energy/force training with optax: ``dpa2 train INPUT --backend jax`` (:func:`cli_train`).

One jit-compiled step per batch shape: forces by ``jax.grad`` of the energy, the
loss gradient by a second ``jax.grad`` (force matching), Adam on the trainable leaves
(statistics and the per-type energy bias stay fixed), optional global-norm clipping.
``lcurve.out`` has deepmd-kit's columns; checkpoints are ``.npz`` files.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import dpa2_core as dc

from .checkpoint import load_checkpoint, save_checkpoint
from .descriptor import as_jax
from .model import ModelConfig, energy_and_forces, energy_bias, init_model, model_trainable
from .params import x64_enabled
from .train_data import Batch, Sampler, System, batch_size
from .train_input import TrainInput, parse_input

METRICS = ("rmse", "rmse_e", "rmse_f")


def loss_and_metrics(params: dict, config: ModelConfig, batch: Batch, pref_e, pref_f):
    """deepmd-kit's ``ener`` loss: ``pref_e * mse(E) / natoms + pref_f * mse(F)``.

    Metrics: rmse = sqrt(loss), rmse_e = rmse(E) / natoms (per atom), rmse_f = rmse(F).
    """
    e, f = energy_and_forces(params, config, batch.coord, batch.ext)
    natoms = batch.coord.shape[-2]
    l2_e = jnp.mean((e - batch.energy) ** 2)
    l2_f = jnp.mean((f - batch.force) ** 2)
    loss = pref_e * l2_e / natoms + pref_f * l2_f
    return loss, {"rmse": jnp.sqrt(loss), "rmse_e": jnp.sqrt(l2_e) / natoms,
                  "rmse_f": jnp.sqrt(l2_f)}


def optimizer(gradient_max_norm: float | None = None) -> optax.GradientTransformation:
    """Adam direction (the learning rate is applied by the step), optional clipping."""
    parts = [] if gradient_max_norm is None else [optax.clip_by_global_norm(gradient_max_norm)]
    return optax.chain(*parts, optax.scale_by_adam())


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def train_step(config: ModelConfig, frozen: tuple[bool, ...], gradient_max_norm,
               params, opt_state, batch: Batch, lr, pref_e, pref_f):
    """One Adam step; returns ``(params, opt_state, metrics)`` (metrics of the batch before
    the update). ``frozen``: per-leaf flags (leaf order of ``params``), zero gradient
    hence zero Adam update. The static arguments are hashable, so every run with the
    same model and batch shape reuses one compiled step."""
    grads, metrics = jax.grad(loss_and_metrics, has_aux=True)(params, config, batch,
                                                              pref_e, pref_f)
    leaves, treedef = jax.tree.flatten(grads)
    grads = jax.tree.unflatten(treedef, [jnp.zeros_like(g) if f else g
                                         for g, f in zip(leaves, frozen, strict=True)])
    updates, opt_state = optimizer(gradient_max_norm).update(grads, opt_state, params)
    params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
    return params, opt_state, metrics


@functools.partial(jax.jit, static_argnums=0)
def eval_metrics(config: ModelConfig, params, batch: Batch, pref_e, pref_f) -> dict:
    """Metrics of a batch at given prefactors (no update)."""
    return loss_and_metrics(params, config, batch, pref_e, pref_f)[1]


def frozen_flags(params: dict, config: ModelConfig) -> tuple[bool, ...]:
    """Leaf-order flags of the leaves that are not trained."""
    return tuple(not t for t in jax.tree.leaves(model_trainable(params, config)))


def to_device(batch: Batch) -> Batch:
    return jax.tree.map(lambda x: as_jax(x, "batch"), batch)


def lcurve_header(has_val: bool) -> str:
    """deepmd-kit's header line of ``lcurve.out``."""
    head = f"# {'step':5s}"
    for k in METRICS:
        head += f"   {k + '_val':>11s} {k + '_trn':>11s}" if has_val else f"   {k + '_trn':>11s}"
    head += f"   {'lr':8s}\n"
    return head + "# If there is no available reference data, rmse_*_{val,trn} will print nan\n"


def lcurve_row(step: int, trn: dict, val: dict | None, lr: float) -> str:
    row = f"{step:7d}"
    for k in METRICS:
        row += f"   {val[k]:11.2e} {trn[k]:11.2e}" if val else f"   {trn[k]:11.2e}"
    return row + f"   {lr:8.1e}\n"


def _systems(inp: TrainInput, data) -> list[System]:
    dtype = inp.model.descriptor.dtype_name
    return [System(p, inp.type_map, inp.model.descriptor, dtype) for p in data.systems]


def initial_params(inp: TrainInput, systems: list[System]) -> dict:
    """Fresh parameters with deepmd-kit's data statistics, from the first
    ``data_stat_nbatch`` batches of every training system: the descriptor's ``davg``/
    ``dstd`` (:func:`dpa2_core.compute_input_stats`) and ``bias_atom_e`` (least squares
    of the energies on the type counts)."""
    config = inp.model.descriptor
    take = [inp.data_stat_nbatch * batch_size(inp.training.batch_size, s.nloc)
            for s in systems]
    frames = [s.frames for s in systems]
    stat = [{"coord": f.coord[:n], "atype": f.atype[:n],
             "box": None if f.box is None else f.box[:n]}
            for f, n in zip(frames, take, strict=True)]
    desc = dc.compute_input_stats(dc.init_params(config, inp.descriptor_seed), config, stat)
    params = init_model(inp.model, descriptor_params=desc, fitting_seed=inp.fitting_seed)
    energies = np.concatenate([f.energy[:n] for f, n in zip(frames, take, strict=True)])
    bias = energy_bias(energies, np.concatenate([x["atype"] for x in stat]), config.ntypes,
                       inp.rcond)
    params["fitting"]["bias_atom_e"] = as_jax(bias.astype(energies.dtype), "bias_atom_e")
    return params


def _validate(config, params, valid: Sampler | None, nbatch: int, pe, pf) -> dict | None:
    if valid is None:
        return None
    sums, weight = dict.fromkeys(METRICS, 0.0), 0
    for _ in range(nbatch):
        batch = valid.next()
        m = eval_metrics(config, params, to_device(batch), pe, pf)
        n = batch.coord.shape[0] * batch.coord.shape[1]
        sums = {k: sums[k] + float(m[k]) * n for k in METRICS}
        weight += n
    return {k: v / weight for k, v in sums.items()}


def _progress(step: int, trn: dict, val: dict | None, lr: float, out) -> None:
    def fmt(m):
        return ", ".join(f"{k} = {m[k]:.2e}" for k in METRICS)

    print(f"batch {step:7d}: trn: {fmt(trn)}, lr = {lr:.2e}", file=out)
    if val:
        print(f"batch {step:7d}: val: {fmt(val)}", file=out)


def initial_state(inp: TrainInput, systems: list[System], restart: Path | None, out
                  ) -> tuple[int, dict, Any]:
    """(first step, params, optax state): fresh, or read from a checkpoint (which holds the
    statistics too, so none are computed then)."""
    if restart is None:
        params = initial_params(inp, systems)
        return 0, params, optimizer(inp.gradient_max_norm).init(params)
    template = init_model(inp.model, inp.descriptor_seed, fitting_seed=inp.fitting_seed)
    state = load_checkpoint(restart, template, optimizer(inp.gradient_max_norm).init(template))
    print(f"restarting from {restart} at step {state[0]}", file=out)
    return state


def train(inp: TrainInput, output: Path, restart: Path | None = None, out=None) -> dict:
    """Run the training described by ``inp``; returns the last displayed metrics.

    Progress goes to ``out`` (default: the current ``sys.stdout``).
    """
    out = sys.stdout if out is None else out
    output.mkdir(parents=True, exist_ok=True)
    train_sys = _systems(inp, inp.training)
    valid = None if inp.validation is None else Sampler(
        _systems(inp, inp.validation), inp.validation.batch_size,
        None if inp.seed is None else inp.seed + 1)
    sampler = Sampler(train_sys, inp.training.batch_size, inp.seed)
    start, params, opt_state = initial_state(inp, train_sys, restart, out)
    static = (inp.model, frozen_flags(params, inp.model), inp.gradient_max_norm)
    dtype = inp.model.descriptor.dtype_name
    lcurve = open(output / inp.disp_file, "a" if restart else "w", buffering=1)  # noqa: SIM115
    if not restart:
        lcurve.write(lcurve_header(valid is not None))
    last: dict = {}
    tic = time.perf_counter()
    with lcurve:
        for i in range(start, inp.numb_steps):
            lr = inp.lr.value(i)
            pe, pf = (jnp.asarray(x, dtype) for x in inp.loss.prefactors(lr, inp.lr.start_lr))
            batch = to_device(sampler.next())
            params, opt_state, m = train_step(*static, params, opt_state, batch,
                                              jnp.asarray(lr, dtype), pe, pf)
            if i == start:
                jax.block_until_ready(params)
                print(f"first step (compile + run): {time.perf_counter() - tic:.1f} s", file=out)
            shown = i + 1
            if shown % inp.disp_freq == 0 or shown == 1:
                trn = {k: float(v) for k, v in m.items()}
                val = _validate(inp.model, params, valid, inp.validation.numb_btch
                                if inp.validation else 0, pe, pf)
                lcurve.write(lcurve_row(shown, trn, val, lr))
                _progress(shown, trn, val, lr, out)
                last = {"step": shown, "trn": trn, "val": val, "lr": lr}
            if shown % inp.save_freq == 0 or shown == inp.numb_steps:
                save_checkpoint(output, inp.save_ckpt, shown, params, opt_state, inp.model)
    print(f"training finished: {inp.numb_steps - start} steps in "
          f"{time.perf_counter() - tic:.1f} s", file=out)
    return last


def cli_train(args: Any) -> int:
    """``dpa2 train INPUT --backend jax``: args has input, output, steps, restart."""
    path = Path(args.input)
    if not path.is_file():
        raise FileNotFoundError(f"input={str(path)!r}: no such file")
    inp = parse_input(json.loads(path.read_text()), path.parent.resolve(),
                      getattr(args, "steps", None))
    if inp.model.descriptor.dtype_name == "float64" and not x64_enabled():
        jax.config.update("jax_enable_x64", True)
        print("note: precision float64 -> jax_enable_x64 switched on for this run")
    restart = getattr(args, "restart", None)
    train(inp, Path(getattr(args, "output", None) or "."),
          None if restart is None else Path(restart))
    return 0
