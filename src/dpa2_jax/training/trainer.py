"""Energy/force training with optax: ``dpa2 train INPUT --backend jax`` (:func:`cli_train`).

The input, learning-rate rule, loss, batch sampling, statistics and ``lcurve.out`` are
the core's (shared with the torch trainer). Here: one jit-compiled step per batch shape,
forces by ``jax.grad`` of the energy, the loss gradient by a second ``jax.grad`` (force
matching), Adam on the trainable leaves (statistics and the energy biases stay fixed),
optional global-norm clipping; checkpoints are ``.npz`` files.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import dpa2_core as dc
from dpa2_core.io.loader import describe_kind, model_kind, read_training_checkpoint
from dpa2_core.progress import progress_bar
from dpa2_core.training import checkpoints, faults, lcurve, report
from dpa2_core.training.guards import (
    NonFiniteError,
    StopSignals,
    nonfinite_message,
    restart_hint,
    skip_message,
)
from dpa2_core.training.loss import ener_loss
from dpa2_core.training.metrics import WeightedMean
from dpa2_core.training.restart import check_same_model
from dpa2_core.training.settings import DataSettings, TrainInput

from ..descriptor import as_jax
from ..model import ModelConfig, energy_and_forces, from_record, init_model, model_trainable
from ..params import x64_enabled
from .checkpoint import checkpoint_writer, load_checkpoint
from .data import Batch, Sampler, System

__all__ = [
    "cli_train", "eval_metrics", "frozen_flags", "initial_params", "initial_state",
    "loss_and_metrics", "METRICS", "model_config", "optimizer", "to_device", "train",
    "train_step",
]

METRICS = lcurve.KEYS


def loss_and_metrics(params: dict, config: ModelConfig, batch: Batch, pref_e, pref_f):
    """deepmd-kit's ``ener`` loss (:func:`dpa2_core.training.loss.ener_loss`) of a batch."""
    e, f = energy_and_forces(params, config, batch.coord, batch.ext)
    return ener_loss(e, batch.energy, f, batch.force, batch.coord.shape[-2], pref_e, pref_f)


def optimizer(gradient_max_norm: float = 0.0) -> optax.GradientTransformation:
    """Adam direction (the learning rate is applied by the step), clipping when > 0."""
    parts = [optax.clip_by_global_norm(gradient_max_norm)] if gradient_max_norm > 0 else []
    return optax.chain(*parts, optax.scale_by_adam())


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def train_step(config: ModelConfig, frozen: tuple[bool, ...], gradient_max_norm,
               params, opt_state, batch: Batch, lr, pref_e, pref_f):
    """One Adam step; returns ``(params, opt_state, metrics, finite)`` (metrics of the batch
    before the update). ``finite``: loss and gradient are finite; when not, ``params`` and
    ``opt_state`` come back unchanged (a non-finite number never reaches them).
    ``frozen``: per-leaf flags (leaf order of ``params``), zero gradient hence zero Adam
    update. The static arguments are hashable, so every run with the same model and batch
    shape reuses one compiled step."""
    grads, metrics = jax.grad(loss_and_metrics, has_aux=True)(params, config, batch,
                                                              pref_e, pref_f)
    leaves, treedef = jax.tree.flatten(grads)
    grads = jax.tree.unflatten(treedef, [jnp.zeros_like(g) if f else g
                                         for g, f in zip(leaves, frozen, strict=True)])
    finite = jnp.isfinite(metrics["rmse"]) & jnp.isfinite(optax.tree.norm(grads))
    updates, new_state = optimizer(gradient_max_norm).update(grads, opt_state, params)
    new = jax.tree.map(lambda p, u: p - lr * u, params, updates)
    keep = functools.partial(jax.tree.map, lambda a, b: jnp.where(finite, a, b))
    return keep(new, params), keep(new_state, opt_state), metrics, finite


@functools.partial(jax.jit, static_argnums=0)
def eval_metrics(config: ModelConfig, params, batch: Batch, pref_e, pref_f) -> dict:
    """Metrics of a batch at given prefactors (no update)."""
    return loss_and_metrics(params, config, batch, pref_e, pref_f)[1]


def frozen_flags(params: dict, config: ModelConfig) -> tuple[bool, ...]:
    """Leaf-order flags of the leaves that are not trained."""
    return tuple(not t for t in jax.tree.leaves(model_trainable(params, config)))


def to_device(batch: Batch) -> Batch:
    return jax.tree.map(lambda x: as_jax(x, "batch"), batch)


def _systems(inp: TrainInput, data: DataSettings) -> list[System]:
    dtype = inp.settings.descriptor.dtype_name
    return [System(p, inp.settings.type_map, inp.settings.descriptor, dtype)
            for p in data.systems]


def model_config(inp: TrainInput) -> ModelConfig:
    return ModelConfig(inp.settings.descriptor, inp.settings.fitting)


