"""Seconds per training step of ``dpa2 train`` (torch) on deepmd-kit's water DPA-2 input,
side by side with deepmd-kit's own ``dp --pt train`` in the same run.

Runs the unchanged input (``../shared/models/water_dpa2_small.input.json``: 192-atom
water, batch 1, float64, energy + force loss) for ``--steps`` steps and reports the
median step time with the first ``--warmup`` steps excluded. ``--deepmd`` then trains
the same input with deepmd-kit (``benchmarks/_deepmd_pt.py``; no validation, a log line
every step) and times its steps from the log the same way: the ratio of the two medians
is the speed-up. Without ``--deepmd`` the ratio uses 1.24 s/step, deepmd-kit's time on an
idle machine of this kind when the issue was filed (machines of this kind differ by 2x).

    python benchmarks/bench_torch_train.py [--steps 20] [--threads 1|2] [--compile]
                                           [--deepmd] [--profile]

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
    p.add_argument("--deepmd", action="store_true", help="time dp --pt train side by side")
    return p.parse_args()


def profile(trainer, steps: int = 3) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)


def deepmd_steps(input_path: str, steps: int, threads: int | None) -> np.ndarray:
    """Wall seconds of each of deepmd-kit's training steps (its per-step log lines)."""
    import json
    import re
    import subprocess
    import sys

    work = Path(tempfile.mkdtemp(prefix="bench_deepmd_pt_"))
    d = json.loads(Path(input_path).read_text())
    root = Path(input_path).resolve().parent
    t = d["training"]
    t["training_data"]["systems"] = [str((root / s).resolve())
                                     for s in t["training_data"]["systems"]]
    t.pop("validation_data", None)
    t.pop("stat_file", None)
    t.update(numb_steps=steps, disp_freq=1, save_freq=10 * steps)
    (work / "input.json").write_text(json.dumps(d))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads or torch.get_num_threads())}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("_deepmd_pt.py")),
                           "train", "input.json"], cwd=work, env=env, capture_output=True,
                          text=True, check=True)
    times = re.findall(r"Batch\s+\d+: total wall time = ([0-9.]+) s", proc.stdout + proc.stderr)
    return np.asarray([float(x) for x in times])


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
    from dpa2_core.training.settings import TrainInput
    from dpa2_torch.training.trainer import Trainer

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
    if args.deepmd:
        ref = deepmd_steps(args.input, args.steps, args.threads)[args.warmup:]
        print(f"deepmd-kit dp --pt train, same run: wall median {np.median(ref):.3f} s/step "
              f"(mean {ref.mean():.3f}, min {ref.min():.3f}, {len(ref)} steps)")
        print(f"speed-up: {np.median(ref) / np.median(w):.2f}x (ratio of wall medians)")
    else:
        print(f"deepmd-kit dp --pt train (issue's reference): {DEEPMD_S_PER_STEP:.2f} s/step "
              f"-> speed-up {DEEPMD_S_PER_STEP / np.median(w):.2f}x (wall median)")
    if args.profile:
        print(profile(trainer))


if __name__ == "__main__":
    main()
