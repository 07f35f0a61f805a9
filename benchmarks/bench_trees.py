"""The same two cases timed on several source trees (before/after of a change), each tree
in its own process, rounds alternating between the trees.

Cases (the shared model, the 192-atom water frame, float64): numpy ``dpa2_core.descriptor``
forward, and torch ``DescrptDPA2`` forward + coordinate gradient. Process CPU time with one
thread (stable on a shared machine), median of ``--calls`` per process.

    git worktree add /tmp/before <rev>
    OMP_NUM_THREADS=1 python benchmarks/bench_trees.py /tmp/before/src src --rounds 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

__all__ = ["main", "measure"]

MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                     "models", "water_dpa2_small.dp")


def measure(calls: int) -> dict[str, float]:
    """In this process (the tree first on sys.path): median CPU seconds per call."""
    import numpy as np
    import torch

    import dpa2_core as dc
    from dpa2_torch import DescrptDPA2

    torch.set_num_threads(1)
    config, params = dc.load_deepmd(MODEL)
    coord, atype, box, _ = dc.presets.water_frame()
    coord_ext, atype_ext, mapping, nlist = dc.build_neighbor_list(coord, atype, config, box)
    module = DescrptDPA2(config, params=params)
    tx = [torch.as_tensor(np.asarray(x)) for x in (coord_ext, atype_ext, nlist, mapping)]

    def forward():
        dc.descriptor(params, config, coord_ext, atype_ext, nlist, mapping)

    def force():
        c = tx[0].clone().requires_grad_(True)
        torch.autograd.grad(module(c, *tx[1:])[0].sum(), c)

    out = {}
    for name, fn in (("numpy forward", forward), ("torch forward+force", force)):
        fn()
        times = []
        for _ in range(calls):
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
        out[name] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="src folders (first on sys.path)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.calls)))
        return
    results: dict[str, list[dict[str, float]]] = {t: [] for t in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            env = {**os.environ, "PYTHONPATH": tree, "OMP_NUM_THREADS": "1"}
            out = subprocess.run([sys.executable, __file__, tree, "--child", "--calls",
                                  str(args.calls)], env=env, capture_output=True, text=True,
                                 check=True).stdout
            results[tree].append(json.loads(out.strip().splitlines()[-1]))
    first = args.trees[0]
    for case in results[first][0]:
        base = statistics.median(r[case] for r in results[first])
        print(f"{case}:")
        for tree in args.trees:
            ms = statistics.median(r[case] for r in results[tree])
            print(f"  {tree:<40} {1e3 * ms:8.1f} ms   ratio to {first}: {ms / base:5.2f}")


if __name__ == "__main__":
    main()