def initial_params(inp: TrainInput, systems: list[System], sizes: list[int]) -> dict:
    """Fresh parameters with deepmd-kit's data statistics
    (:func:`dpa2_core.training.statistics.training_statistics`): the descriptor's davg/dstd and
    ``out_bias``."""
    s = inp.settings
    desc, bias = dc.training.statistics.training_statistics(
        dc.init_params(s.descriptor, s.descriptor_seed), s.descriptor,
        [x.frames for x in systems], sizes, s.data_stat_nbatch, s.rcond)
    return init_model(model_config(inp), descriptor_params=desc, fitting_seed=s.fitting_seed,
                      out_bias=bias)


def _validation_metrics(config, params, valid: Sampler | None, nbatch: int, pe, pf) -> dict | None:
    if valid is None:
        return None
    mean = WeightedMean()
    for _ in range(nbatch):
        batch = valid.next()
        m = eval_metrics(config, params, to_device(batch), pe, pf)
        mean.add({k: m[k] for k in METRICS}, batch.coord.shape[0] * batch.coord.shape[1])
    return mean.result()


def initial_state(inp: TrainInput, systems: list[System], sampler: Sampler,
                  restart: Path | None, out, valid: Sampler | None = None
                  ) -> tuple[int, dict, Any]:
    """(first step, params, optax state): fresh (statistics and energy bias printed), or
    read from a checkpoint of either backend (which holds the statistics and the sampler
    states too; a torch one gives fresh Adam moments)."""
    opt = optimizer(inp.gradient_max_norm)
    s = inp.settings
    if restart is None:
        params = initial_params(inp, systems, sampler.sizes)
        print(report.statistics_line(s.data_stat_nbatch, len(systems)), file=out)
        print(report.bias_line(params["out_bias"], s.type_map), file=out)
        return 0, params, opt.init(params)
    kind, note = model_kind(restart), ""
    if kind == "dpa2-jax-checkpoint":
        template = init_model(model_config(inp), s.descriptor_seed, fitting_seed=s.fitting_seed)
        step, params, opt_state, data = load_checkpoint(restart, template, opt.init(template))
    elif kind == "dpa2-torch-checkpoint":  # the other backend: weights, step, batches
        ck = read_training_checkpoint(restart)
        check_same_model(restart, ck.model, s.descriptor, s.fitting)
        params = from_record(ck.model)[1]
        step, opt_state, data = ck.step, opt.init(params), ck.data
        note = "a torch checkpoint: Adam moments start afresh"
    else:
        raise ValueError(f"--restart {restart}: {describe_kind(kind)}; a restart needs a "
                         "checkpoint of dpa2 train (torch .pt or jax .npz)")
    train, valid_state, data_note = checkpoints.restore_data_state(data, 0, 1)
    if train is not None:
        sampler.set_state(train)
    if valid_state is not None and valid is not None:
        valid.set_state(valid_state)
    print(report.restart_line(restart, step, note), file=out)
    if data_note is not None:
        print(f"note: {data_note}", file=out)
    return step, params, opt_state


def _save(inp: TrainInput, output: Path, step: int, params, opt_state, config, sampler,
          valid: Sampler | None = None) -> Path:
    data = checkpoints.data_state([sampler.state()], None if valid is None else valid.state())
    path = checkpoints.save(output, inp.save_ckpt, ".npz", step,
                            checkpoint_writer(step, params, opt_state, config, data),
                            inp.max_ckpt_keep)
    lcurve.plot(output / inp.disp_file, output / "lcurve.png", required=False)
    return path


def train(inp: TrainInput, output: Path, restart: Path | None = None, out=None,
          progress: bool = True, overwrite: bool = False) -> dict:
    """Run the training described by ``inp``; returns the last displayed metrics, with
    ``stopped_by`` (the signal that stopped the run early, after saving a checkpoint, or
    None) and ``skipped`` (non-finite batches dropped, ``nan_policy = "skip"``).

    Log lines go to ``out`` (default: the current ``sys.stdout``), the progress bar to
    stderr. ``overwrite``: a new run may replace another run's checkpoints in ``output``
    (refused otherwise).
    """
    bars: list = []
    with StopSignals() as stop:
        try:
            return _train(inp, Path(output), restart, sys.stdout if out is None else out,
                          progress, overwrite, stop, bars)
        finally:  # an error message then starts on a line of its own
            for bar in bars:
                bar.close()


def _prepare_run(inp: TrainInput, output: Path, restart: Path | None, out, overwrite: bool
                 ) -> tuple:
    """The output folder checked (and cleared with ``overwrite``), the model config, the
    training systems, both samplers and the initial (step, params, opt_state), restored
    from ``restart`` with the rows after its step rewound."""
    checkpoints.check_output(output, inp.save_ckpt, restart, overwrite)
    if overwrite and restart is None:
        checkpoints.clear_run(output, inp.save_ckpt)
    train_sys = _systems(inp, inp.training_data)
    seed = 0 if inp.seed is None else inp.seed
    sampler = Sampler(train_sys, inp.training_data, seed)
    valid = None if inp.validation_data is None else Sampler(
        _systems(inp, inp.validation_data), inp.validation_data, seed + 1)
    state = initial_state(inp, train_sys, sampler, restart, out, valid)
    if restart is not None:
        for line in checkpoints.rewind(output, inp.save_ckpt, ".npz", state[0],
                                       output / inp.disp_file):
            print(f"note: {line}", file=out)
    return model_config(inp), train_sys, sampler, valid, state


