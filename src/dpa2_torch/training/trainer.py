"""``dpa2 train`` / ``dpa2 test`` with the torch backend: deepmd-kit inputs, same loss,
same learning-rate rule, ``lcurve.out`` with deepmd's columns, resumable checkpoints,
a learning-curve PNG, and data parallelism under ``torchrun`` (DDP).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

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
from dpa2_core.training.metrics import WeightedMean
from dpa2_core.training.restart import check_same_model
from dpa2_core.training.settings import TrainInput

from ..model import EnergyModel
from . import dist
from .batches import DataSet
from .checkpoint import build_model, checkpoint_state
from .loss import energy_force_loss
from .stats import set_statistics

__all__ = ["cli_train", "Trainer"]


class Trainer:
    """One training run; ``run()`` trains from the current step to ``numb_steps``.

    ``overwrite``: start a new run in a folder that holds another run's checkpoints
    (removed first); without it that is refused (:func:`dpa2_core.training.checkpoints.
    check_output`). After ``run()``, :attr:`stopped_by` is the signal that stopped it
    early (``SIGTERM``/``SIGINT``: checkpoint saved at the end of the step) or None, and
    :attr:`skipped` the number of non-finite batches dropped (``nan_policy = "skip"``).
    """

    def __init__(self, inp: TrainInput, output: str | Path = ".", restart: str | None = None,
                 device: str | None = None, log=print, compile: bool = False,
                 overwrite: bool = False) -> None:
        self.inp, self.out, self.log = inp, Path(output), log
        self.dist = dist.init_from_env(device)
        checkpoints.check_output(self.out, inp.save_ckpt, restart, overwrite,
                                 clean=self.dist.is_main)
        if overwrite and restart is None and self.dist.is_main:
            checkpoints.clear_run(self.out, inp.save_ckpt)
        self.stopped_by: int | None = None
        self.skipped = 0
        self.last_ckpt: Path | None = None
        seed = inp.seed if inp.seed is not None else 0
        torch.manual_seed(seed)
        self.model = build_model(inp.settings).to(self.dist.device)
        dtype = self.model.fitting.layers[0].w.dtype
        type_map = list(inp.settings.type_map)
        cfg, dev = self.model.config, self.dist.device
        self.train_data = DataSet(inp.training_data, type_map, cfg, dtype, dev,
                                  seed + 1000 * self.dist.rank)
        self.valid_data = None if inp.validation_data is None else DataSet(
            inp.validation_data, type_map, cfg, dtype, dev, seed + 1)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=inp.lr.start_lr)
        self.step = 0
        if restart is not None:
            self._restore(restart)
        else:
            self._statistics()
        if compile:
            self.model.compile_forces()
        self.net = dist.data_parallel(self.model, self.dist)
        self.step_times: list[float] = []

    # ------------------------------------------------------------ set-up
    def _statistics(self) -> None:
        s = self.inp.settings
        bias = set_statistics(self.model, self.train_data, s.data_stat_nbatch, s.rcond)
        if self.dist.is_main:
            self.log(report.statistics_line(s.data_stat_nbatch, len(self.train_data.sizes)))
            self.log(report.bias_line(bias, s.type_map))

    def _restore(self, path: str) -> None:
        kind = model_kind(path) if Path(path).is_file() else "missing"
        if kind == "missing":
            raise FileNotFoundError(f"restart={str(path)!r}: no such checkpoint")
        if kind == "dpa2-jax-checkpoint":  # the other backend: weights, step, batches
            ck = read_training_checkpoint(path)
            check_same_model(path, ck.model, self.model.config, self.model.fitting_config)
            self.model.load_state_dict(EnergyModel.from_record(ck.model).state_dict())
            self.step, data = ck.step, ck.data
            notes = ["a jax checkpoint: Adam moments start afresh"]
        elif kind == "dpa2-torch-checkpoint":
            try:
                ckpt = torch.load(path, map_location=self.dist.device, weights_only=True)
            except Exception as err:  # noqa: BLE001 - torn file: one clear line
                raise ValueError(f"restart={str(path)!r}: not a readable dpa2_torch "
                                 f"checkpoint ({type(err).__name__}); the newest complete one "
                                 "is named in the 'checkpoint' file of its folder") from err
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.step, data, notes = int(ckpt["step"]), ckpt.get("data"), []
        elif Path(path).suffix == ".pt":  # torn or foreign: one clear line
            raise ValueError(f"restart={str(path)!r}: not a readable dpa2_torch checkpoint "
                             f"({describe_kind(kind)}); the newest complete one is named in "
                             "the 'checkpoint' file of its folder")
        else:
            raise ValueError(f"--restart {path}: {describe_kind(kind)}; a restart needs a "
                             "checkpoint of dpa2 train (torch .pt or jax .npz)")
        train, valid, note = checkpoints.restore_data_state(data, self.dist.rank,
                                                            self.dist.world_size)
        if train is not None:
            self.train_data.set_state(train)
        if valid is not None and self.valid_data is not None:
            self.valid_data.set_state(valid)
        self.last_ckpt = Path(path)
        if self.dist.is_main:
            self.log(report.restart_line(path, self.step, "; ".join(notes)))
            if note is not None:
                self.log(f"note: {note}")
            for line in checkpoints.rewind(self.out, self.inp.save_ckpt, ".pt", self.step,
                                           self.out / self.inp.disp_file):
                self.log(f"note: {line}")

    # ------------------------------------------------------------ one step
    def train_step(self) -> tuple[float, dict]:
        lr = self.inp.lr.value(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.train_data.next_batch()
        pred = self.net(batch.coord, batch.atype, neighbors=batch.neighbors, create_graph=True,
                        virial=False)
        prefs = self.inp.loss.at(lr, self.inp.lr.start_lr)
        loss, metrics = energy_force_loss(pred, batch.energy, batch.force, batch.natoms, prefs)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self._finite(loss):
            if self.inp.gradient_max_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                               self.inp.gradient_max_norm)
            self.optimizer.step()
        self.step += 1
        return lr, metrics

    def _finite(self, loss: torch.Tensor) -> bool:
        """Loss and gradients finite on every rank; else stop (``NonFiniteError``, nothing
        updated) or count a skipped batch, by ``nan_policy``."""
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        loss_ok = bool(torch.isfinite(loss.detach()))
        grad_ok = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) \
            if grads else True
        if not dist.all_max(not (loss_ok and grad_ok), self.dist):
            return True
        what = "gradient" if loss_ok else "loss"
        k, idx = self.train_data.drawn
        system = f"{k} ({self.train_data.paths[k]})"
        if self.inp.nan_policy == "stop":
            raise NonFiniteError(nonfinite_message(self.step + 1, what, system, idx,
                                                   self.last_ckpt))
        self.skipped += 1
        self.optimizer.zero_grad(set_to_none=True)
        if self.dist.is_main:
            self.log(skip_message(self.step + 1, what, system, idx, self.skipped))
        return False

    def validation_metrics(self, lr: float) -> dict | None:
        """Metrics of ``numb_btch`` validation batches (atom-weighted mean), main rank only."""
        if self.valid_data is None:
            return None
        prefs = self.inp.loss.at(lr, self.inp.lr.start_lr)
        mean = WeightedMean()
        for _ in range(self.inp.validation_data.numb_btch):
            b = self.valid_data.next_batch()
            pred = self.model(b.coord, b.atype, neighbors=b.neighbors, create_graph=False,
                              virial=False)
            _, m = energy_force_loss(pred, b.energy, b.force, b.natoms, prefs)
            mean.add(m, b.natoms * b.coord.shape[0])
        return mean.result()

    # ------------------------------------------------------------ loop
    def run(self) -> list[dict]:
        """Train to ``numb_steps``; returns the displayed rows (main rank). ``SIGTERM`` or
        Ctrl-C stops it after the current step, with a checkpoint (:attr:`stopped_by`)."""
        self._bar = None
        with StopSignals() as stop:
            try:
                return self._run(stop)
            finally:  # an error message then starts on a line of its own
                if self._bar is not None:
                    self._bar.close()

    def _run(self, stop: StopSignals) -> list[dict]:
        main, inp = self.dist.is_main, self.inp
        curve = lcurve.Lcurve(self.out / inp.disp_file, inp.validation_data is not None,
                              append=self.step > 0) if main else None
        rows: list[dict] = []
        bar = self._bar = progress_bar(main, total=inp.numb_steps, initial=self.step,
                                       desc="train", unit="step")
        while self.step < inp.numb_steps:
            start = time.perf_counter()
            lr, metrics = self.train_step()
            self.step_times.append(time.perf_counter() - start)
            shown = self.step
            faults.inject("step", shown)
            if main and (shown % inp.disp_freq == 0 or shown == 1):
                train = {k: float(v) for k, v in metrics.items()}
                valid = self.validation_metrics(lr)
                curve.write(shown, lr, train, valid)
                rows.append({"step": shown, "lr": lr, "train": train, "valid": valid})
                if bar is not None:
                    bar.set_postfix(report.bar_postfix(train, lr))
            saved = shown % inp.save_freq == 0 or shown == inp.numb_steps
            if saved:
                self.save()
            if bar is not None:
                bar.update(1)
            signum = dist.all_max(stop.signum or 0, self.dist)
            if signum and shown < inp.numb_steps:
                if not saved:
                    self.save()
                self.stopped_by = signum
                if main:
                    self.log(restart_hint(signum, shown, self.last_ckpt))
                break
        if bar is not None:
            bar.close()
        if main:
            self._summary()
        return rows

    def save(self) -> Path | None:
        """Checkpoint of this step (every rank's sampler state; a collective, rank 0
        writes): atomic, rotated to ``max_ckpt_keep``. Returns the path on rank 0."""
        states = dist.all_objects(self.train_data.state(), self.dist)
        if not self.dist.is_main:
            return None
        valid = None if self.valid_data is None else self.valid_data.state()
        state = checkpoint_state(self.model, self.optimizer, self.step, self.inp.raw,
                                 checkpoints.data_state(states, valid))
        path = checkpoints.save(self.out, self.inp.save_ckpt, ".pt", self.step,
                                lambda tmp: torch.save(state, tmp), self.inp.max_ckpt_keep)
        self.last_ckpt = path
        lcurve.plot(self.out / self.inp.disp_file, self.out / "lcurve.png", required=False)
        return path

    def _summary(self) -> None:
        if self.skipped:
            self.log(f"skipped {self.skipped} batch(es) with a non-finite loss or gradient")
        self.log(report.summary_line(self.step_times, self.out))


# ---------------------------------------------------------------- commands
def cli_train(args: argparse.Namespace) -> int:
    """``dpa2 train INPUT [--output DIR] [--steps N] [--restart CKPT] [--force]`` (torch
    backend). Returns 0, or ``128 + signal`` after a ``SIGTERM``/Ctrl-C stop.

    ``DPA2_TORCH_COMPILE=1`` in the environment trains through
    :meth:`EnergyModel.compile_forces` (minutes of compilation, faster steps).
    """
    inp = TrainInput.from_file(args.input, getattr(args, "steps", None))
    compile_ = os.environ.get("DPA2_TORCH_COMPILE", "0") not in ("", "0")
    device = getattr(args, "device", None)
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device (use --device cpu)")
    trainer = Trainer(inp, getattr(args, "output", ".") or ".", getattr(args, "restart", None),
                      device=device, compile=compile_,
                      overwrite=bool(getattr(args, "force", False)))
    try:
        if trainer.step >= inp.numb_steps:
            raise ValueError(f"{args.input}: nothing to train: training.numb_steps="
                             f"{inp.numb_steps} and the run is at step {trainer.step} "
                             "(pass --steps N)")
        trainer.run()
    except BaseException:
        dist.finish(trainer.dist, clean=False)
        raise
    dist.finish(trainer.dist)
    return 0 if trainer.stopped_by is None else 128 + trainer.stopped_by
