"""Seconds per training step of ``dpa2 train`` (torch) on deepmd-kit's water DPA-2 input.

Runs the unchanged input (``../shared/models/water_dpa2_small.input.json``: 192-atom
water, batch 1, float64, energy + force loss) for ``--steps`` steps and reports the mean
and median step time with the first ``--warmup`` steps excluded, like the deepmd-kit
reference (``dp --pt train``: 1.24 s/step on the same 2-core machine).

    python benchmarks/bench_torch_train.py [--steps 20] [--threads 1|2] [--compile] [--profile]

Wall time depends on what else runs on the machine; with one thread, CPU time per step
is what the wall time would be on an idle core, so both are printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

INPUT = Path(__file__).resolve().parents[2] / "shared" / "models" / "water_dpa2_small.input.json"
DEEPMD_S_PER_STEP = 1.24  # dp --pt train, same input and machine, warm-up excluded


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", default=str(INPUT))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--compile", action="store_true", help="EnergyModel.compile_forces()")
    p.add_argument("--profile", action="store_true", help="torch.profiler table of 3 steps")
    return p.parse_args()


def profile(trainer, steps: int = 3) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)


def timed_steps(trainer, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(wall, cpu) seconds of each training step."""
    wall, cpu = [], []
    for _ in range(steps):
        w, c = time.perf_counter(), time.process_time()
        trainer.train_step()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return np.asarray(wall), np.asarray(cpu)


def main() -> None:
    args = parse()
    if args.threads:
        torch.set_num_threads(args.threads)
    from dpa2_core.train_input import TrainInput
    from dpa2_torch.training import Trainer

    out = Path(tempfile.mkdtemp(prefix="bench_torch_train_"))
    inp = TrainInput.from_file(args.input, steps=args.steps)
    start = time.perf_counter()
    trainer = Trainer(inp, out, log=lambda *a: None)
    if args.compile:
        trainer.model.compile_forces()
    setup = time.perf_counter() - start
    wall, cpu = timed_steps(trainer, args.steps)
    w, c = wall[args.warmup:], cpu[args.warmup:]
    print(f"input: {args.input}; compile: {args.compile}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.2f} (2 cores: above ~{torch.get_num_threads()} another job "
          "competed)")
    print(f"setup (data, neighbor lists, statistics): {setup:.2f} s; warm-up steps "
          f"{np.round(wall[:args.warmup], 2).tolist()} s")
    print(f"steps {len(wall)} (first {args.warmup} excluded): wall median {np.median(w):.3f} "
          f"s/step (mean {w.mean():.3f}, min {w.min():.3f}); cpu median {np.median(c):.3f} "
          "s/step")
    print(f"all steps (wall, s): {np.round(wall, 2).tolist()}")
    print(f"deepmd-kit dp --pt train: {DEEPMD_S_PER_STEP:.2f} s/step -> speed-up "
          f"{DEEPMD_S_PER_STEP / np.median(w):.2f}x (wall median)")
    if args.profile:
        print(profile(trainer))


if __name__ == "__main__":
    main()
