"""``dpa2 train`` / ``dpa2 test`` with the torch backend: deepmd-kit inputs, same loss,
same learning-rate rule, ``lcurve.out`` with deepmd's columns, resumable checkpoints,
a learning-curve PNG, and data parallelism under ``torchrun`` (DDP).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import torch

from dpa2_core.io.loader import describe_kind, model_kind, read_training_checkpoint
from dpa2_core.progress import progress_bar
from dpa2_core.training import lcurve, report
from dpa2_core.training.restart import check_same_model
from dpa2_core.training.settings import TrainInput

from ..model import EnergyModel
from . import dist
from .batches import DataSet
from .checkpoint import build_model, save_checkpoint
from .loss import energy_force_loss
from .stats import set_statistics

__all__ = ["cli_train", "Trainer"]


class Trainer:
    """One training run; ``run()`` trains from the current step to ``numb_steps``."""

    def __init__(self, inp: TrainInput, output: str | Path = ".", restart: str | None = None,
                 device: str | None = None, log=print, compile: bool = False) -> None:
        self.inp, self.out, self.log = inp, Path(output), log
        self.dist = dist.init_from_env(device)
        self.out.mkdir(parents=True, exist_ok=True)
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
        self.net = dist.wrap(self.model, self.dist)
        self.step_times: list[float] = []

    # ------------------------------------------------------------ set-up
    def _statistics(self) -> None:
        s = self.inp.settings
        bias = set_statistics(self.model, self.train_data, s.data_stat_nbatch, s.rcond)
        if self.dist.is_main:
            self.log(report.statistics_line(s.data_stat_nbatch, len(self.train_data.sizes)))
            self.log(report.bias_line(bias, s.type_map))

    def _restore(self, path: str) -> None:
        kind = model_kind(path)
        note = ""
        if kind == "dpa2-torch-checkpoint":
            ckpt = torch.load(path, map_location=self.dist.device, weights_only=True)
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            step, data = int(ckpt["step"]), ckpt.get("data")
        elif kind == "dpa2-jax-checkpoint":  # the other backend: weights, step, batches
            ck = read_training_checkpoint(path)
            check_same_model(path, ck.model, self.model.config, self.model.fitting_config)
            self.model.load_state_dict(EnergyModel.from_record(ck.model).state_dict())
            step, data = ck.step, ck.data
            note = "a jax checkpoint: Adam moments start afresh"
        else:
            raise ValueError(f"--restart {path}: {describe_kind(kind)}; a restart needs a "
                             "checkpoint of dpa2 train (torch .pt or jax .npz)")
        self.step = step
        if data is not None and self.dist.world_size == 1:
            self.train_data.set_state(data)
        if self.dist.is_main:
            self.log(report.restart_line(path, self.step, note))

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
        if self.inp.gradient_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.inp.gradient_max_norm)
        self.optimizer.step()
        self.step += 1
        return lr, metrics

    def validate(self, lr: float) -> dict | None:
        """Metrics of ``numb_btch`` validation batches (atom-weighted mean), main rank only."""
        if self.valid_data is None:
            return None
        prefs = self.inp.loss.at(lr, self.inp.lr.start_lr)
        sums: dict[str, float] = {}
        natoms = 0
        for _ in range(self.inp.validation_data.numb_btch):
            b = self.valid_data.next_batch()
            pred = self.model(b.coord, b.atype, neighbors=b.neighbors, create_graph=False,
                              virial=False)
            _, m = energy_force_loss(pred, b.energy, b.force, b.natoms, prefs)
            n = b.natoms * b.coord.shape[0]
            natoms += n
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
        return {k: v / natoms for k, v in sums.items()}

    # ------------------------------------------------------------ loop
    def run(self) -> list[dict]:
        """Train to ``numb_steps``; returns the displayed rows (main rank)."""
        main, inp = self.dist.is_main, self.inp
        curve = lcurve.Lcurve(self.out / inp.disp_file, inp.validation_data is not None,
                              append=self.step > 0) if main else None
        rows: list[dict] = []
        bar = progress_bar(main, total=inp.numb_steps, initial=self.step, desc="train",
                           unit="step")
        while self.step < inp.numb_steps:
            start = time.perf_counter()
            lr, metrics = self.train_step()
            self.step_times.append(time.perf_counter() - start)
            shown = self.step
            if main and (shown % inp.disp_freq == 0 or shown == 1):
                train = {k: float(v) for k, v in metrics.items()}
                valid = self.validate(lr)
                curve.write(shown, lr, train, valid)
                rows.append({"step": shown, "lr": lr, "train": train, "valid": valid})
                if bar is not None:
                    bar.set_postfix(report.bar_postfix(train, lr))
            if main and (shown % inp.save_freq == 0 or shown == inp.numb_steps):
                self.save()
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if main:
            self._summary()
        return rows

    def save(self) -> Path:
        name = f"{self.inp.save_ckpt}-{self.step}.pt"
        path = save_checkpoint(self.out / name, self.model, self.optimizer, self.step,
                               self.inp.raw, self.train_data.state())
        shutil.copyfile(path, self.out / f"{self.inp.save_ckpt}.pt")
        report.write_pointer(self.out, name)
        old = sorted(self.out.glob(f"{self.inp.save_ckpt}-*.pt"),
                     key=lambda f: int(f.stem.rsplit("-", 1)[1]))
        if self.inp.max_ckpt_keep > 0:  # deepmd's rule: keep the newest max_ckpt_keep
            for stale in old[: max(len(old) - self.inp.max_ckpt_keep, 0)]:
                stale.unlink()
        lcurve.plot(self.out / self.inp.disp_file, self.out / "lcurve.png", required=False)
        return path

    def _summary(self) -> None:
        self.log(report.summary_line(self.step_times, self.out))


# ---------------------------------------------------------------- commands
def cli_train(args: argparse.Namespace) -> int:
    """``dpa2 train INPUT [--output DIR] [--steps N] [--restart CKPT]`` (torch backend).

    ``DPA2_TORCH_COMPILE=1`` in the environment trains through
    :meth:`EnergyModel.compile_forces` (minutes of compilation, faster steps).
    """
    inp = TrainInput.from_file(args.input, getattr(args, "steps", None))
    compile_ = os.environ.get("DPA2_TORCH_COMPILE", "0") not in ("", "0")
    device = getattr(args, "device", None)
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device (use --device cpu)")
    trainer = Trainer(inp, getattr(args, "output", ".") or ".", getattr(args, "restart", None),
                      device=device, compile=compile_)
    try:
        if trainer.step >= inp.numb_steps:
            raise ValueError(f"{args.input}: nothing to train: training.numb_steps="
                             f"{inp.numb_steps} and the run is at step {trainer.step} "
                             "(pass --steps N)")
        trainer.run()
    finally:
        dist.finish(trainer.dist)
    return 0
