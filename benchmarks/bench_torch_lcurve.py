"""Learning curve of ``dpa2 train`` (torch) next to deepmd-kit's, same input, same steps.

Trains ``../shared/models/water_dpa2_small.input.json`` unchanged (or with ``--steps``)
and plots our ``lcurve.out`` over deepmd-kit's ``water_dpa2_small.lcurve.out`` (``dp --pt
train`` on the same input), printing both tables.

    python benchmarks/bench_torch_lcurve.py [--steps 20] [--out docs/torch_lcurve.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
INPUT = MODELS / "water_dpa2_small.input.json"
DEEPMD_LCURVE = MODELS / "water_dpa2_small.lcurve.out"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", default=str(INPUT))
    p.add_argument("--steps", type=int, default=None, help="override numb_steps")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workdir", default=None, help="where lcurve.out and checkpoints go")
    p.add_argument("--out", default="torch_lcurve.png", help="PNG of both curves")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from dpa2_core.training import lcurve
    from dpa2_core.training.settings import TrainInput
    from dpa2_torch.training.trainer import Trainer

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_torch_lcurve_"))
    trainer = Trainer(TrainInput.from_file(args.input, args.steps), work)
    trainer.run()
    lcurve.plot(work / "lcurve.out", args.out, reference=str(DEEPMD_LCURVE),
                labels=("dpa2_torch", "deepmd-kit (dp --pt)"))
    print("# dpa2_torch")
    print((work / "lcurve.out").read_text())
    print("# deepmd-kit")
    print(DEEPMD_LCURVE.read_text())
    print(f"plot: {args.out}; run directory: {work}")


if __name__ == "__main__":
    main()