def _non_finite(inp: TrainInput, m: dict, sampler: Sampler, train_sys: list, shown: int,
                last_ckpt: Path | None, skipped: int, out) -> int:
    """A step whose loss or gradient is not finite: stop naming the batch
    (``nan_policy="stop"``), or count it as skipped and say so. Returns the new count."""
    what = "loss" if not np.isfinite(float(m["rmse"])) else "gradient"
    k, idx = sampler.drawn
    system = f"{k} ({train_sys[k].path})"
    if inp.nan_policy == "stop":
        raise NonFiniteError(nonfinite_message(shown, what, system, idx, last_ckpt))
    print(skip_message(shown, what, system, idx, skipped + 1), file=out)
    return skipped + 1


def _train(inp: TrainInput, output: Path, restart: Path | None, out, progress: bool,
           overwrite: bool, stop: StopSignals, bars: list) -> dict:
    config, train_sys, sampler, valid, (start, params, opt_state) = _prepare_run(
        inp, output, restart, out, overwrite)
    last_ckpt, skipped, stopped_by = (None if restart is None else Path(restart)), 0, None
    static = (config, frozen_flags(params, config), inp.gradient_max_norm)
    dtype = inp.settings.descriptor.dtype_name
    curve = lcurve.Lcurve(output / inp.disp_file, valid is not None, append=restart is not None)
    nval = inp.validation_data.numb_btch if inp.validation_data else 0
    last: dict = {}
    if start >= inp.numb_steps:
        raise ValueError(f"nothing to train: training.numb_steps={inp.numb_steps} and the run "
                         f"is at step {start} (pass --steps N)")
    bar = progress_bar(progress, total=inp.numb_steps, initial=start, desc="train",
                           unit="step")
    bars += [] if bar is None else [bar]
    times = []
    for i in range(start, inp.numb_steps):
        tic = time.perf_counter()
        lr = inp.lr.value(i)
        pe, pf = (jnp.asarray(x, dtype) for x in inp.loss.at(lr, inp.lr.start_lr))
        params, opt_state, m, finite = train_step(*static, params, opt_state,
                                                  to_device(sampler.next()),
                                                  jnp.asarray(lr, dtype), pe, pf)
        jax.block_until_ready(params)
        times.append(time.perf_counter() - tic)
        shown = i + 1
        if not bool(finite):
            skipped = _non_finite(inp, m, sampler, train_sys, shown, last_ckpt, skipped, out)
        faults.inject("step", shown)
        if shown % inp.disp_freq == 0 or shown == 1:
            trn = {k: float(v) for k, v in m.items()}
            val = _validation_metrics(config, params, valid, nval, pe, pf)
            curve.write(shown, lr, trn, val)
            if bar is not None:
                bar.set_postfix(report.bar_postfix(trn, lr))
            last = {"step": shown, "trn": trn, "val": val, "lr": lr}
        saved = shown % inp.save_freq == 0 or shown == inp.numb_steps
        if saved:
            last_ckpt = _save(inp, output, shown, params, opt_state, config, sampler, valid)
        if bar is not None:
            bar.update(1)
        if stop.signum is not None and shown < inp.numb_steps:
            if not saved:
                last_ckpt = _save(inp, output, shown, params, opt_state, config, sampler, valid)
            stopped_by = stop.signum
            print(restart_hint(stopped_by, shown, last_ckpt), file=out)
            break
    if bar is not None:
        bar.close()
    if skipped:
        print(f"skipped {skipped} batch(es) with a non-finite loss or gradient", file=out)
    print(report.summary_line(times, output), file=out)
    return {**last, "stopped_by": stopped_by, "skipped": skipped}


def cli_train(args: Any) -> int:
    """``dpa2 train INPUT --backend jax``: args has input, output, steps, restart, force.
    Returns 0, or ``128 + signal`` after a ``SIGTERM``/Ctrl-C stop."""
    inp = TrainInput.from_file(args.input, getattr(args, "steps", None))
    if inp.settings.descriptor.dtype_name == "float64" and not x64_enabled():
        jax.config.update("jax_enable_x64", True)  # the model's own precision
    restart = getattr(args, "restart", None)
    device = getattr(args, "device", None)
    kind = "gpu" if device == "cuda" else "cpu"
    try:
        target = jax.devices(kind)[0] if device else None
    except RuntimeError as err:
        raise ValueError(f"--device {device}: jax sees no {kind} device") from err
    with jax.default_device(target):
        result = train(inp, Path(getattr(args, "output", None) or "."),
                       None if restart is None else Path(restart),
                       overwrite=bool(getattr(args, "force", False)))
    return 0 if result["stopped_by"] is None else 128 + result["stopped_by"]
